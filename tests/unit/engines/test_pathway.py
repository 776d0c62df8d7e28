"""The pathway gate, the guideline's word on findings and options, and the care that follows a finding."""

from __future__ import annotations

from typing import Any

import pytest

from decidua.app.casefile import parse_case
from decidua.core.findings import Assessment, Status
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase, apply_override, parse_override

MISCARRIAGE = {"outcome": "miscarriage", "gestational_week": 8}
CORE_NEGATIVE = {
    "lupus_anticoagulant": "negative",
    "anticardiolipin_igg": "negative",
    "anticardiolipin_igm": "negative",
}
WORKUP_DONE = {
    "karyotype_woman": {"result": "normal"},
    "karyotype_partner": {"result": "normal"},
    "uterine_anatomy": {"result": "normal"},
    "antiphospholipid": CORE_NEGATIVE,
    "thyroid": {"tsh_interpretation": "normal", "tpo_antibodies": "negative"},
}
AA_GENES = ["2DL1", "2DL3", "2DL4", "2DS4", "3DL1", "3DL2", "3DL3", "2DP1", "3DP1"]


def run(kb: KnowledgeBase, **fields: Any) -> Assessment:
    data: dict[str, Any] = {"case_id": "T-1", "woman": {"age_years": 30}}
    data.update(fields)
    return assess(parse_case(data), kb)


def nk(value: float) -> dict[str, Any]:
    return {"peripheral": {"nk_percent": {"value": value, "unit": "%"}}}


def choose(kb: KnowledgeBase, **choices: str) -> KnowledgeBase:
    body = ", ".join(f"{k}: {v}" for k, v in choices.items())
    text = f"override_schema_version: 1\nname: t\nversion: '1'\nsource: test\nchoices: {{{body}}}\n"
    return apply_override(kb, parse_override(text, "test"))


def test_not_rpl_with_high_nk_gets_no_work_up_and_no_immunotherapy(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE, {"outcome": "ectopic"}], transfers=[], nk=nk(30))
    assert (a.pathway.rpl, a.pathway.rif, a.pathway.workup_indicated) == (False, False, False)
    assert "meets neither the RPL nor the RIF definition" in a.pathway.reason
    # the NK result is still shown, for information
    assert a.finding("nk.peripheral.clinic").status is Status.FLAGGED
    assert a.next_steps
    assert not any(s.indicated for s in a.next_steps)
    assert a.options
    assert not any(o.relevant for o in a.options)
    steroid = next(o for o in a.options if o.id == "option.corticosteroids")
    assert steroid.indication.startswith("not indicated: the patient does not meet the RPL or RIF definition")
    karyotype = next(s for s in a.next_steps if s.id == "next.parental_karyotype")
    assert "does not meet the RPL definition" in karyotype.indication


def test_unknown_history_is_cannot_tell_not_met_or_unmet(kb: KnowledgeBase) -> None:
    a = run(kb, nk=nk(30))
    assert (a.pathway.rpl, a.pathway.rif, a.pathway.workup_indicated) == (None, None, None)
    assert "cannot be told" in a.pathway.reason
    history = next(s for s in a.next_steps if s.id == "next.history")
    assert history.indicated  # recording the history is what the case needs first
    assert not any(o.relevant for o in a.options)
    assert all("cannot tell" in o.indication for o in a.options)


def test_rpl_known_not_met_and_rif_unknown_says_which(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE], nk=nk(30))  # transfers not recorded
    assert (a.pathway.rpl, a.pathway.rif, a.pathway.workup_indicated) == (False, None, None)
    steroid = next(o for o in a.options if o.id == "option.corticosteroids")
    assert not steroid.relevant
    assert "RPL not met" in steroid.indication
    assert "RIF cannot be told from the history recorded" in steroid.indication


def test_transfer_failures_only_open_the_rif_work_up_not_the_rpl_one(kb: KnowledgeBase) -> None:
    failed = [{"embryos": 2, "outcome": "negative"}] * 3
    a = run(kb, pregnancies=[], transfers=failed, nk=nk(30))
    assert (a.pathway.rpl, a.pathway.rif, a.pathway.workup_indicated) == (False, True, True)
    steps = {s.id: s for s in a.next_steps}
    assert steps["next.uterine_anatomy"].indicated  # for RPL and RIF
    assert not steps["next.antiphospholipid"].indicated  # an RPL step
    options = {o.id: o for o in a.options}
    steroid = options["option.corticosteroids"]
    assert (steroid.relevant, steroid.gate) == (False, "held_back")  # the work-up before immune causes first
    assert "Uterine anatomy: not assessed" in steroid.indication
    # uterine anatomy alone is not the whole work-up: antiphospholipid antibodies and TSH are asked for, as in RPL
    uterus = {"uterine_anatomy": {"result": "normal"}}
    partial = run(kb, pregnancies=[], transfers=failed, nk=nk(30), investigations=uterus)
    options = {o.id: o for o in partial.options}
    assert (options["option.corticosteroids"].relevant, options["option.corticosteroids"].gate) == (False, "held_back")
    assert "Antiphospholipid antibodies: not assessed" in options["option.corticosteroids"].indication
    steps = {s.id: s for s in partial.next_steps}
    assert steps["next.rif_antiphospholipid_thyroid"].indicated  # the step that completes it is offered for RIF
    assert "could not be checked" in steps["next.rif_antiphospholipid_thyroid"].text
    assert steps["next.rif_coughlan"].indicated
    done = run(kb, pregnancies=[], transfers=failed, nk=nk(30), investigations=WORKUP_DONE)
    options = {o.id: o for o in done.options}
    assert options["option.corticosteroids"].relevant
    assert options["option.corticosteroids"].gate == "met"
    assert options["option.low_dose_aspirin"].relevant  # anticoagulants are raised for RIF as for RPL
    assert "next.rif_antiphospholipid_thyroid" not in {s.id for s in done.next_steps}


def test_untested_antiphospholipid_antibodies_are_never_no_aps(kb: KnowledgeBase) -> None:
    losses = [MISCARRIAGE] * 3
    for conditions in ([], None):
        f = run(kb, pregnancies=losses, conditions=conditions).finding("autoimmune.aps_three_or_more_losses")
        assert f.status is Status.NOT_ASSESSED
        assert "neither confirmed nor excluded" in f.summary
    excluded = run(kb, pregnancies=losses, conditions=[], investigations={"antiphospholipid": CORE_NEGATIVE})
    f = excluded.finding("autoimmune.aps_three_or_more_losses")
    assert f.status is Status.WITHIN_RANGE
    assert "negative" in f.summary
    positive = run(kb, pregnancies=losses, investigations={"antiphospholipid": {"lupus_anticoagulant": "positive"}})
    assert "persistence" in positive.finding("autoimmune.aps_three_or_more_losses").summary


def test_aps_with_two_and_with_three_losses_are_told_apart(kb: KnowledgeBase) -> None:
    three = run(kb, conditions=["antiphospholipid_syndrome"], pregnancies=[MISCARRIAGE] * 3)
    assert three.finding("autoimmune.aps_three_or_more_losses").status is Status.FLAGGED
    assert three.finding("autoimmune.aps_two_losses").status is Status.WITHIN_RANGE
    (aspirin,) = [o for o in three.options if o.id == "option.aps_aspirin_heparin"]
    assert aspirin.relevant
    assert aspirin.stance.strength == "conditional; evidence very low (⊕○○○)"
    assert aspirin.stance.verified
    assert aspirin.stance.wording == "quote"

    two = run(kb, conditions=["antiphospholipid_syndrome"], pregnancies=[MISCARRIAGE] * 2)
    assert two.finding("autoimmune.aps_two_losses").status is Status.FLAGGED
    aps3 = two.finding("autoimmune.aps_three_or_more_losses")
    assert aps3.status is Status.WITHIN_RANGE
    assert "fewer than the three" in aps3.summary  # never "no diagnosed APS" when APS is diagnosed
    ids = [o.id for o in two.options]
    assert "option.aps_aspirin_heparin" not in ids
    (research,) = [o for o in two.options if o.id == "option.aps_two_losses_research"]
    assert research.stance.strength == "good practice point (GPP)"
    assert "only in the context of clinical research" in research.stance.text


def test_sle_points_to_antiphospholipid_testing_and_rheumatology_whatever_the_history(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=["sle"], pregnancies=[MISCARRIAGE], transfers=[])  # not RPL
    steps = {s.id: s for s in a.next_steps}
    assert steps["next.antiphospholipid_autoimmune"].indicated
    assert steps["care.rheumatology"].indicated
    assert steps["care.rheumatology"].stances[0].source.startswith("EULAR")
    assert "option.immunotherapy_research" not in [o.id for o in a.options]  # SLE alone is not an NK finding
    tested = run(kb, conditions=["sle"], investigations={"antiphospholipid": CORE_NEGATIVE})
    assert "next.antiphospholipid_autoimmune" not in [s.id for s in tested.next_steps]


def test_thyroid_autoimmunity_is_a_finding_to_act_on_not_an_explanation(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"thyroid": {"tsh_interpretation": "normal", "tpo_antibodies": "positive"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, investigations=investigations)
    assert a.finding("autoimmune.thyroid_autoimmunity").status is Status.FLAGGED
    assert a.finding("investigation.thyroid").status is Status.WITHIN_RANGE
    assert a.pathway.unexplained_rpl is True  # TPO antibodies do not explain the losses
    care = next(s for s in a.next_steps if s.id == "care.thyroid_autoimmunity")
    assert care.indicated
    assert "TABLET" in care.text


def test_parental_translocation_leads_to_counselling_and_pgt_sr(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"karyotype_partner": {"result": "abnormal", "detail": "46,XY,t(11;22)"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 2, investigations=investigations)
    assert a.pathway.unexplained_rpl is False
    assert next(s for s in a.next_steps if s.id == "care.genetic_counselling").indicated
    assert "option.pgt_sr" in [o.id for o in a.options if o.relevant]
    assert a.prognosis == ()  # the prognosis table is for unexplained RPL


def test_unexplained_rpl_gets_supportive_care_and_a_cited_prognosis(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, investigations=WORKUP_DONE)
    assert a.pathway.unexplained_rpl is True
    assert next(s for s in a.next_steps if s.id == "care.supportive").indicated
    (p,) = a.prognosis
    assert (p.percent, p.table_age, p.table_losses) == (80.0, 30, 3)
    assert p.citations == ("brigham1999", "lund2012")
    assert "ages 20 to 45" in p.validity
    assert any("66.7 %" in s.text for s in p.overall)


@pytest.mark.parametrize(
    ("age", "losses", "percent", "bracket", "explanation"),
    [
        (35, 2, 77.0, (), "Table value for age 35"),
        (37, 2, None, ((35, 77.0), (40, 69.0)), "age 35: 77 % and age 40: 69 %"),  # both rows, never interpolated
        (29, 3, None, (), "row for age 25 could not be checked"),  # one row alone is never shown as hers
        (30, 4, None, (), "could not be checked"),  # a cell not shipped: said, not invented
        (30, 6, None, (), "outside the table"),
        (19, 2, None, (), "outside the table"),
        (46, 2, None, (), "outside the table"),
    ],
)
def test_prognosis_reads_the_table_and_says_when_it_cannot(
    kb: KnowledgeBase,
    age: int,
    losses: int,
    percent: float | None,
    bracket: tuple[tuple[int, float | None], ...],
    explanation: str,
) -> None:
    a = run(kb, woman={"age_years": age}, pregnancies=[MISCARRIAGE] * losses, investigations=WORKUP_DONE)
    (p,) = a.prognosis
    assert p.percent == percent
    assert p.bracket == bracket
    assert explanation in p.explanation


def test_prognosis_is_not_read_from_a_table_whose_cohort_excluded_mid_trimester_losses(kb: KnowledgeBase) -> None:
    late = {"outcome": "miscarriage", "gestational_week": 18}
    a = run(kb, pregnancies=[MISCARRIAGE, MISCARRIAGE, late], investigations=WORKUP_DONE)
    (p,) = a.prognosis
    assert p.percent is None
    assert "excluded women with mid-trimester losses" in p.explanation


def test_unexplained_cannot_be_said_while_recommended_investigations_are_missing(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE] * 2)
    assert a.pathway.unexplained_rpl is None
    (p,) = a.prognosis  # shown, with its validity: it applies only if the investigations find no cause
    assert "idiopathic" in p.validity


def test_kir_aa_with_partner_c2_shows_the_guidelines_the_contrary_evidence_and_how_common_it_is(
    kb: KnowledgeBase,
) -> None:
    a = run(
        kb,
        pregnancies=[MISCARRIAGE] * 2,
        genotypes={"woman_kir": {"present": AA_GENES}, "partner_hla_c": "C*06:02+C*07:01"},
    )
    f = a.finding("immunogenetics.compat.aa_paternal_c2")
    assert f.status is Status.FLAGGED
    assert f.stance is not None
    assert f.stance.source.startswith("ESHRE RPL guideline 2017")
    assert "not recommended in clinical practice" in f.stance.text
    assert {s.source for s in f.stances} >= {"RCOG Green-top Guideline 17 (2023)"}
    against = [s for s in f.statements if s.bearing == "against"]
    assert {k for s in against for k in s.citations} == {"morin2017", "larsen2019"}
    assert any(p.genotype.startswith("KIR AA") and 25 <= p.percent <= 35 for p in f.population)
    assert any(p.genotype.startswith("HLA-C2 carriage") and p.percent > 50 for p in f.population)
    assert "in some studies and not in others" in f.summary


@pytest.mark.parametrize("group", ["nk", "immunogenetics", "autoimmune"])
def test_every_finding_of_the_acted_on_groups_carries_a_stance(kb: KnowledgeBase, group: str) -> None:
    a = run(kb)
    for f in a.findings:
        if f.group == group:
            assert f.stance is not None, f.rule_id
            assert f.stance.source
            assert f.stance.strength
            assert f.stance.citations


def test_biochemical_pregnancy_after_a_transfer_is_counted_once(kb: KnowledgeBase) -> None:
    transfer = [{"embryos": 1, "outcome": "biochemical"}]
    only_transfer = run(kb, pregnancies=[MISCARRIAGE], transfers=transfer)
    assert only_transfer.classification.losses_counted == 2
    assert only_transfer.warnings
    assert "recorded under transfers but not under pregnancies" in only_transfer.warnings[0]
    both = run(
        kb,
        pregnancies=[MISCARRIAGE, {"outcome": "biochemical_loss", "conception": "icsi"}],
        transfers=transfer,
    )
    assert both.classification.losses_counted == 2  # the same event, recorded twice, counts once
    assert both.warnings == ()
    natural = run(
        kb,
        pregnancies=[MISCARRIAGE, {"outcome": "biochemical_loss", "conception": "spontaneous"}],
        transfers=transfer,
    )
    assert natural.classification.losses_counted == 3  # a natural biochemical loss is another event
    # under Coughlan et al. (clinical pregnancy end point) the same transfer is a failed transfer
    assert only_transfer.classification.failed_transfers == 1


def test_asrm_counts_clinical_losses_only(kb: KnowledgeBase) -> None:
    asrm = choose(kb, rpl_definition="classification.rpl.asrm2013")
    a = run(asrm, pregnancies=[MISCARRIAGE, {"outcome": "biochemical_loss"}])
    assert a.classification.rpl is Status.WITHIN_RANGE
    assert a.classification.losses_counted == 1
    assert a.pathway.rpl is False


def test_rcog_counts_three_first_trimester_miscarriages(kb: KnowledgeBase) -> None:
    rcog = choose(kb, rpl_definition="classification.rpl.rcog2023")
    early = run(rcog, pregnancies=[MISCARRIAGE] * 3)
    assert early.classification.rpl is Status.FLAGGED
    assert early.finding("classification.rpl.rcog2023").status_label == "met"
    two = run(rcog, pregnancies=[MISCARRIAGE] * 2 + [{"outcome": "miscarriage", "gestational_week": 16}])
    assert two.classification.rpl is Status.WITHIN_RANGE  # a second-trimester loss is not counted
    unknown = run(rcog, pregnancies=[MISCARRIAGE] * 2 + [{"outcome": "miscarriage"}])
    assert unknown.classification.rpl is Status.NOT_ASSESSED
    assert "record the weeks" in unknown.finding("classification.rpl.rcog2023").summary
    assert run(rcog, pregnancies=[MISCARRIAGE, {"outcome": "miscarriage"}]).classification.rpl is Status.WITHIN_RANGE


def test_eshre_rif_needs_the_clinicians_judgement_and_says_so(kb: KnowledgeBase) -> None:
    eshre = choose(kb, rif_definition="classification.rif.eshre2023")
    failed = [{"embryos": 1, "outcome": "negative"}] * 2
    a = run(eshre, transfers=failed)
    assert a.classification.rif is Status.NOT_ASSESSED
    assert "record the treating clinician's judgement" in a.finding("classification.rif.eshre2023").summary
    assert run(eshre, transfers=failed, rif_judgement=True).pathway.rif is True
    assert run(eshre, transfers=failed, rif_judgement=False).pathway.rif is False


def test_lugano_counts_failed_euploid_transfers(kb: KnowledgeBase) -> None:
    lugano = choose(kb, rif_definition="classification.rif.lugano2023")
    euploid = [{"embryos": 1, "outcome": "negative", "euploid": True}] * 3
    assert run(lugano, transfers=euploid).pathway.rif is True
    untested = [{"embryos": 1, "outcome": "negative"}] * 3
    assert run(lugano, transfers=untested).pathway.rif is None  # their euploid equivalent is the clinician's call
    assert run(lugano, transfers=untested[:2]).pathway.rif is False


def test_a_low_uterine_nk_never_raises_immunosuppression(kb: KnowledgeBase) -> None:
    low = {"uterine": {"density": {"value": 0.8, "unit": "per 100 stromal cells"}, "cycle_day": "LH+7"}}
    failed = [{"embryos": 2, "outcome": "negative"}] * 3
    a = run(kb, transfers=failed, nk=low, investigations={"uterine_anatomy": {"result": "normal"}})
    assert a.finding("nk.uterine.chen2017").status is Status.FLAGGED
    assert a.options == ()  # the immune options follow a high result only


def test_immune_options_are_held_back_while_an_explanation_is_flagged(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"uterine_anatomy": {"result": "congenital_anomaly"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, nk=nk(30), investigations=investigations)
    options = {o.id: o for o in a.options}
    for option_id in ("option.corticosteroids", "option.low_dose_aspirin", "option.heparin_modulators"):
        assert (options[option_id].relevant, options[option_id].gate) == (False, "held_back")
        assert "Uterine anatomy: abnormal" in options[option_id].indication
    aps = run(kb, conditions=["antiphospholipid_syndrome"], pregnancies=[MISCARRIAGE] * 3, nk=nk(30))
    aspirin_alone = next(o for o in aps.options if o.id == "option.low_dose_aspirin")
    assert not aspirin_alone.relevant  # never "aspirin for unexplained losses" beside APS


def test_options_are_grouped_by_the_guidelines_verdict(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, investigations=WORKUP_DONE)
    verdicts = {o.id: (o.stance.verdict, o.stance.favourable) for o in a.options}
    assert verdicts["option.corticosteroids"] == ("not recommended", False)
    assert verdicts["option.progesterone"] == ("may be considered", True)


def test_sle_alone_does_not_raise_hydroxychloroquine_as_an_rpl_treatment(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=["sle"], pregnancies=[MISCARRIAGE], transfers=[])
    assert "option.hydroxychloroquine" not in [o.id for o in a.options]
    assert "hydroxychloroquine" in next(s for s in a.next_steps if s.id == "care.rheumatology").text


def test_diagnosed_aps_gets_shared_care_whatever_the_losses(kb: KnowledgeBase) -> None:
    a = run(
        kb,
        conditions=["antiphospholipid_syndrome"],
        pregnancies=[{"outcome": "stillbirth", "gestational_week": 28}, MISCARRIAGE],
        transfers=[],
    )
    assert a.finding("autoimmune.aps_diagnosed").status is Status.FLAGGED
    care = next(s for s in a.next_steps if s.id == "care.rheumatology")
    assert care.indicated
    assert any("stillbirth" in w for w in a.warnings)  # a late loss is said, not dropped


def test_abnormal_tsh_is_followed_by_its_care(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"thyroid": {"tsh_interpretation": "abnormal", "tpo_antibodies": "negative"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 2, investigations=investigations)
    assert next(s for s in a.next_steps if s.id == "care.thyroid_dysfunction").indicated
    assert a.pathway.unexplained_rpl is False


def test_a_single_positive_antibody_is_repeated_and_leaves_unexplained_open(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"antiphospholipid": CORE_NEGATIVE | {"lupus_anticoagulant": "positive"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 2, investigations=investigations)
    assert a.pathway.unexplained_rpl is None
    assert next(s for s in a.next_steps if s.id == "next.antiphospholipid_repeat").indicated


def test_a_late_loss_brings_antiphospholipid_testing_and_rcog_thrombophilia_testing(kb: KnowledgeBase) -> None:
    late = {"outcome": "miscarriage", "gestational_week": 18}
    a = run(kb, pregnancies=[late], transfers=[])
    steps = {s.id: s for s in a.next_steps}
    assert steps["next.antiphospholipid_late_loss"].indicated
    assert steps["next.thrombophilia_second_trimester"].stances[0].strength == "Grade C"


def test_donor_selection_is_for_donation_cycles_only(kb: KnowledgeBase) -> None:
    genotypes: dict[str, Any] = {"woman_kir": {"present": AA_GENES}, "partner_hla_c": "C*06:02+C*07:01"}
    own = run(kb, pregnancies=[MISCARRIAGE] * 2, genotypes=genotypes)
    assert "option.oocyte_donor_selection" not in [o.id for o in own.options]
    donation = genotypes | {"oocytes": "donor", "oocyte_donors": [{"id": "D1", "hla_c": "C*07:02+C*07:01"}]}
    donor = run(kb, pregnancies=[MISCARRIAGE] * 2, genotypes=donation)
    assert "option.oocyte_donor_selection" in [o.id for o in donor.options]


def test_eshre_rif_without_a_failed_transfer_is_not_met(kb: KnowledgeBase) -> None:
    eshre = choose(kb, rif_definition="classification.rif.eshre2023")
    assert run(eshre, transfers=[]).pathway.rif is False


def test_a_biochemical_loss_of_unknown_conception_beside_a_transfer_one_leaves_rpl_open(kb: KnowledgeBase) -> None:
    a = run(
        kb,
        pregnancies=[{"outcome": "biochemical_loss"}],
        transfers=[{"embryos": 1, "outcome": "biochemical"}],
    )
    assert a.classification.rpl is Status.NOT_ASSESSED  # one event or two
    assert a.classification.losses_counted == 1
    assert "Record its conception" in a.finding("classification.rpl.eshre2022").summary
    assert any("no recorded conception" in w for w in a.warnings)


LATE = {"outcome": "miscarriage", "gestational_week": 16}
STILLBIRTH = {"outcome": "stillbirth", "gestational_week": 30}
APS = ["antiphospholipid_syndrome"]


def test_a_late_loss_lists_the_antibody_test_once_and_names_the_loss(kb: KnowledgeBase) -> None:
    a = run(kb, pregnancies=[MISCARRIAGE, LATE], transfers=[])
    assert a.pathway.rpl is True
    ids = [s.id for s in a.next_steps if "antiphospholipid" in s.id]
    assert ids == ["next.antiphospholipid_late_loss"]  # not beside the RPL step too
    step = next(s for s in a.next_steps if s.id == "next.antiphospholipid_late_loss")
    assert step.indicated
    assert "Miscarriages at 10 weeks or later (before 24; week recorded): 1" in step.indication
    assert "whether hers was one is for the clinician to judge" in step.text  # what the record cannot tell
    twelve = run(kb, pregnancies=[{"outcome": "miscarriage", "gestational_week": 12}], transfers=[])
    assert "next.antiphospholipid_late_loss" in {s.id for s in twelve.next_steps}  # a fetal death from 10 weeks
    stillbirth = run(kb, pregnancies=[MISCARRIAGE, STILLBIRTH], transfers=[])
    assert stillbirth.pathway.rpl is False
    ids = [s.id for s in stillbirth.next_steps if "antiphospholipid" in s.id]
    assert ids == ["next.antiphospholipid_late_loss"]  # no contradicting "not indicated" twin
    step = next(s for s in stillbirth.next_steps if s.id == "next.antiphospholipid_late_loss")
    assert "Fetal deaths at or after 24 weeks: 1" in step.indication


def test_aps_after_a_stillbirth_gets_the_obstetric_aps_option(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=APS, pregnancies=[STILLBIRTH], transfers=[])
    option = next(o for o in a.options if o.id == "option.aps_obstetric")
    assert option.relevant
    assert option.verdict_group == "for"
    assert option.stance.source.startswith("EULAR recommendations for the management of antiphospholipid syndrome")
    assert not option.stance.verified  # the grade could not be read: said, not hidden
    no_late_loss = run(kb, conditions=APS, pregnancies=[MISCARRIAGE] * 3, transfers=[])
    assert "option.aps_obstetric" not in {o.id for o in no_late_loss.options}


def test_systemic_autoimmune_disease_is_not_unexplained_rpl(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=["sle"], pregnancies=[MISCARRIAGE] * 3, transfers=[], nk=nk(30), investigations=WORKUP_DONE)
    assert a.pathway.rpl is True
    assert (a.pathway.unexplained_rpl, a.pathway.explained) == (False, True)
    assert a.prognosis == ()  # the table's cohort was idiopathic
    steroid = next(o for o in a.options if o.id == "option.corticosteroids")
    assert (steroid.relevant, steroid.gate) == (False, "held_back")
    assert "Systemic autoimmune disease (SLE, rheumatoid arthritis, vasculitis): present" in steroid.indication
    assert next(s for s in a.next_steps if s.id == "care.rheumatology").indicated


def test_a_low_nk_result_holds_back_the_immunomodulators_not_the_anticoagulants(kb: KnowledgeBase) -> None:
    low_unk = {"uterine": {"density": {"value": 0.8, "unit": "per 100 stromal cells"}, "cycle_day": "LH+7"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, transfers=[], nk=low_unk, investigations=WORKUP_DONE)
    assert a.pathway.unexplained_rpl is True
    options = {o.id: o for o in a.options}
    steroid = options["option.corticosteroids"]
    assert (steroid.relevant, steroid.gate) == (False, "held_back")
    assert "below its reference range" in steroid.indication
    assert "(low)" in steroid.indication
    assert options["option.heparin_modulators"].relevant  # raised by unexplained RPL, not by the NK result
    # a high peripheral result does not override a low uterine one: the results disagree, and it is said
    both = run(kb, pregnancies=[MISCARRIAGE] * 3, transfers=[], nk=low_unk | nk(30), investigations=WORKUP_DONE)
    steroid = next(o for o in both.options if o.id == "option.corticosteroids")
    assert (steroid.relevant, steroid.gate) == (False, "held_back")
    assert "the results disagree" in steroid.indication


def test_immunotherapy_within_research_is_held_back_like_the_others(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"uterine_anatomy": {"result": "congenital_anomaly"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, transfers=[], nk=nk(30), investigations=investigations)
    research = next(o for o in a.options if o.id == "option.immunotherapy_research")
    assert (research.relevant, research.gate) == (False, "held_back")


def test_an_uncertain_loss_count_leaves_the_aps_thresholds_and_the_prognosis_undecided(kb: KnowledgeBase) -> None:
    # a biochemical loss without a recorded conception beside a transfer's biochemical pregnancy: 2 or 3 losses
    pregnancies = [{"outcome": "biochemical_loss"}, MISCARRIAGE]
    transfers = [{"embryos": 1, "outcome": "biochemical"}]
    a = run(kb, conditions=APS, pregnancies=pregnancies, transfers=transfers, investigations=WORKUP_DONE)
    assert (a.classification.losses_counted, a.classification.losses_counted_max) == (2, 3)
    assert a.classification.losses_shown == "2-3"
    for rule_id in ("autoimmune.aps_three_or_more_losses", "autoimmune.aps_two_losses"):
        f = a.finding(rule_id)
        assert f.status is Status.NOT_ASSESSED, rule_id
        assert "cannot be told" in f.summary
    assert not {"option.aps_aspirin_heparin", "option.aps_two_losses_research"} & {o.id for o in a.options}
    certain = run(kb, conditions=APS, pregnancies=[MISCARRIAGE] * 2, transfers=[], investigations=WORKUP_DONE)
    assert certain.finding("autoimmune.aps_two_losses").status is Status.FLAGGED
    assert certain.classification.losses_shown == "2"


def test_the_prognosis_never_shows_one_neighbouring_row_as_hers(kb: KnowledgeBase) -> None:
    def prognosis(age: int, losses: int, **fields: Any) -> Any:
        a = assess(parse_case({**a_case(age, losses), **fields}), kb)
        (p,) = a.prognosis
        return p

    def a_case(age: int, losses: int) -> dict[str, Any]:
        return {
            "case_id": "T-1",
            "woman": {"age_years": age},
            "pregnancies": [MISCARRIAGE] * losses,
            "transfers": [],
            "conditions": [],
            "investigations": WORKUP_DONE,
        }

    both = prognosis(38, 2)
    assert [p for _, p in both.bracket] == [77, 69]
    one_sided = prognosis(43, 2)  # the row for 45 is not shipped: 69 % is a younger woman's figure
    assert (one_sided.percent, one_sided.bracket) == (None, ())
    assert "row for age 45 could not be checked" in one_sided.explanation
    donor = prognosis(30, 2, genotypes={"oocytes": "donor"})
    assert donor.percent is None
    assert "donor oocytes" in donor.explanation


def test_single_embryo_transfer_is_not_filed_under_a_genotyping_verdict(kb: KnowledgeBase) -> None:
    spec = next(o for o in kb.options if o.id == "option.single_embryo_transfer")
    assert spec.stances_concern is not None
    assert "not the transfer" in spec.stances_concern


def test_aps_recorded_with_negative_antibodies_on_file_is_a_warning(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=APS, pregnancies=[MISCARRIAGE] * 3, transfers=[], investigations=WORKUP_DONE)
    assert any("antiphospholipid antibodies on file are negative" in w for w in a.warnings)
    positive = WORKUP_DONE | {"antiphospholipid": CORE_NEGATIVE | {"lupus_anticoagulant": "positive"}}
    b = run(kb, conditions=APS, pregnancies=[MISCARRIAGE] * 3, transfers=[], investigations=positive)
    assert not any("on file are negative" in w for w in b.warnings)


def test_the_euthyroid_text_is_not_shown_beside_an_abnormal_tsh(kb: KnowledgeBase) -> None:
    thyroid = {"tsh_interpretation": "abnormal", "tpo_antibodies": "positive"}
    a = run(kb, pregnancies=[MISCARRIAGE] * 2, transfers=[], investigations=WORKUP_DONE | {"thyroid": thyroid})
    ids = {s.id for s in a.next_steps}
    assert "care.thyroid_dysfunction" in ids
    assert "care.thyroid_autoimmunity" not in ids
    euthyroid = WORKUP_DONE | {"thyroid": {"tsh_interpretation": "normal", "tpo_antibodies": "positive"}}
    b = run(kb, pregnancies=[MISCARRIAGE] * 2, transfers=[], investigations=euthyroid)
    assert "care.thyroid_autoimmunity" in {s.id for s in b.next_steps}


def test_one_abnormal_pregnancy_tissue_does_not_explain_the_rpl(kb: KnowledgeBase) -> None:
    investigations = WORKUP_DONE | {"poc_genetics": {"result": "abnormal"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, transfers=[], investigations=investigations, conditions=[])
    assert a.finding("investigation.poc_genetics").status is Status.FLAGGED
    assert "not necessarily of the others" in a.finding("investigation.poc_genetics").summary
    assert a.pathway.unexplained_rpl is True
    assert a.prognosis


def test_the_prognosis_table_reads_clinical_miscarriages_in_its_own_cohort_only(kb: KnowledgeBase) -> None:
    def explanation(**fields: Any) -> str:
        case = {"case_id": "T-1", "woman": {"age_years": 30}, "transfers": [], "conditions": []}
        a = assess(parse_case(case | {"investigations": WORKUP_DONE} | fields), kb)
        (p,) = a.prognosis
        assert p.percent is None
        return p.explanation

    biochemical = {"outcome": "biochemical_loss", "conception": "spontaneous"}
    assert "biochemical losses are not counted" in explanation(pregnancies=[biochemical] * 2)
    assert "stillbirth" in explanation(pregnancies=[MISCARRIAGE, MISCARRIAGE, STILLBIRTH])
    donor = {"outcome": "miscarriage", "gestational_week": 8, "conception": "donor_oocyte"}
    assert "donor oocytes" in explanation(pregnancies=[donor, donor])  # the history says so, not only genotypes
    failed = [{"embryos": 2, "outcome": "negative"}] * 3
    assert "implantation failure" in explanation(pregnancies=[MISCARRIAGE] * 2, transfers=failed)


def test_aps_after_a_fetal_death_from_10_weeks_has_one_aspirin_with_heparin_option(kb: KnowledgeBase) -> None:
    twelve = {"outcome": "miscarriage", "gestational_week": 12}
    a = run(kb, conditions=APS, pregnancies=[twelve], transfers=[])
    assert [o.id for o in a.options if "aps" in o.id] == ["option.aps_obstetric"]
    both = run(kb, conditions=APS, pregnancies=[MISCARRIAGE] * 3 + [STILLBIRTH], transfers=[])
    (option,) = [o for o in both.options if "aps" in o.id]  # never two with different timings
    assert option.id == "option.aps_aspirin_heparin"
    assert [s.source.split(" ")[0] for s in option.stances] == ["ESHRE", "EULAR"]


def test_with_sle_the_disease_drugs_are_held_back_as_options_for_losses_saying_why(kb: KnowledgeBase) -> None:
    a = run(kb, conditions=["sle"], pregnancies=[MISCARRIAGE] * 3, transfers=[], nk=nk(30), investigations=WORKUP_DONE)
    hcq = next(o for o in a.options if o.id == "option.hydroxychloroquine")
    assert hcq.title == "Hydroxychloroquine for unexplained losses or a high NK result"
    assert (hcq.relevant, hcq.gate) == (False, "held_back")
    assert "rheumatologist" in hcq.indication
    assert "EULAR emphasises hydroxychloroquine in SLE" in hcq.indication


def test_thyroid_results_say_what_is_known(kb: KnowledgeBase) -> None:
    value_only = WORKUP_DONE | {"thyroid": {"tsh": {"value": 6.8, "unit": "mIU/L"}, "tpo_antibodies": "positive"}}
    a = run(kb, pregnancies=[MISCARRIAGE] * 2, transfers=[], investigations=value_only)
    f = a.finding("investigation.thyroid")
    assert f.status is Status.NOT_ASSESSED
    assert "A TSH value is recorded, but not the laboratory's reading" in f.summary
    ids = {s.id for s in a.next_steps}
    assert "care.thyroid_autoimmunity_tsh" in ids
    assert "care.thyroid_autoimmunity" not in ids  # the euthyroid trial text waits for a normal TSH


def test_explained_is_never_unknown_beside_unexplained(kb: KnowledgeBase) -> None:
    investigations = {k: v for k, v in WORKUP_DONE.items() if not k.startswith("karyotype")}
    a = run(kb, pregnancies=[MISCARRIAGE] * 3, transfers=[], conditions=[], investigations=investigations)
    assert (a.pathway.unexplained_rpl, a.pathway.explained) == (True, False)
