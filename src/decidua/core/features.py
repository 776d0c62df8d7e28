"""The flat feature row: one column per fact a rule may read.

A case is reduced to this row (``decidua.engines.features.extract``) before rules are evaluated, and the
batch engine reads cohorts in exactly this layout. A missing value is ``None`` (null), never a default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dtype = Literal["int", "float", "bool", "str"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    dtype: Dtype
    description: str
    unit: str | None = None
    categories: tuple[str, ...] = ()  # allowed values of a "str" column


_INVESTIGATION = ("normal", "abnormal")

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("age_years", "int", "Woman's age in completed years at the tests", "a"),
    FeatureSpec("cond_sle", "bool", "Systemic lupus erythematosus (null: conditions not recorded)"),
    FeatureSpec("cond_rheumatoid_arthritis", "bool", "Rheumatoid arthritis"),
    FeatureSpec("cond_vasculitis", "bool", "Vasculitis"),
    FeatureSpec("cond_antiphospholipid_syndrome", "bool", "Diagnosed antiphospholipid syndrome"),
    FeatureSpec("cond_thyroid_autoimmunity", "bool", "Thyroid autoimmunity"),
    FeatureSpec("n_biochemical_losses", "int", "hCG-confirmed pregnancy losses not seen on ultrasound"),
    FeatureSpec("n_miscarriages", "int", "Intrauterine pregnancy losses before 24 weeks"),
    FeatureSpec("n_ectopic", "int", "Ectopic pregnancies"),
    FeatureSpec("n_molar", "int", "Molar pregnancies"),
    FeatureSpec("n_terminations", "int", "Terminations of pregnancy"),
    FeatureSpec("n_stillbirths", "int", "Fetal deaths at or after 24 weeks"),
    FeatureSpec("n_live_births", "int", "Live births"),
    FeatureSpec("n_transfers", "int", "Embryo transfers with a known outcome (null: transfers not recorded)"),
    FeatureSpec("n_transfers_failed", "int", "Embryo transfers that did not reach a clinical pregnancy"),
    FeatureSpec("n_embryos_failed", "int", "Embryos transferred in failed transfers"),
    FeatureSpec("n_euploid_transfers_failed", "int", "Failed transfers of PGT-A euploid embryos only"),
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
    FeatureSpec("pb_nk_percent", "float", "Peripheral blood CD3-CD56+ NK cells, % of lymphocytes", "%"),
    FeatureSpec("pb_nk_absolute_per_ul", "float", "Peripheral blood NK cells, absolute count", "cells/uL"),
    FeatureSpec("unk_per_100_stromal", "float", "Uterine CD56+ cells per 100 stromal cells", "per 100 stromal cells"),
    FeatureSpec("unk_per_mm2", "float", "Uterine CD56+ cells per mm2 of stroma", "cells/mm2"),
    FeatureSpec("unk_lh_day", "int", "Biopsy day after the LH surge (LH+n)", "d"),
)

FEATURE_INDEX: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}
