"""Case files as text: what cannot be stored is refused at the door, with the path; YAML stays plain data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decidua.app.casefile import load_text, parse_case
from decidua.core.errors import CaseInvalid, InputError


def case(**extra: object) -> dict[str, object]:
    return {"case_id": "T-1", "woman": {"age_years": 36}, **extra}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (case(note="a\x00b"), "note"),
        (case(note="x\ud800"), "note"),
        ({**case(), "case_id": "A\x00"}, "case_id"),
        (case(pregnancies=[{"outcome": "miscarriage", "note": "\x1b[31m"}]), "pregnancies[0].note"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_with_its_path(data: dict[str, object], path: str) -> None:
    with pytest.raises(CaseInvalid) as err:
        parse_case(data)
    assert [p.path for p in err.value.problems] == [path]
    assert "control characters" in err.value.problems[0].allowed


def test_tabs_and_line_breaks_in_notes_are_fine() -> None:
    assert parse_case(case(note="line 1\n\tline 2\r\n")).note == "line 1\n\tline 2\r\n"


@pytest.mark.parametrize(
    ("data", "path", "allowed"),
    [
        ({**case(), "case_id": "x" * 201}, "case_id", "1 to 200 characters"),
        ({**case(), "case_id": "  "}, "case_id", "required field is missing"),  # blank is "not recorded"
        (case(pregnancies=[{"outcome": "live_birth", "year": 99999}]), "pregnancies[0].year", "1900 to 2100"),
        (
            case(test_date="2024-05-01", pregnancies=[{"outcome": "miscarriage", "year": 2025}]),
            "pregnancies[0].year",
            "1900 to the test date's year",
        ),
    ],
)
def test_ids_and_years_have_bounds(data: dict[str, object], path: str, allowed: str) -> None:
    with pytest.raises(CaseInvalid) as err:
        parse_case(data)
    [problem] = err.value.problems
    assert (problem.path, allowed in problem.allowed) == (path, True)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep: object = "x"
    for _ in range(500):
        deep = [deep]
    with pytest.raises(CaseInvalid) as err:
        parse_case(case(note=deep))
    assert "nesting at most" in err.value.problems[0].allowed
    with pytest.raises(InputError, match="nested too deeply"):
        load_text("[" * 5000 + "]" * 5000, "yaml")


def test_yaml_aliases_are_refused() -> None:
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    with pytest.raises(InputError, match=r"line 2, column 10\): aliases \(\*name\) are not allowed"):
        load_text(laughs, "yaml", "case.yaml")


def test_a_long_rejected_value_is_quoted_short() -> None:
    with pytest.raises(CaseInvalid) as err:
        parse_case({**case(), "case_id": "x" * 5000})
    assert len(str(err.value)) < 400


@given(st.text())
def test_any_note_is_accepted_or_refused_never_a_crash(note: str) -> None:
    refused = any(c in note for c in "\x00\x01\x1b\x7f") or any(
        0xD800 <= ord(c) <= 0xDFFF or (ord(c) < 0x20 and c not in "\t\n\r") for c in note
    )
    if refused:
        with pytest.raises(CaseInvalid) as err:
            parse_case(case(note=note))
        assert [p.path for p in err.value.problems] == ["note"]
    else:
        assert parse_case(case(note=note)).note == (note if note.strip() else None)  # blank: not recorded
        note.encode("utf-8")  # what is accepted can be stored


def test_a_missing_woman_does_not_hide_the_other_problems() -> None:
    data = {"case_id": "T1", "nk": {"peripheral": {"nk_percent": {"value": 12, "unit": "cells/HPF"}}}}
    with pytest.raises(CaseInvalid) as err:
        parse_case(data)
    paths = [p.path for p in err.value.problems]
    assert paths == ["woman", "nk.peripheral.nk_percent.unit"]
