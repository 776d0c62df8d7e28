"""What an import over a stored case would drop (the check that refuses it unless the user says replace)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from decidua.app.changes import removed

STORED: dict[str, Any] = {
    "case_id": "EX-1",
    "woman": {"age_years": 36},
    "pregnancies": [{"outcome": "miscarriage"}, {"outcome": "miscarriage", "gestational_week": 8}],
    "investigations": {"karyotype_woman": {"result": "normal"}, "thyroid": {"tsh": {"value": 2.1}}},
    "note": "seen",
}


def paths(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r.path, r.was) for r in removed(old, new)]


def test_the_same_case_and_changed_values_remove_nothing() -> None:
    assert removed(STORED, STORED) == []
    changed = {**STORED, "woman": {"age_years": 37}, "note": "seen again"}
    assert removed(STORED, changed) == []
    more = {**STORED, "pregnancies": [*STORED["pregnancies"], {"outcome": "live_birth"}]}
    assert removed(STORED, more) == []


def test_each_loss_is_named_by_its_case_path_and_size() -> None:
    cut = {"case_id": "EX-1", "woman": {}, "pregnancies": [{"outcome": "miscarriage"}]}
    assert paths(STORED, cut) == [
        ("woman", "a section of 1 field(s)"),
        ("pregnancies", "2 item(s), the new version has 1"),
        ("investigations", "a section of 2 field(s)"),
        ("note", "a value"),
    ]


def test_a_field_dropped_inside_a_list_item_is_named_by_its_index() -> None:
    new = {**STORED, "pregnancies": [{"outcome": "miscarriage"}, {"outcome": "miscarriage"}]}
    assert paths(STORED, new) == [("pregnancies[1].gestational_week", "a value")]


def test_an_empty_list_or_section_is_a_removal_but_an_empty_stored_one_is_not() -> None:
    assert paths(STORED, {**STORED, "pregnancies": []}) == [("pregnancies", "2 item(s)")]
    assert removed({"case_id": "x", "conditions": []}, {"case_id": "x"}) == []


KEYS = st.text(alphabet="abc_", min_size=1, max_size=3)  # case files' keys are names
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(KEYS, JSON, max_size=4), st.dictionaries(KEYS, JSON, max_size=4))
def test_nothing_is_removed_by_adding_and_something_by_dropping(old: dict[str, Any], extra: dict[str, Any]) -> None:
    assert removed(old, old) == []
    assert removed(old, {**extra, **old}) == []  # everything kept, more added
    for key, value in old.items():
        if value not in (None, [], {}, ""):
            dropped = {k: v for k, v in old.items() if k != key}
            assert [r.path for r in removed(old, dropped)] == [key]
