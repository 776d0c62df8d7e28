"""The flat feature row: one column per fact a rule may read.

A case is reduced to this row (``decidua.engines.features.extract``) before rules are evaluated, and the
batch engine reads cohorts in exactly this layout. A missing value is ``None`` (null), never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from decidua.core.expr import Arith, Cmp, Col, Expr, Lit, When
from decidua.core.units import Quantity
from decidua.core.validation import AGE_RANGE, PHYSICAL_RANGE

Dtype = Literal["int", "float", "bool", "str"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    dtype: Dtype
    description: str
    unit: str | None = None
    categories: tuple[str, ...] = ()  # allowed values of a "str" column
    low: float | None = None  # physically or definitionally possible range of a numeric column
    high: float | None = None


_INVESTIGATION = ("normal", "abnormal")
_MOTIF = ("AA", "AB", "BB")
MAX_COUNT = 100


def _count(name: str, description: str) -> FeatureSpec:
    return FeatureSpec(name, "int", description, low=0, high=MAX_COUNT)


def _measured(name: str, description: str, unit: str, quantity: Quantity) -> FeatureSpec:
    low, high = PHYSICAL_RANGE[quantity]
    return FeatureSpec(name, "float", description, unit, low=low, high=high)


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "age_years", "int", "Woman's age in completed years at the tests", "a", low=AGE_RANGE[0], high=AGE_RANGE[1]
    ),
    FeatureSpec("cond_sle", "bool", "Systemic lupus erythematosus (null: conditions not recorded)"),
    FeatureSpec("cond_rheumatoid_arthritis", "bool", "Rheumatoid arthritis"),
    FeatureSpec("cond_vasculitis", "bool", "Vasculitis"),
    FeatureSpec("cond_antiphospholipid_syndrome", "bool", "Diagnosed antiphospholipid syndrome"),
    FeatureSpec("cond_thyroid_autoimmunity", "bool", "Thyroid autoimmunity"),
    _count("n_biochemical_losses", "hCG-confirmed pregnancy losses not seen on ultrasound"),
    _count("n_miscarriages", "Intrauterine pregnancy losses before 24 weeks"),
    _count("n_ectopic", "Ectopic pregnancies"),
    _count("n_molar", "Molar pregnancies"),
    _count("n_terminations", "Terminations of pregnancy"),
    _count("n_stillbirths", "Fetal deaths at or after 24 weeks"),
    _count("n_live_births", "Live births"),
    _count("n_transfers", "Embryo transfers with a known outcome (null: transfers not recorded)"),
    _count("n_transfers_failed", "Embryo transfers that did not reach a clinical pregnancy"),
    _count("n_embryos_failed", "Embryos transferred in failed transfers"),
    _count("n_euploid_transfers_failed", "Failed transfers of PGT-A euploid embryos only"),
    FeatureSpec("karyotype_woman", "str", "Woman's karyotype (null: not done)", categories=_INVESTIGATION),
    FeatureSpec("karyotype_partner", "str", "Partner's karyotype (null: not done)", categories=_INVESTIGATION),
    FeatureSpec("poc_genetics", "str", "Products-of-conception genetics (null: not done)", categories=_INVESTIGATION),
    FeatureSpec(
        "uterine_anatomy",
        "str",
        "Uterine anatomy (null: not assessed)",
        categories=("normal", "congenital_anomaly", "acquired_lesion"),
    ),
    FeatureSpec("apl_lupus_anticoagulant", "bool", "Lupus anticoagulant positive (null: not done)"),
    FeatureSpec("apl_anticardiolipin_igg", "bool", "Anticardiolipin IgG positive (null: not done)"),
    FeatureSpec("apl_anticardiolipin_igm", "bool", "Anticardiolipin IgM positive (null: not done)"),
    FeatureSpec("apl_anti_b2gpi_igg", "bool", "Anti-beta2-glycoprotein I IgG positive (null: not done)"),
    FeatureSpec("apl_anti_b2gpi_igm", "bool", "Anti-beta2-glycoprotein I IgM positive (null: not done)"),
    FeatureSpec("thrombophilia", "str", "Thrombophilia screen (null: not done)", categories=_INVESTIGATION),
    FeatureSpec("thyroid_tsh", "str", "TSH as read by the laboratory (null: not done)", categories=_INVESTIGATION),
    FeatureSpec("thyroid_tpo_positive", "bool", "TPO antibodies positive (null: not done)"),
    _measured("pb_nk_percent", "Peripheral blood CD3-CD56+ NK cells, % of lymphocytes", "%", Quantity.PERCENT),
    _measured("pb_nk_absolute_per_ul", "Peripheral blood NK cells, absolute count", "cells/uL", Quantity.CELLS_PER_UL),
    _measured(
        "unk_per_100_stromal",
        "Uterine CD56+ cells per 100 stromal cells",
        "per 100 stromal cells",
        Quantity.UNK_PER_100_STROMAL,
    ),
    _measured("unk_per_mm2", "Uterine CD56+ cells per mm2 of stroma", "cells/mm2", Quantity.UNK_PER_MM2),
    FeatureSpec("unk_lh_day", "int", "Biopsy day after the LH surge (LH+n)", "d", low=0, high=99),
    # KIR gene content of the woman (decidua.immunogenetics.kir); null: not typed or undetermined
    FeatureSpec("kir_genotype", "str", "Woman's KIR genotype, AA or Bx", categories=("AA", "Bx")),
    FeatureSpec("kir_cen", "str", "Centromeric KIR motif (Cooley et al. 2010)", categories=_MOTIF),
    FeatureSpec("kir_tel", "str", "Telomeric KIR motif (Cooley et al. 2010)", categories=_MOTIF),
    FeatureSpec("kir_b_content", "int", "KIR B-content score (0-4)", low=0, high=4),
    FeatureSpec("kir_has_2ds1", "bool", "KIR2DS1 (activating receptor for HLA-C2) present"),
    FeatureSpec("kir_has_c1_receptor", "bool", "Inhibitory receptor for HLA-C1 (KIR2DL2 or KIR2DL3) present"),
    FeatureSpec("kir_has_c2_receptor", "bool", "Inhibitory receptor for HLA-C2 (KIR2DL1) present"),
    # HLA-C ligands (decidua.immunogenetics.ligands): number of C2 haplotypes, null when either is undetermined
    FeatureSpec("woman_c2_count", "int", "HLA-C2 haplotypes of the woman carrying the pregnancy", low=0, high=2),
    FeatureSpec(
        "oocyte_c2_count", "int", "HLA-C2 haplotypes of the oocyte source (the woman or a donor)", low=0, high=2
    ),
    FeatureSpec("sperm_c2_count", "int", "HLA-C2 haplotypes of the sperm source (partner or donor)", low=0, high=2),
    # derived from the counts above by DERIVED (below); never read from an input
    FeatureSpec(
        "p_embryo_paternal_c2", "float", "Probability that an embryo inherits a paternal HLA-C2", low=0, high=1
    ),
    FeatureSpec(
        "p_embryo_more_c2_than_mother",
        "float",
        "Probability that an embryo carries more HLA-C2 than the woman carrying it",
        low=0,
        high=1,
    ),
)

FEATURE_INDEX: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}


def _half(count: str) -> Expr:
    return Arith("/", Col(count), Lit(2))


# Mendelian probabilities from C2 counts: the embryo's C2 count is the sum of two independent draws, one from
# each parent, each C2 with probability (parent's C2 count) / 2. Kept as expressions so that the one-patient and
# the batch engine compute them identically (and decidua.immunogenetics.compatibility checks them exactly).
_P_EMBRYO_ANY_C2 = Arith(
    "-", Lit(1), Arith("*", Arith("-", Lit(1), _half("oocyte_c2_count")), Arith("-", Lit(1), _half("sperm_c2_count")))
)
_P_EMBRYO_TWO_C2 = Arith("*", _half("oocyte_c2_count"), _half("sperm_c2_count"))
DERIVED: dict[str, Expr] = {
    "p_embryo_paternal_c2": _half("sperm_c2_count"),
    "p_embryo_more_c2_than_mother": When(
        Cmp("==", Col("woman_c2_count"), Lit(0)),
        _P_EMBRYO_ANY_C2,
        When(
            Cmp("==", Col("woman_c2_count"), Lit(1)),
            _P_EMBRYO_TWO_C2,
            # a woman with two C2 cannot be exceeded: 0, yet unknown (null) while the parents are unknown
            When(Cmp("==", Col("woman_c2_count"), Lit(2)), Arith("*", Lit(0.0), _P_EMBRYO_TWO_C2), Lit(None)),
        ),
    ),
}
