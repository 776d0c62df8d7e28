"""The flat feature row: one column per fact a rule may read.

A case is reduced to this row (``decidua.engines.extract.extract``) before rules are evaluated, and the
batch engine reads cohorts in exactly this layout. A missing value is ``None`` (null), never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from decidua.core.expr import Arith, Cmp, Col, Expr, IsNull, Lit, When
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
    label: str = ""  # where a clinician records it: the case form's label (shown when the input is missing)


_INVESTIGATION = ("normal", "abnormal")
_MOTIF = ("AA", "AB", "BB")
MAX_COUNT = 100


_PREGNANCIES = "Pregnancies (outcome of each)"
_TRANSFERS = "Embryo transfers (embryos and outcome of each)"
_CONDITIONS = "Conditions"
_KIR = "KIR genes present / absent / not tested (woman)"


def _count(name: str, description: str, label: str) -> FeatureSpec:
    return FeatureSpec(name, "int", description, low=0, high=MAX_COUNT, label=label)


def _measured(name: str, description: str, unit: str, quantity: Quantity, label: str) -> FeatureSpec:
    low, high = PHYSICAL_RANGE[quantity]
    return FeatureSpec(name, "float", description, unit, low=low, high=high, label=label)


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "age_years",
        "int",
        "Woman's age in completed years at the tests",
        "a",
        low=AGE_RANGE[0],
        high=AGE_RANGE[1],
        label="Age (completed years), or date of birth with the test date",
    ),
    FeatureSpec("cond_sle", "bool", "Systemic lupus erythematosus (null: conditions not recorded)", label=_CONDITIONS),
    FeatureSpec("cond_rheumatoid_arthritis", "bool", "Rheumatoid arthritis", label=_CONDITIONS),
    FeatureSpec("cond_vasculitis", "bool", "Vasculitis", label=_CONDITIONS),
    FeatureSpec("cond_antiphospholipid_syndrome", "bool", "Diagnosed antiphospholipid syndrome", label=_CONDITIONS),
    FeatureSpec("cond_thyroid_autoimmunity", "bool", "Thyroid autoimmunity", label=_CONDITIONS),
    _count("n_biochemical_losses", "hCG-confirmed pregnancy losses not seen on ultrasound", _PREGNANCIES),
    _count(
        "n_biochemical_losses_art",
        "Biochemical losses under pregnancies conceived by IVF/ICSI/donation or of unrecorded conception "
        "(they may be the biochemical pregnancies of embryo transfers)",
        _PREGNANCIES,
    ),
    _count(
        "n_biochemical_losses_art_known",
        "Biochemical losses under pregnancies with IVF/ICSI/donation recorded as their conception",
        _PREGNANCIES,
    ),
    _count("n_miscarriages", "Intrauterine pregnancy losses before 24 weeks", _PREGNANCIES),
    _count("n_first_trimester_miscarriages", "Miscarriages before 14 weeks (week recorded)", _PREGNANCIES),
    _count("n_miscarriages_week_unknown", "Miscarriages whose gestational week is not recorded", _PREGNANCIES),
    _count(
        "n_miscarriages_from_10_weeks",
        "Miscarriages at 10 weeks or later (before 24; week recorded)",
        _PREGNANCIES,
    ),
    _count(
        "n_donor_oocyte_pregnancies",
        "Pregnancies conceived with donor oocytes or a donor embryo",
        _PREGNANCIES,
    ),
    _count("n_ectopic", "Ectopic pregnancies", _PREGNANCIES),
    _count("n_molar", "Molar pregnancies", _PREGNANCIES),
    _count("n_terminations", "Terminations of pregnancy", _PREGNANCIES),
    _count("n_stillbirths", "Fetal deaths at or after 24 weeks", _PREGNANCIES),
    _count("n_live_births", "Live births", _PREGNANCIES),
    _count("n_transfers", "Embryo transfers with a known outcome (null: transfers not recorded)", _TRANSFERS),
    _count("n_transfers_failed", "Embryo transfers that did not reach a clinical pregnancy", _TRANSFERS),
    _count("n_transfers_biochemical", "Embryo transfers that ended in a biochemical pregnancy", _TRANSFERS),
    _count("n_embryos_failed", "Embryos transferred in failed transfers", _TRANSFERS),
    _count("n_euploid_transfers_failed", "Failed transfers of PGT-A euploid embryos only", _TRANSFERS),
    FeatureSpec(
        "oocytes_donor",
        "bool",
        "The embryos of the cycle assessed come from donor oocytes (the uterus is the woman's)",
        label="Oocytes",
    ),
    FeatureSpec(
        "rif_judgement",
        "bool",
        "The treating clinician judges that transfers of embryos considered viable failed often enough for this "
        "patient to warrant further investigation (ESHRE 2023 description of RIF)",
        label="RIF by clinical judgement (ESHRE 2023)",
    ),
    FeatureSpec(
        "karyotype_woman",
        "str",
        "Woman's karyotype (null: not done)",
        categories=_INVESTIGATION,
        label="Karyotype, woman",
    ),
    FeatureSpec(
        "karyotype_partner",
        "str",
        "Partner's karyotype (null: not done)",
        categories=_INVESTIGATION,
        label="Karyotype, partner",
    ),
    FeatureSpec(
        "poc_genetics",
        "str",
        "Products-of-conception genetics (null: not done)",
        categories=_INVESTIGATION,
        label="Pregnancy-tissue genetics",
    ),
    FeatureSpec(
        "uterine_anatomy",
        "str",
        "Uterine anatomy (null: not assessed)",
        categories=("normal", "congenital_anomaly", "acquired_lesion"),
        label="Uterine anatomy",
    ),
    FeatureSpec(
        "apl_lupus_anticoagulant", "bool", "Lupus anticoagulant positive (null: not done)", label="Lupus anticoagulant"
    ),
    FeatureSpec(
        "apl_anticardiolipin_igg", "bool", "Anticardiolipin IgG positive (null: not done)", label="Anticardiolipin IgG"
    ),
    FeatureSpec(
        "apl_anticardiolipin_igm", "bool", "Anticardiolipin IgM positive (null: not done)", label="Anticardiolipin IgM"
    ),
    FeatureSpec(
        "apl_anti_b2gpi_igg", "bool", "Anti-beta2-glycoprotein I IgG positive (null: not done)", label="Anti-β2GPI IgG"
    ),
    FeatureSpec(
        "apl_anti_b2gpi_igm", "bool", "Anti-beta2-glycoprotein I IgM positive (null: not done)", label="Anti-β2GPI IgM"
    ),
    FeatureSpec(
        "thrombophilia",
        "str",
        "Thrombophilia screen (null: not done)",
        categories=_INVESTIGATION,
        label="Thrombophilia",
    ),
    FeatureSpec(
        "thyroid_tsh",
        "str",
        "TSH as read by the laboratory (null: not done)",
        categories=_INVESTIGATION,
        label="TSH, laboratory reading",
    ),
    FeatureSpec("thyroid_tsh_value_recorded", "bool", "A TSH value is recorded (whatever its reading)", label="TSH"),
    FeatureSpec("thyroid_tpo_positive", "bool", "TPO antibodies positive (null: not done)", label="TPO antibodies"),
    _measured(
        "pb_nk_percent",
        "Peripheral blood CD3-CD56+ NK cells, % of lymphocytes",
        "%",
        Quantity.PERCENT,
        "Peripheral NK (CD3-CD56+ of lymphocytes)",
    ),
    _measured(
        "pb_nk_absolute_per_ul",
        "Peripheral blood NK cells, absolute count",
        "cells/uL",
        Quantity.CELLS_PER_UL,
        "Absolute NK count",
    ),
    _measured(
        "unk_per_100_stromal",
        "Uterine CD56+ cells per 100 stromal cells",
        "per 100 stromal cells",
        Quantity.UNK_PER_100_STROMAL,
        "Uterine NK density (per 100 stromal cells)",
    ),
    _measured(
        "unk_per_mm2",
        "Uterine CD56+ cells per mm2 of stroma",
        "cells/mm2",
        Quantity.UNK_PER_MM2,
        "Uterine NK density (cells/mm2)",
    ),
    FeatureSpec(
        "unk_lh_day", "int", "Biopsy day after the LH surge (LH+n)", "d", low=0, high=99, label="Cycle day (LH+n)"
    ),
    # KIR gene content of the woman (decidua.immunogenetics.kir); null: not typed or undetermined
    FeatureSpec("kir_genotype", "str", "Woman's KIR genotype, AA or Bx", categories=("AA", "Bx"), label=_KIR),
    FeatureSpec("kir_cen", "str", "Centromeric KIR motif (Cooley et al. 2010)", categories=_MOTIF, label=_KIR),
    FeatureSpec("kir_tel", "str", "Telomeric KIR motif (Cooley et al. 2010)", categories=_MOTIF, label=_KIR),
    FeatureSpec("kir_b_content", "int", "KIR B-content score (0-4)", low=0, high=4, label=_KIR),
    FeatureSpec("kir_has_2ds1", "bool", "KIR2DS1 (activating receptor for HLA-C2) present", label=_KIR),
    FeatureSpec(
        "kir_has_c1_receptor", "bool", "Inhibitory receptor for HLA-C1 (KIR2DL2 or KIR2DL3) present", label=_KIR
    ),
    FeatureSpec("kir_has_c2_receptor", "bool", "Inhibitory receptor for HLA-C2 (KIR2DL1) present", label=_KIR),
    # HLA-C ligands (decidua.immunogenetics.ligands): number of C2 haplotypes, null when either is undetermined
    FeatureSpec(
        "woman_c2_count",
        "int",
        "HLA-C2 haplotypes of the woman carrying the pregnancy",
        low=0,
        high=2,
        label="HLA-C, woman",
    ),
    FeatureSpec(
        "oocyte_donor_c2_count",
        "int",
        "HLA-C2 haplotypes of the oocyte donor of the cycle (null: own oocytes, or no one donor chosen)",
        low=0,
        high=2,
        label="Oocyte donors: HLA-C of the oocyte donor used",
    ),
    FeatureSpec(
        "sperm_c2_count",
        "int",
        "HLA-C2 haplotypes of the sperm source (partner or donor)",
        low=0,
        high=2,
        label="HLA-C, partner (or sperm donor)",
    ),
    # derived from the columns above by DERIVED (below); never read from an input
    FeatureSpec(
        "oocyte_c2_count",
        "int",
        "HLA-C2 haplotypes of the oocyte source (the woman or a donor)",
        low=0,
        high=2,
        label="HLA-C, woman, or of the oocyte donor used",
    ),
    FeatureSpec(
        "n_nonvisualised_losses",
        "int",
        "Biochemical losses counted once: those under pregnancies, plus biochemical pregnancies of embryo transfers "
        "that no pregnancy entry may already record",
        low=0,
        high=2 * MAX_COUNT,
        label=_PREGNANCIES,
    ),
    FeatureSpec(
        "n_pregnancy_losses",
        "int",
        "Pregnancy losses before 24 weeks: biochemical losses counted once, and miscarriages",
        low=0,
        high=3 * MAX_COUNT,
        label=_PREGNANCIES,
    ),
    FeatureSpec(
        "n_pregnancy_losses_max",
        "int",
        "Pregnancy losses before 24 weeks if no biochemical loss of unrecorded conception were a transfer's",
        low=0,
        high=3 * MAX_COUNT,
        label=_PREGNANCIES,
    ),
    FeatureSpec(
        "n_second_trimester_miscarriages",
        "int",
        "Miscarriages at 14 weeks or later (before 24)",
        low=0,
        high=MAX_COUNT,
        label=_PREGNANCIES,
    ),
    FeatureSpec(
        "p_embryo_paternal_c2",
        "float",
        "Probability that an embryo inherits a paternal HLA-C2",
        low=0,
        high=1,
        label="HLA-C, partner (or sperm donor)",
    ),
    FeatureSpec(
        "p_embryo_more_c2_than_mother",
        "float",
        "Probability that an embryo carries more HLA-C2 than the woman carrying it",
        low=0,
        high=1,
        label="HLA-C, woman, partner (or sperm donor) and oocyte donor",
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


# A biochemical pregnancy after a transfer is one event, whether it is recorded under the transfer, under pregnancies
# or under both. Transfer biochemicals beyond the biochemical losses that may be the same events are added: at
# least those beyond every ART-or-unrecorded-conception loss (the count used), at most those beyond the losses
# recorded as ART (when the two differ a definition may be undecidable). A column absent from a cohort file reads
# as the bound that adds least (lower) and most (upper).
def _coalesce(expr: Expr, fallback: Expr) -> Expr:
    return When(IsNull(expr), fallback, expr)


def _beyond(transfers: Expr, listed: Expr) -> Expr:
    """Transfer biochemicals beyond ``listed`` (0 when none, or when the transfers are not recorded)."""
    return When(Cmp(">", transfers, listed), Arith("-", transfers, listed), Lit(0))


_TB = Col("n_transfers_biochemical")
_LOWER = Arith(
    "+",
    Col("n_biochemical_losses"),
    _beyond(_TB, _coalesce(Col("n_biochemical_losses_art"), Col("n_biochemical_losses"))),
)
_UPPER = Arith("+", Col("n_biochemical_losses"), _beyond(_TB, _coalesce(Col("n_biochemical_losses_art_known"), Lit(0))))
# Evaluated in this order (an expression may read the ones before it).
DERIVED: dict[str, Expr] = {
    "oocyte_c2_count": When(Col("oocytes_donor"), Col("oocyte_donor_c2_count"), Col("woman_c2_count")),
    "n_nonvisualised_losses": _LOWER,
    "n_pregnancy_losses": Arith("+", _LOWER, Col("n_miscarriages")),
    "n_pregnancy_losses_max": Arith("+", _UPPER, Col("n_miscarriages")),
    "n_second_trimester_miscarriages": Arith(
        "-",
        Arith("-", Col("n_miscarriages"), Col("n_first_trimester_miscarriages")),
        Col("n_miscarriages_week_unknown"),
    ),
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
