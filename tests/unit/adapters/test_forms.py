"""The case form's fields -> case data: rows with gaps, row limits, malformed names."""

from __future__ import annotations

from decidua.core.features import FEATURES
from decidua.entrypoints.http.pages.forms import MAX_ROWS, SECTIONS, form_to_data


def test_rows_added_and_removed_in_the_browser_close_their_gaps() -> None:
    data, problems = form_to_data(
        [
            ("case_id", "F-1"),
            ("pregnancies[3].outcome", "miscarriage"),
            ("pregnancies[250].outcome", "live_birth"),  # after many clicks on "add" and "remove"
        ]
    )
    assert problems == []
    assert [p["outcome"] for p in data["pregnancies"]] == ["miscarriage", "live_birth"]


def test_more_rows_than_allowed_are_a_problem_not_stored() -> None:
    fields = [(f"pregnancies[{i}].outcome", "miscarriage") for i in range(MAX_ROWS + 1)]
    _, problems = form_to_data([("case_id", "F-1"), *fields])
    assert [(p.path, p.allowed) for p in problems] == [("pregnancies", f"allowed: at most {MAX_ROWS} rows")]


def test_malformed_field_names_are_named() -> None:
    _, problems = form_to_data([("case_id", "F-1"), ("nk.x]", "1"), ("[0]", "2"), ("a b", "3")])
    assert [p.path for p in problems] == ["nk.x]", "[0]", "a b"]


def test_every_feature_names_the_form_field_a_clinician_fills_in() -> None:
    """A missing input is shown by its label, which must lead to a field of the case form (never a column name)."""
    labels = [f.label for section in SECTIONS for f in section.fields] + [s.title for s in SECTIONS] + ["Conditions"]
    for feature in FEATURES:
        assert feature.label, feature.name
        assert any(feature.label.startswith(label) for label in labels), (feature.name, feature.label)
        assert feature.name not in feature.label
