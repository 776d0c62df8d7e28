from __future__ import annotations

from typing import Any

import pytest

from decidua.app.casefile import parse_case
from decidua.core.errors import CaseInvalid
from decidua.core.findings import Assessment, Interpretation, Status
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase

NEGATIVE_APL = dict.fromkeys(
    (
        "lupus_anticoagulant",
        "anticardiolipin_igg",
        "anticardiolipin_igm",
        "anti_beta2_glycoprotein_i_igg",
        "anti_beta2_glycoprotein_i_igm",
    ),
    "negative",
)


def run(kb: KnowledgeBase, **fields: Any) -> Assessment:
    data: dict[str, Any] = {"case_id": "T-1", "woman": {"age_years": 30}}
    data.update(fields)
    return assess(parse_case(data), kb)


def nk(value: float) -> dict[str, Any]:
    return {"peripheral": {"nk_percent": {"value": value, "unit": "%"}}}


@pytest.mark.parametrize(
    ("woman", "value", "status", "threshold"),
    [
        ({"age_years": 35}, 20.0, Status.WITHIN_RANGE, 24),  # exactly 35 is not older than 35
        ({"age_years": 36}, 20.0, Status.FLAGGED, 18),
        ({"age_years": 36}, 18.0, Status.WITHIN_RANGE, 18),  # "above 18": 18 itself is not flagged
        ({"age_years": 30}, 24.0, Status.WITHIN_RANGE, 24),
        ({"age_years": 30}, 24.1, Status.FLAGGED, 24),
        ({}, 20.0, Status.NOT_ASSESSED, None),  # age unknown and value between the cut-offs
        ({}, 25.0, Status.FLAGGED, None),  # above both cut-offs whatever the age
        ({}, 17.0, Status.WITHIN_RANGE, None),  # below both
    ],
)
def test_peripheral_nk_clinic_cutoff_depends_on_age(
    kb: KnowledgeBase, woman: dict[str, int], value: float, status: Status, threshold: float | None
) -> None:
    f = run(kb, woman=woman, nk=nk(value)).finding("nk.peripheral.clinic")
    assert f.status is status
    assert f.threshold_applied == threshold
    assert f.measure == value


def test_birthday_decides_the_cutoff(kb: KnowledgeBase) -> None:
    day_before = run(kb, woman={"date_of_birth": "1989-06-15"}, test_date="2025-06-14", nk=nk(20))
    on_birthday = run(kb, woman={"date_of_birth": "1989-06-15"}, test_date="2025-06-15", nk=nk(20))
    assert day_before.finding("nk.peripheral.clinic").status is Status.WITHIN_RANGE
    assert on_birthday.finding("nk.peripheral.clinic").status is Status.FLAGGED


def test_missing_nk_is_not_assessed_never_normal(kb: KnowledgeBase) -> None:
    f = run(kb).finding("nk.peripheral.clinic")
    assert f.status is Status.NOT_ASSESSED
    assert f.missing == ("pb_nk_percent",)


def test_ectopic_and_molar_pregnancies_are_not_counted(kb: KnowledgeBase) -> None:
    a = run(
        kb,
        pregnancies=[
            {"outcome": "ectopic"},
            {"outcome": "molar"},
            {"outcome": "termination"},
            {"outcome": "miscarriage", "gestational_week": 8},
        ],
    )
    assert a.classification.rpl is Status.WITHIN_RANGE
    assert a.classification.losses_counted == 1


def test_biochemical_losses_count_for_eshre(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[{"outcome": "biochemical_loss"}, {"outcome": "miscarriage", "gestational_week": 6}])
    assert a.classification.rpl is Status.FLAGGED
    assert a.classification.losses_counted == 2
    assert a.classification.rpl_definition == "classification.rpl.eshre2022"


def test_missing_history_means_rpl_not_assessed(kb: KnowledgeBase) -> None:
    a = run(kb)
    assert a.classification.rpl is Status.NOT_ASSESSED
    assert a.classification.losses_counted is None


def test_the_core_antiphospholipid_screen_decides_and_beta2_glycoprotein_is_optional(kb: KnowledgeBase) -> None:
    def apl(**results: str) -> Status:
        return run(kb, investigations={"antiphospholipid": results}).finding("investigation.antiphospholipid").status

    assert apl(lupus_anticoagulant="negative") is Status.NOT_ASSESSED  # anticardiolipin not done
    core = {"lupus_anticoagulant": "negative", "anticardiolipin_igg": "negative", "anticardiolipin_igm": "negative"}
    assert apl(**core) is Status.WITHIN_RANGE  # LA + aCL make the screen assessable
    assert apl(**core, anti_beta2_glycoprotein_i_igm="positive") is Status.FLAGGED
    assert apl(anticardiolipin_igm="positive") is Status.FLAGGED  # a positive flags whatever is missing
    assert apl(**NEGATIVE_APL) is Status.WITHIN_RANGE
    partial = run(kb, investigations={"antiphospholipid": core}).finding("investigation.antiphospholipid")
    assert "anti-beta2-glycoprotein I was not tested" in partial.summary


def test_missing_investigations_become_next_steps_of_the_rpl_work_up(kb: KnowledgeBase) -> None:
    losses = [{"outcome": "miscarriage", "gestational_week": 8}] * 2
    a = run(kb, pregnancies=losses, investigations={"uterine_anatomy": {"result": "normal"}})
    assert [s.id for s in a.next_steps] == [
        "next.parental_karyotype",
        "next.poc_genetics",
        "next.antiphospholipid",
        "next.thyroid",
        "care.supportive",
    ]  # uterine anatomy done; thrombophilia is not a recommended step
    assert all(s.indicated for s in a.next_steps)
    apl = next(s for s in a.next_steps if s.id == "next.antiphospholipid")
    assert apl.because == ("investigation.antiphospholipid",)
    assert "RPL met" in apl.indication
    assert (apl.stances[0].source, apl.stances[0].strength) == ("RCOG Green-top Guideline 17 (2023)", "Grade C")


@pytest.mark.parametrize(
    ("value", "day", "status", "interpretation"),
    [
        (5.2, "LH+7", Status.FLAGGED, Interpretation.HIGH),
        (1.0, "LH+7", Status.FLAGGED, Interpretation.LOW),
        (4.5, "LH+7", Status.WITHIN_RANGE, Interpretation.NORMAL),
        (1.2, "LH+7", Status.WITHIN_RANGE, Interpretation.NORMAL),
        (5.2, "LH+10", Status.NOT_ASSESSED, None),  # reference range is for LH+7 biopsies
        (5.2, None, Status.NOT_ASSESSED, None),
    ],
)
def test_uterine_nk_against_the_lh7_reference_range(
    kb: KnowledgeBase, value: float, day: str | None, status: Status, interpretation: Interpretation | None
) -> None:
    uterine: dict[str, Any] = {"density": {"value": value, "unit": "per 100 stromal cells"}}
    if day:
        uterine["cycle_day"] = day
    f = run(kb, nk={"uterine": uterine}).finding("nk.uterine.chen2017")
    assert (f.status, f.interpretation) == (status, interpretation)


def test_uterine_nk_per_mm2_keeps_its_own_unit(kb: KnowledgeBase) -> None:
    a = run(kb, nk={"uterine": {"density": {"value": 410, "unit": "cells/mm2"}, "cycle_day": "LH+7"}})
    assert a.finding("nk.uterine.kuon2017").status is Status.FLAGGED
    assert a.finding("nk.uterine.chen2017").status is Status.NOT_ASSESSED


def test_clinician_words_for_statuses(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[{"outcome": "miscarriage", "gestational_week": 8}], transfers=[], nk=nk(30))
    assert a.finding("classification.rpl.eshre2022").status_label == "not met"
    assert a.finding("classification.rif.coughlan2014").status_label == "not met"
    assert "0 failed transfer(s)" in a.finding("classification.rif.coughlan2014").summary
    assert a.finding("nk.peripheral.clinic").status_label == "above"
    assert run(kb, nk=nk(10)).finding("nk.peripheral.clinic").status_label == "not above"
    assert a.finding("investigation.antiphospholipid").status_label == "not assessed"


def test_missing_inputs_are_named_by_their_form_labels(kb: KnowledgeBase) -> None:
    f = run(kb).finding("investigation.antiphospholipid")
    assert f.missing_labels == (
        "Lupus anticoagulant",
        "Anticardiolipin IgG",
        "Anticardiolipin IgM",
        "Anti-β2GPI IgG",
        "Anti-β2GPI IgM",
    )
    assert run(kb).finding("nk.peripheral.clinic").missing_labels == ("Peripheral NK (CD3-CD56+ of lymphocytes)",)


def test_autoimmune_disease_is_a_flagged_risk_factor(kb: KnowledgeBase) -> None:
    assert run(kb, conditions=["vasculitis"]).finding("autoimmune.systemic").status is Status.FLAGGED
    assert run(kb, conditions=[]).finding("autoimmune.systemic").status is Status.WITHIN_RANGE
    assert run(kb).finding("autoimmune.systemic").status is Status.NOT_ASSESSED


def test_options_show_the_guidelines_stances_and_the_clinic_protocol_never_a_directive(kb: KnowledgeBase) -> None:
    losses = [{"outcome": "miscarriage", "gestational_week": 8}] * 2
    work_up = {
        "uterine_anatomy": {"result": "normal"},
        "antiphospholipid": NEGATIVE_APL,
        "thyroid": {"tsh_interpretation": "normal", "tpo_antibodies": "negative"},
    }
    a = run(kb, pregnancies=losses, transfers=[], nk=nk(30), investigations=work_up)
    ids = [o.id for o in a.options]
    for expected in (
        "option.corticosteroids",
        "option.immunoglobulins",
        "option.intralipid",
        "option.gcsf",
        "option.lymphocyte_immunisation",
        "option.tnf_inhibitors",
        "option.hydroxychloroquine",
        "option.heparin_modulators",
        "option.low_dose_aspirin",
        "option.progesterone",
        "option.immunotherapy_research",
    ):
        assert expected in ids
    for o in a.options:
        assert o.relevant
        assert o.stances
        assert all(s.source and s.strength and s.citations for s in o.stances)
    for option_id in ("option.corticosteroids", "option.immunoglobulins", "option.heparin_modulators"):
        (option,) = [o for o in a.options if o.id == option_id]
        assert "clinic_protocol" in {s.source for s in option.statements}
        assert "nk.peripheral.clinic" in option.because
    assert run(kb, pregnancies=losses[:1], transfers=[], nk=nk(10)).options == ()


def test_rif_by_coughlan_criterion(kb: KnowledgeBase) -> None:
    failed = [
        {"embryos": 2, "outcome": "negative"},
        {"embryos": 1, "outcome": "biochemical"},
        {"embryos": 1, "outcome": "negative"},
    ]
    assert run(kb, transfers=failed).classification.rif is Status.FLAGGED
    assert run(kb, woman={"age_years": 40}, transfers=failed).classification.rif is Status.WITHIN_RANGE
    assert run(kb, transfers=failed[:2]).classification.rif is Status.WITHIN_RANGE
    assert run(kb).classification.rif is Status.NOT_ASSESSED


def test_every_finding_names_rule_version_inputs_and_citations(kb: KnowledgeBase) -> None:
    a = run(kb, nk=nk(30))
    assert a.kb_version == kb.kb_version
    for f in a.findings:
        assert f.kb_version == kb.kb_version
        assert f.citations
        assert f.inputs
        assert f.summary


AA_GENES = ["2DL1", "2DL3", "2DL4", "2DS4", "3DL1", "3DL2", "3DL3", "2DP1", "3DP1"]


def test_maternal_kir_aa_and_2ds1_findings(kb: KnowledgeBase) -> None:
    aa = run(kb, genotypes={"woman_kir": {"present": AA_GENES}})
    assert aa.finding("immunogenetics.kir.maternal_aa").status is Status.FLAGGED
    assert aa.finding("immunogenetics.kir.2ds1_absent").status is Status.FLAGGED
    assert set(aa.finding("immunogenetics.kir.maternal_aa").citations) == {"hiby2004", "hiby2008", "alecsandru2017"}
    bx = run(kb, genotypes={"woman_kir": {"present": [*AA_GENES, "2DS1", "3DS1"]}})
    assert bx.finding("immunogenetics.kir.maternal_aa").status is Status.WITHIN_RANGE
    assert bx.finding("immunogenetics.kir.2ds1_absent").status is Status.WITHIN_RANGE
    untested = run(kb, genotypes={"woman_kir": {"present": AA_GENES, "untested": ["2DS1"]}})
    assert untested.finding("immunogenetics.kir.2ds1_absent").status is Status.NOT_ASSESSED
    assert untested.finding("immunogenetics.kir.maternal_aa").status is Status.NOT_ASSESSED  # 2DS1 could make Bx


def test_bad_kir_gene_in_a_case_names_the_field() -> None:
    with pytest.raises(CaseInvalid) as info:
        parse_case({"case_id": "T", "woman": {"age_years": 30}, "genotypes": {"woman_kir": {"present": ["2DL9"]}}})
    (problem,) = info.value.problems
    assert problem.path == "genotypes.woman_kir"
    assert "unknown KIR gene '2DL9'" in problem.allowed
