"""Reduce a case to its flat feature row (see :mod:`decidua.core.features`)."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

from decidua.core.case import (
    AntibodyResult,
    AntiphospholipidPanel,
    Case,
    ConceptionMode,
    Condition,
    Karyotype,
    Person,
    PregnancyOutcome,
    TestResult,
    Thyroid,
    TransferOutcome,
    UterineAnatomy,
)
from decidua.core.errors import InputError, Problem
from decidua.core.expr import Scalar, evaluate
from decidua.core.features import DERIVED
from decidua.core.units import Quantity
from decidua.core.validation import case_age, lh_day, measurement_value, uterine_quantity
from decidua.immunogenetics.compatibility import c2_count, resolve_hla_c
from decidua.immunogenetics.kir import KirProfile, classify_typing

Row = dict[str, Scalar]

# A biochemical loss conceived naturally or by insemination cannot be the biochemical pregnancy of an embryo transfer;
# one conceived by IVF/ICSI/donation, or of unrecorded conception, may be (see n_nonvisualised_losses).
NOT_FROM_A_TRANSFER = frozenset({ConceptionMode.SPONTANEOUS, ConceptionMode.IUI})
FROM_A_TRANSFER = frozenset(
    {ConceptionMode.IVF, ConceptionMode.ICSI, ConceptionMode.DONOR_OOCYTE, ConceptionMode.DONOR_EMBRYO}
)
FIRST_TRIMESTER_WEEKS = 14.0  # a loss before 14 completed weeks is a first-trimester loss
FETAL_WEEKS = 10.0  # from 10 weeks a loss is a fetal death (the antiphospholipid syndrome criteria)
DONOR_OOCYTES = frozenset({ConceptionMode.DONOR_OOCYTE, ConceptionMode.DONOR_EMBRYO})


def _result(r: TestResult | None) -> str | None:
    return None if r is None or r is TestResult.NOT_DONE else r.value


def _karyotype(k: Karyotype | None) -> str | None:
    return None if k is None else _result(k.result)


def _antibody(a: AntibodyResult) -> bool | None:
    return None if a is AntibodyResult.NOT_DONE else a is AntibodyResult.POSITIVE


def extract(case: Case) -> Row:
    """The feature row of ``case``; ``None`` wherever the case does not say.

    ``case`` must have passed :func:`decidua.core.validation.check_case`.
    """
    row: Row = {"age_years": case_age(case)}

    conditions = None if case.conditions is None else set(case.conditions)
    for cond in Condition:
        row[f"cond_{cond.value}"] = None if conditions is None else cond.value in conditions

    if case.pregnancies is None:
        counts: Counter[PregnancyOutcome] | None = None
        row |= dict.fromkeys(
            (
                "n_biochemical_losses_art",
                "n_biochemical_losses_art_known",
                "n_first_trimester_miscarriages",
                "n_miscarriages_week_unknown",
                "n_miscarriages_from_10_weeks",
                "n_donor_oocyte_pregnancies",
            )
        )
    else:
        counts = Counter(p.outcome for p in case.pregnancies)
        miscarriages = [p for p in case.pregnancies if p.outcome is PregnancyOutcome.MISCARRIAGE]
        biochemical = [p for p in case.pregnancies if p.outcome is PregnancyOutcome.BIOCHEMICAL_LOSS]
        row["n_biochemical_losses_art"] = sum(1 for p in biochemical if p.conception not in NOT_FROM_A_TRANSFER)
        row["n_biochemical_losses_art_known"] = sum(1 for p in biochemical if p.conception in FROM_A_TRANSFER)
        row["n_first_trimester_miscarriages"] = sum(
            1 for p in miscarriages if p.gestational_week is not None and p.gestational_week < FIRST_TRIMESTER_WEEKS
        )
        row["n_miscarriages_week_unknown"] = sum(1 for p in miscarriages if p.gestational_week is None)
        row["n_miscarriages_from_10_weeks"] = sum(
            1 for p in miscarriages if p.gestational_week is not None and p.gestational_week >= FETAL_WEEKS
        )
        row["n_donor_oocyte_pregnancies"] = sum(1 for p in case.pregnancies if p.conception in DONOR_OOCYTES)
    for name, outcome in (
        ("n_biochemical_losses", PregnancyOutcome.BIOCHEMICAL_LOSS),
        ("n_miscarriages", PregnancyOutcome.MISCARRIAGE),
        ("n_ectopic", PregnancyOutcome.ECTOPIC),
        ("n_molar", PregnancyOutcome.MOLAR),
        ("n_terminations", PregnancyOutcome.TERMINATION),
        ("n_stillbirths", PregnancyOutcome.STILLBIRTH),
        ("n_live_births", PregnancyOutcome.LIVE_BIRTH),
    ):
        row[name] = None if counts is None else counts[outcome]

    if case.transfers is None:
        row |= {
            "n_transfers": None,
            "n_transfers_failed": None,
            "n_transfers_biochemical": None,
            "n_embryos_failed": None,
            "n_euploid_transfers_failed": None,
        }
    else:
        known = [t for t in case.transfers if t.outcome is not TransferOutcome.PENDING]
        failed = [t for t in known if t.outcome is not TransferOutcome.CLINICAL_PREGNANCY]
        row["n_transfers"] = len(known)
        row["n_transfers_failed"] = len(failed)
        row["n_transfers_biochemical"] = sum(1 for t in failed if t.outcome is TransferOutcome.BIOCHEMICAL)
        row["n_embryos_failed"] = sum(t.embryos for t in failed)
        row["n_euploid_transfers_failed"] = sum(1 for t in failed if t.euploid is True)

    row["rif_judgement"] = case.rif_judgement
    row["oocytes_donor"] = case.genotypes.oocytes == "donor"
    inv = case.investigations
    row["karyotype_woman"] = _karyotype(inv.karyotype_woman)
    row["karyotype_partner"] = _karyotype(inv.karyotype_partner)
    row["poc_genetics"] = _karyotype(inv.poc_genetics)
    anatomy = inv.uterine_anatomy
    row["uterine_anatomy"] = (
        None if anatomy is None or anatomy.result is UterineAnatomy.NOT_DONE else anatomy.result.value
    )
    apl = inv.antiphospholipid or AntiphospholipidPanel()  # no panel recorded: every antibody not done
    row["apl_lupus_anticoagulant"] = _antibody(apl.lupus_anticoagulant)
    row["apl_anticardiolipin_igg"] = _antibody(apl.anticardiolipin_igg)
    row["apl_anticardiolipin_igm"] = _antibody(apl.anticardiolipin_igm)
    row["apl_anti_b2gpi_igg"] = _antibody(apl.anti_beta2_glycoprotein_i_igg)
    row["apl_anti_b2gpi_igm"] = _antibody(apl.anti_beta2_glycoprotein_i_igm)
    row["thrombophilia"] = None if inv.thrombophilia is None else _result(inv.thrombophilia.result)
    thyroid = inv.thyroid or Thyroid()  # not recorded: TSH and TPO antibodies not done
    row["thyroid_tsh"] = _result(thyroid.tsh_interpretation)
    row["thyroid_tsh_value_recorded"] = thyroid.tsh is not None
    row["thyroid_tpo_positive"] = _antibody(thyroid.tpo_antibodies)

    pb = case.nk.peripheral
    row["pb_nk_percent"] = None if pb is None else measurement_value(pb.nk_percent, Quantity.PERCENT)
    row["pb_nk_absolute_per_ul"] = (
        None if pb is None or pb.absolute_count is None else measurement_value(pb.absolute_count, Quantity.CELLS_PER_UL)
    )
    u = case.nk.uterine
    quantity = None if u is None else uterine_quantity(u.density.unit)
    row["unk_per_100_stromal"] = (
        measurement_value(u.density, quantity) if u is not None and quantity is Quantity.UNK_PER_100_STROMAL else None
    )
    row["unk_per_mm2"] = (
        measurement_value(u.density, quantity) if u is not None and quantity is Quantity.UNK_PER_MM2 else None
    )
    row["unk_lh_day"] = None if u is None else lh_day(u.cycle_day)
    row |= kir_features(None if case.genotypes.woman_kir is None else classify_typing(case.genotypes.woman_kir))
    row |= hla_c_features(case)
    return derive(row)


def derive(row: Row) -> Row:
    """Add the derived features (``DERIVED``, in order) to a row of the others; the batch engine derives them
    from the same expressions (:func:`decidua.engines.batch.derive_lazy`)."""
    for name, expr in DERIVED.items():
        row[name] = evaluate(expr, row)
    return row


def _c2(text: str | None) -> int | None:
    if text is None:
        return None
    resolved = resolve_hla_c(text)
    return None if resolved.genotype is None else c2_count(resolved.genotype)


def chosen_oocyte_donor(case: Case) -> Person | None:
    """The oocyte donor of the cycle assessed: the one ``oocyte_donor_id`` names, or the only candidate; None with
    own oocytes or several candidates and none chosen (then the donor ranking compares them)."""
    g = case.genotypes
    if g.oocytes == "own":
        return None
    chosen = [d for d in g.oocyte_donors if d.id == g.oocyte_donor_id] if g.oocyte_donor_id else list(g.oocyte_donors)
    return chosen[0] if len(chosen) == 1 else None


def gamete_sources(case: Case) -> tuple[str | None, str | None]:
    """HLA-C typings of the oocyte source and of the sperm source of the cycle assessed."""
    g = case.genotypes
    if g.oocytes == "own":
        oocyte = g.woman_hla_c
    else:
        donor = chosen_oocyte_donor(case)
        oocyte = None if donor is None else donor.hla_c
    sperm = g.partner_hla_c if g.sperm == "partner" else g.sperm_donor_hla_c
    return oocyte, sperm


def hla_c_features(case: Case) -> Row:
    """C2 counts of the woman (uterus), the oocyte donor (with donor oocytes) and the sperm source (null when
    undetermined); the oocyte source's count is derived from them (``DERIVED``), in the batch engine too."""
    g = case.genotypes
    oocyte, sperm = gamete_sources(case)
    return {
        "woman_c2_count": _c2(g.woman_hla_c),
        "oocyte_donor_c2_count": _c2(oocyte) if g.oocytes == "donor" else None,
        "sperm_c2_count": _c2(sperm),
    }


def _value(v: StrEnum | None) -> str | None:
    return None if v is None else v.value


KIR_FEATURES = (
    "kir_genotype",
    "kir_cen",
    "kir_tel",
    "kir_b_content",
    "kir_has_2ds1",
    "kir_has_c1_receptor",
    "kir_has_c2_receptor",
)


def kir_features(profile: KirProfile | None) -> Row:
    """The woman's KIR columns of the feature row (all null when she was not typed)."""
    if profile is None:
        return dict.fromkeys(KIR_FEATURES)
    return {
        "kir_genotype": _value(profile.genotype),
        "kir_cen": _value(profile.cen),
        "kir_tel": _value(profile.tel),
        "kir_b_content": profile.b_content,
        "kir_has_2ds1": profile.has_2ds1,
        "kir_has_c1_receptor": profile.has_c1_receptor,
        "kir_has_c2_receptor": profile.has_c2_receptor,
    }


def check_genotypes(case: Case) -> list[Problem]:
    """Problems in the case's genotypes (KIR gene names, allele names, GL Strings), each with its field path."""
    out: list[Problem] = []
    g = case.genotypes
    if g.woman_kir is not None:
        try:
            classify_typing(g.woman_kir)
        except InputError as exc:
            out.append(Problem("genotypes.woman_kir", g.woman_kir.gl_string or list(g.woman_kir.present), str(exc)))
    typings = [
        ("woman_hla_c", g.woman_hla_c),
        ("partner_hla_c", g.partner_hla_c),
        ("sperm_donor_hla_c", g.sperm_donor_hla_c),
    ]
    typings += [(f"oocyte_donors[{i}].hla_c", d.hla_c) for i, d in enumerate(g.oocyte_donors)]
    typings += [(f"embryos[{i}].hla_c", e.hla_c) for i, e in enumerate(g.embryos)]
    for path, text in typings:
        if text is None:
            continue
        try:
            resolve_hla_c(text)
        except InputError as exc:
            out.append(Problem(f"genotypes.{path}", text, str(exc)))
    return out
