"""The case form loses nothing: a stored case, shown in the edit form and saved unchanged, is the same case.

This is what a clinician relies on when she opens a case to correct one field: every other value (all the
digits of a lab result, the line breaks of a note) is saved exactly as it was.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from decidua.app.casefile import case_to_data, parse_case
from decidua.core.case import Case
from decidua.entrypoints.http.pages.forms import LIST_FIELDS, data_to_fields, form_to_data

from strategies import cases


def submitted(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields a browser posts for the edit form of ``data`` left unchanged."""
    fields = data_to_fields(data)
    items = [(k, v) for k, v in fields.items() if k != "conditions" and k not in LIST_FIELDS]
    items += [(k, fields[k]) for k in LIST_FIELDS if k in fields]
    items += [("conditions", c) for c in data.get("conditions") or []]  # ticked boxes and free codes alike
    items += [(f"{k}_recorded", "on") for k in ("conditions", "pregnancies", "transfers") if data.get(k) is not None]
    return items


@given(cases(), st.sampled_from(["line 1\nline 2", "  indented", "tab\there", "12.345678 %"]))
def test_saving_the_edit_form_unchanged_keeps_the_case(case: Case, note: str) -> None:
    data = case_to_data(case) | {"note": note}
    parsed, problems = form_to_data(submitted(data))
    assert problems == []
    assert parse_case(parsed) == parse_case(data)


@given(st.floats(min_value=0, max_value=100, allow_nan=False).filter(lambda x: x != 0))
def test_every_digit_of_a_lab_value_survives_the_form(value: float) -> None:
    data = {"case_id": "F-1", "woman": {}, "nk": {"peripheral": {"nk_percent": {"value": value, "unit": "%"}}}}
    parsed, problems = form_to_data(submitted(data))
    assert problems == []
    peripheral = parse_case(parsed).nk.peripheral
    assert peripheral is not None
    assert peripheral.nk_percent is not None
    assert peripheral.nk_percent.value == value
