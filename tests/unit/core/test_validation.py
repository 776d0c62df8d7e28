from __future__ import annotations

import datetime as dt

import pytest

from decidua.app.casefile import parse_case
from decidua.core.errors import CaseInvalid
from decidua.core.validation import age_on, lh_day


def _case(**extra: object) -> dict[str, object]:
    return {"case_id": "T-1", "woman": {"age_years": 34}, **extra}


def _problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(CaseInvalid) as info:
        parse_case(data)
    return [p.to_string() for p in info.value.problems]


def test_age_is_counted_in_completed_years() -> None:
    assert age_on(dt.date(1989, 6, 15), dt.date(2025, 6, 14)) == 35
    assert age_on(dt.date(1989, 6, 15), dt.date(2025, 6, 15)) == 36


def test_nk_percent_above_100_is_rejected_with_field_value_and_range() -> None:
    problems = _problems(_case(nk={"peripheral": {"nk_percent": {"value": 140, "unit": "%"}}}))
    assert problems == ["nk.peripheral.nk_percent.value: got 140.0; allowed: 0 to 100 % (% given)"]


def test_fraction_unit_is_converted_before_the_range_check() -> None:
    problems = _problems(_case(nk={"peripheral": {"nk_percent": {"value": 1.4, "unit": "fraction"}}}))
    assert problems == ["nk.peripheral.nk_percent.value: got 1.4; allowed: 0 to 100 % (fraction given)"]


def test_unknown_unit_names_the_allowed_units() -> None:
    (problem,) = _problems(_case(nk={"uterine": {"density": {"value": 12, "unit": "cells/HPF"}}}))
    assert problem.startswith("nk.uterine.density.unit: got 'cells/HPF'; allowed: per 100 stromal cells")
    assert "cells/mm2" in problem


def test_miscarriage_at_30_weeks_is_a_contradiction() -> None:
    (problem,) = _problems(_case(pregnancies=[{"outcome": "miscarriage", "gestational_week": 30}]))
    assert problem.startswith("pregnancies[0].gestational_week: got 30.0; a miscarriage is a loss before 24 weeks")
    assert "stillbirth" in problem


def test_structural_problems_are_reported_before_range_checks() -> None:
    problems = _problems(
        _case(
            woman={"age_years": 7},
            pregnancies=[{"outcome": "miscarage"}, {"outcome": "ectopic", "gestational_week": "six"}],
        )
    )
    assert [p.split(":")[0] for p in problems] == ["pregnancies[0].outcome", "pregnancies[1].gestational_week"]
    assert problems[0].startswith("pregnancies[0].outcome: got 'miscarage'; allowed: 'biochemical_loss'")


def test_range_and_code_problems_are_all_listed() -> None:
    problems = _problems(
        _case(woman={"age_years": 7}, conditions=["lupus"], transfers=[{"embryos": 0, "outcome": "negative"}])
    )
    assert [p.split(":")[0] for p in problems] == ["woman.age_years", "conditions[0]", "transfers[0].embryos"]


def test_unknown_field_is_rejected_not_ignored() -> None:
    (problem,) = _problems(_case(pregnacies=[]))
    assert problem.startswith("pregnacies: got []; unknown field; allowed fields here: case_id, woman")


def test_wrong_type_names_the_field() -> None:
    (problem,) = _problems(_case(woman={"age_years": "thirty"}))
    assert problem.startswith("woman.age_years: got 'thirty'; allowed: a valid integer")


def test_date_of_birth_needs_a_test_date() -> None:
    (problem,) = _problems({"case_id": "T", "woman": {"date_of_birth": "1990-01-01"}})
    assert problem == "test_date: got None; required with woman.date_of_birth, to compute the age"


def test_free_condition_codes_need_a_known_system() -> None:
    assert parse_case(_case(conditions=["icd10:M32.9", "sle"])).conditions == ("icd10:M32.9", "sle")
    (problem,) = _problems(_case(conditions=["M32.9"]))
    assert "icd10:" in problem


@pytest.mark.parametrize(("text", "day"), [("LH+7", 7), ("lh+10", 10), ("CD21", None), (None, None)])
def test_lh_day(text: str | None, day: int | None) -> None:
    assert lh_day(text) == day


def test_lists_and_texts_no_patient_reaches_are_refused_with_their_paths() -> None:
    """A million pregnancies or a 50 MB note would be stored and re-assessed on every read (issue 18)."""
    huge = {
        "case_id": "BIG",
        "woman": {},
        "pregnancies": [{"outcome": "miscarriage"}] * 51,
        "transfers": [{"embryos": 1, "outcome": "negative"}] * 100,  # the limit itself is allowed
        "note": "x" * 20_001,
        "genotypes": {"woman_hla_c": "C*07:01+C*07:02", "embryos": [{"id": f"E{i}"} for i in range(101)]},
    }
    with pytest.raises(CaseInvalid) as refused:
        parse_case(huge)
    assert [(p.path, p.value, p.allowed) for p in refused.value.problems] == [
        ("pregnancies", "51 entries", "allowed: at most 50 entries"),
        ("genotypes.embryos", "101 entries", "allowed: at most 100 entries"),
        ("note", "20,001 characters", "allowed: at most 20,000 characters"),
    ]
    fine = {**huge, "pregnancies": huge["pregnancies"][:50], "note": "x" * 20_000, "genotypes": {}}
    assert parse_case(fine).note == "x" * 20_000
