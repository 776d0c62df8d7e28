"""The case a clinician or laboratory provides: history, investigations, NK tests, genotypes.

Values are frozen dataclasses with tuples for collections. ``None`` always means "not recorded" and is
never read as "normal"; an investigation that was explicitly not done says so with ``not_done``.
Structure and types are checked at the edge (``decidua.app.casefile``), ranges and contradictions
by :func:`decidua.core.validation.check_case`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar

_T = TypeVar("_T")

# Case files are validated at the edge with pydantic, which reads this attribute: unknown keys are rejected,
# because a misspelt "pregnancies" must not silently read as "history not recorded".
_CLOSED: dict[str, Any] = {"extra": "forbid"}


def closed(cls: type[_T]) -> type[_T]:
    """Mark a case dataclass as closed to unknown keys."""
    cls.__pydantic_config__ = _CLOSED  # type: ignore[attr-defined]  # read by pydantic at the edge
    return cls


class Condition(StrEnum):
    """Conditions the knowledge base reasons about.

    Other conditions are recorded as free codes with a system prefix, e.g. ``icd10:E11.9``.
    """

    SLE = "sle"  # systemic lupus erythematosus
    RHEUMATOID_ARTHRITIS = "rheumatoid_arthritis"
    VASCULITIS = "vasculitis"
    ANTIPHOSPHOLIPID_SYNDROME = "antiphospholipid_syndrome"  # diagnosed APS (clinical + persistent lab criteria)
    THYROID_AUTOIMMUNITY = "thyroid_autoimmunity"


CONDITION_CODE_SYSTEMS = ("icd10", "icd11", "snomed", "other")


class PregnancyOutcome(StrEnum):
    """Outcome of one pregnancy. Terms as in the ESHRE 2022 RPL guideline's terminology."""

    BIOCHEMICAL_LOSS = "biochemical_loss"  # hCG-confirmed, never seen on ultrasound (non-visualised)
    MISCARRIAGE = "miscarriage"  # intrauterine loss before 24 weeks
    ECTOPIC = "ectopic"
    MOLAR = "molar"
    TERMINATION = "termination"
    STILLBIRTH = "stillbirth"  # fetal death at or after 24 weeks
    LIVE_BIRTH = "live_birth"
    ONGOING = "ongoing"


class ConceptionMode(StrEnum):
    SPONTANEOUS = "spontaneous"
    IUI = "iui"
    IVF = "ivf"
    ICSI = "icsi"
    DONOR_OOCYTE = "donor_oocyte"
    DONOR_SPERM = "donor_sperm"
    DONOR_EMBRYO = "donor_embryo"


class TransferOutcome(StrEnum):
    """Outcome of one embryo transfer (the pregnancy it led to, if any, is also a pregnancy event)."""

    NEGATIVE = "negative"  # no rise in hCG
    BIOCHEMICAL = "biochemical"  # hCG positive, no clinical pregnancy
    CLINICAL_PREGNANCY = "clinical_pregnancy"  # gestational sac on ultrasound
    PENDING = "pending"


class TestResult(StrEnum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"
    NOT_DONE = "not_done"


class AntibodyResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    NOT_DONE = "not_done"


class UterineAnatomy(StrEnum):
    NORMAL = "normal"
    CONGENITAL_ANOMALY = "congenital_anomaly"  # e.g. septate uterus
    ACQUIRED_LESION = "acquired_lesion"  # e.g. submucosal fibroid, polyp, adhesions
    NOT_DONE = "not_done"


@closed
@dataclass(frozen=True, slots=True)
class Measurement:
    """A measured value with its explicit unit, as reported."""

    value: float
    unit: str


@closed
@dataclass(frozen=True, slots=True)
class Woman:
    """The patient. Give ``age_years`` (completed years) or ``date_of_birth`` (with the case's ``test_date``)."""

    age_years: int | None = None
    date_of_birth: dt.date | None = None


@closed
@dataclass(frozen=True, slots=True)
class Pregnancy:
    outcome: PregnancyOutcome
    gestational_week: float | None = None
    conception: ConceptionMode | None = None
    year: int | None = None
    note: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class EmbryoTransfer:
    embryos: int
    outcome: TransferOutcome
    euploid: bool | None = None  # all transferred embryos PGT-A euploid; None = not tested / not recorded
    conception: ConceptionMode | None = None
    date: dt.date | None = None


@closed
@dataclass(frozen=True, slots=True)
class Karyotype:
    result: TestResult
    detail: str | None = None  # e.g. "46,XX,t(11;22)(q23;q11)"


@closed
@dataclass(frozen=True, slots=True)
class UterineAssessment:
    result: UterineAnatomy
    method: str | None = None  # e.g. "3D ultrasound", "hysteroscopy"
    detail: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class AntiphospholipidPanel:
    lupus_anticoagulant: AntibodyResult = AntibodyResult.NOT_DONE
    anticardiolipin_igg: AntibodyResult = AntibodyResult.NOT_DONE
    anticardiolipin_igm: AntibodyResult = AntibodyResult.NOT_DONE
    anti_beta2_glycoprotein_i_igg: AntibodyResult = AntibodyResult.NOT_DONE
    anti_beta2_glycoprotein_i_igm: AntibodyResult = AntibodyResult.NOT_DONE


@closed
@dataclass(frozen=True, slots=True)
class Thyroid:
    tsh: Measurement | None = None
    tsh_interpretation: TestResult = TestResult.NOT_DONE  # the laboratory's reading against its own interval
    tpo_antibodies: AntibodyResult = AntibodyResult.NOT_DONE


@closed
@dataclass(frozen=True, slots=True)
class Thrombophilia:
    result: TestResult
    detail: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class Investigations:
    karyotype_woman: Karyotype | None = None
    karyotype_partner: Karyotype | None = None
    poc_genetics: Karyotype | None = None  # products of conception
    uterine_anatomy: UterineAssessment | None = None
    antiphospholipid: AntiphospholipidPanel | None = None
    thrombophilia: Thrombophilia | None = None
    thyroid: Thyroid | None = None


@closed
@dataclass(frozen=True, slots=True)
class Cytotoxicity:
    percent: Measurement
    effector_target_ratio: str  # e.g. "50:1"


@closed
@dataclass(frozen=True, slots=True)
class PeripheralNK:
    """Peripheral blood NK cells by flow cytometry."""

    nk_percent: Measurement  # CD3-CD56+ as % of lymphocytes
    absolute_count: Measurement | None = None
    cd56_bright_percent: Measurement | None = None
    cd56_dim_percent: Measurement | None = None
    cd16_positive_percent: Measurement | None = None
    cytotoxicity: Cytotoxicity | None = None
    date: dt.date | None = None
    specimen: str | None = None
    method: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class UterineNK:
    """Uterine NK density from an endometrial biopsy (CD56 immunohistochemistry)."""

    density: Measurement  # per 100 stromal cells, or cells/mm2
    cycle_day: str | None = None  # e.g. "LH+7"
    date: dt.date | None = None
    method: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class NKTests:
    peripheral: PeripheralNK | None = None
    uterine: UterineNK | None = None


@closed
@dataclass(frozen=True, slots=True)
class KirTyping:
    """KIR gene content as typed (SSO/SSP): genes present, absent, not tested; or allele names / GL String."""

    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    untested: tuple[str, ...] = ()
    gl_string: str | None = None
    absent_unlisted: bool = True  # genes not listed anywhere count as absent (kit typed them all)
    source: str | None = None  # where the typing came from, e.g. "t1k S1_genotype.tsv, sample S1, quality > 0"


@closed
@dataclass(frozen=True, slots=True)
class Person:
    """A person whose HLA typing is relevant (partner, donor, embryo)."""

    id: str
    hla_c: str | None = None  # GL String, e.g. "HLA-C*07:01+HLA-C*06:02"


@closed
@dataclass(frozen=True, slots=True)
class Genotypes:
    """KIR of the woman; HLA-C (GL Strings) of the woman, partner, donors and embryos.

    ``oocytes`` and ``sperm`` say whose gametes make the embryos of the cycle assessed: with donor oocytes the
    embryo's maternal HLA-C comes from the donor named by ``oocyte_donor_id`` (or the only donor listed), while
    the uterus, and its NK cells, stay the woman's.
    """

    woman_kir: KirTyping | None = None
    woman_hla_c: str | None = None
    partner_hla_c: str | None = None
    sperm_donor_hla_c: str | None = None
    oocyte_donors: tuple[Person, ...] = ()
    embryos: tuple[Person, ...] = ()
    oocytes: Literal["own", "donor"] = "own"
    sperm: Literal["partner", "donor"] = "partner"
    oocyte_donor_id: str | None = None


@closed
@dataclass(frozen=True, slots=True)
class Case:
    """One woman's case file."""

    case_id: str  # pseudonymous reference, never a name
    woman: Woman
    schema_version: Literal[1] = 1
    test_date: dt.date | None = None
    conditions: tuple[str, ...] | None = None  # None = not recorded; () = none known
    pregnancies: tuple[Pregnancy, ...] | None = None  # None = history not recorded; () = no pregnancy
    transfers: tuple[EmbryoTransfer, ...] | None = None  # None = not recorded; () = no transfer
    # ESHRE 2023 describes RIF without a fixed count: the treating clinician judges whether transfers of embryos
    # considered viable failed often enough for this patient to warrant investigation (None = not recorded)
    rif_judgement: bool | None = None
    investigations: Investigations = field(default_factory=Investigations)
    nk: NKTests = field(default_factory=NKTests)
    genotypes: Genotypes = field(default_factory=Genotypes)
    note: str | None = None
