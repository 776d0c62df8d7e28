"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from decidua.core.case import (
    AntibodyResult,
    AntiphospholipidPanel,
    Case,
    ConceptionMode,
    EmbryoTransfer,
    Genotypes,
    Investigations,
    Karyotype,
    KirTyping,
    Measurement,
    NKTests,
    PeripheralNK,
    Person,
    Pregnancy,
    PregnancyOutcome,
    TestResult,
    Thyroid,
    TransferOutcome,
    UterineAnatomy,
    UterineAssessment,
    UterineNK,
    Woman,
)
from decidua.core.features import FEATURES, FeatureSpec

# Values on and around the knowledge base's thresholds, so that boundaries are exercised often.
_EDGE_FLOATS = [0.0, 1.19, 1.2, 4.5, 4.51, 11.9, 12.0, 12.1, 16.1, 16.2, 17.9, 18.0, 18.1, 23.9, 24.0, 24.1, 26.0, 99.9]
_EDGE_MM2 = [0.0, 299.0, 300.0, 300.5, 1000.0]


# Real HLA-C typings: C1 and C2 alleles, a null, an ambiguous allele list and a low-resolution group.
HLA_C_POOL = [
    "C*07:02",
    "C*07:01",
    "C*03:04",
    "C*06:02",
    "C*04:01",
    "C*05:01",
    "C*04:09N",
    "C*07:01/C*06:02",
    "C*01:02:01G",
]


def _value(spec: FeatureSpec) -> st.SearchStrategy[Any]:
    if spec.dtype == "bool":
        return st.booleans()
    if spec.dtype == "str":
        return st.sampled_from(spec.categories)
    if spec.name == "age_years":
        return st.sampled_from([18, 25, 34, 35, 36, 39, 40, 41, 45])
    if spec.name == "unk_lh_day":
        return st.integers(0, 12)
    if spec.dtype == "int":
        return st.integers(0, 6)
    if spec.name == "unk_per_mm2":
        return st.sampled_from(_EDGE_MM2) | st.floats(0, 2000, allow_nan=False)
    return st.sampled_from(_EDGE_FLOATS) | st.floats(0, 100, allow_nan=False)


_FEATURE_VALUES = {f.name: st.none() | _value(f) for f in FEATURES}  # built once: a strategy per draw is slow


def feature_rows() -> st.SearchStrategy[dict[str, Any]]:
    """A feature row with any mix of missing and present values."""
    return st.fixed_dictionaries(_FEATURE_VALUES)


_weeks = st.sampled_from([4.0, 5.5, 8.0, 12.0, 13.9, 14.0, 20.0, 23.9])


@st.composite
def pregnancies(draw: st.DrawFn) -> Pregnancy:
    outcome = draw(st.sampled_from(list(PregnancyOutcome)))
    if outcome is PregnancyOutcome.STILLBIRTH:
        week: float | None = draw(st.none() | st.sampled_from([24.0, 30.0, 38.0]))
    elif outcome in (PregnancyOutcome.LIVE_BIRTH, PregnancyOutcome.ONGOING):
        week = draw(st.none() | st.sampled_from([10.0, 30.0, 39.0]))
    else:
        week = draw(st.none() | _weeks)
    return Pregnancy(outcome, week, draw(st.none() | st.sampled_from(list(ConceptionMode))))


def _measure(values: st.SearchStrategy[float], unit: str) -> st.SearchStrategy[Measurement]:
    return st.builds(Measurement, values, st.just(unit))


_ANTIBODY = st.sampled_from(list(AntibodyResult))
_KARYOTYPE = st.none() | st.builds(Karyotype, st.sampled_from(list(TestResult)))
_PERIPHERAL = st.none() | st.builds(PeripheralNK, _measure(st.sampled_from(_EDGE_FLOATS), "%"))
_UTERINE = st.none() | st.builds(
    UterineNK,
    _measure(st.sampled_from(_EDGE_FLOATS), "per 100 stromal cells")
    | _measure(st.sampled_from(_EDGE_MM2), "cells/mm2"),
    st.none() | st.sampled_from(["LH+5", "LH+7", "LH+9", "CD21"]),
)
_ANATOMY = st.none() | st.builds(UterineAssessment, st.sampled_from(list(UterineAnatomy)))
_APL = st.none() | st.builds(AntiphospholipidPanel, _ANTIBODY, _ANTIBODY, _ANTIBODY, _ANTIBODY, _ANTIBODY)
_THYROID = st.none() | st.builds(Thyroid, st.none(), st.sampled_from(list(TestResult)), _ANTIBODY)
_CONDITIONS = st.none() | st.lists(
    st.sampled_from(
        [
            "sle",
            "rheumatoid_arthritis",
            "vasculitis",
            "antiphospholipid_syndrome",
            "thyroid_autoimmunity",
            "icd10:E11.9",
        ]
    ),
    unique=True,
    max_size=3,
)
_LOCI = [
    "2DL1",
    "2DL2",
    "2DL3",
    "2DL4",
    "2DL5",
    "2DS1",
    "2DS2",
    "2DS3",
    "2DS4",
    "2DS5",
    "3DL1",
    "3DL2",
    "3DL3",
    "3DS1",
    "2DP1",
    "3DP1",
]
_KIR = st.none() | st.builds(
    lambda present, untested, source: KirTyping(
        present=tuple(g for g in _LOCI if g in present and g not in untested),
        untested=tuple(g for g in _LOCI if g in untested),
        source=source,
    ),
    st.sets(st.sampled_from(_LOCI)),
    st.sets(st.sampled_from(_LOCI), max_size=2),
    st.none() | st.sampled_from(["t1k S1_genotype.tsv, sample S1, quality threshold 0", "SSO kit, lot 7"]),
)
_HLA = st.none() | st.builds(lambda a, b: f"{a}+{b}", st.sampled_from(HLA_C_POOL), st.sampled_from(HLA_C_POOL))
_DONORS = st.lists(st.builds(Person, st.sampled_from(["D1", "D2", "D3"]), _HLA), max_size=3, unique_by=lambda p: p.id)
_CASE_ID = st.from_regex(r"[A-Z]{2}-[0-9]{1,5}", fullmatch=True)
_PREGNANCY_LISTS = st.none() | st.lists(pregnancies(), max_size=6).map(tuple)
_TRANSFER_LISTS = st.none() | st.lists(
    st.builds(EmbryoTransfer, st.integers(1, 3), st.sampled_from(list(TransferOutcome)), st.none() | st.booleans()),
    max_size=5,
).map(tuple)
_MAYBE_BOOL = st.none() | st.booleans()
# the strategies above are built once: building them inside every draw made case generation slow


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Valid cases covering every section, each possibly missing."""
    nk = NKTests(peripheral=draw(_PERIPHERAL), uterine=draw(_UTERINE))
    inv = Investigations(
        karyotype_woman=draw(_KARYOTYPE),
        karyotype_partner=draw(_KARYOTYPE),
        poc_genetics=draw(_KARYOTYPE),
        uterine_anatomy=draw(_ANATOMY),
        antiphospholipid=draw(_APL),
        thyroid=draw(_THYROID),
    )
    conditions = draw(_CONDITIONS)
    kir = draw(_KIR)
    donors = draw(_DONORS)
    oocytes = draw(st.sampled_from(["own", "donor"])) if donors else "own"
    genotypes = Genotypes(
        woman_kir=kir,
        woman_hla_c=draw(_HLA),
        partner_hla_c=draw(_HLA),
        sperm_donor_hla_c=draw(_HLA),
        sperm=draw(st.sampled_from(["partner", "donor"])),
        oocyte_donors=tuple(donors),
        oocytes=oocytes,
        oocyte_donor_id=draw(st.none() | st.sampled_from([d.id for d in donors])) if oocytes == "donor" else None,
    )
    return Case(
        case_id=draw(_CASE_ID),
        woman=Woman(age_years=draw(st.integers(18, 50))),
        conditions=None if conditions is None else tuple(conditions),
        pregnancies=draw(_PREGNANCY_LISTS),
        transfers=draw(_TRANSFER_LISTS),
        rif_judgement=draw(_MAYBE_BOOL),
        investigations=inv,
        nk=nk,
        genotypes=genotypes,
    )
