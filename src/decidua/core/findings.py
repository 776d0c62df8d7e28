"""What an assessment says: findings with their evidence, next steps and options.

Every finding names the rule and knowledge-base version that produced it, the inputs and thresholds it
used, and the citation keys that support it. A finding whose inputs are missing is ``not_assessed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from decidua.core.expr import Scalar


class Status(StrEnum):
    FLAGGED = "flagged"
    WITHIN_RANGE = "within_range"
    NOT_ASSESSED = "not_assessed"


class Interpretation(StrEnum):
    """HL7 v3 ObservationInterpretation codes used on results (subset)."""

    HIGH = "H"
    LOW = "L"
    NORMAL = "N"


@dataclass(frozen=True, slots=True)
class InputValue:
    """One input a rule read, with the value it had (``None`` = missing)."""

    name: str
    value: Scalar
    unit: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold a rule compares with; ``applies_when`` says under which condition."""

    name: str
    value: float | str
    unit: str | None = None
    applies_when: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    group: str
    title: str
    status: Status
    summary: str
    kb_version: str
    inputs: tuple[InputValue, ...]
    thresholds: tuple[Threshold, ...]
    citations: tuple[str, ...]
    evidence_level: str
    measure: Scalar = None  # the value the rule judged (a count, a %), when there is one
    threshold_applied: Scalar = None
    interpretation: Interpretation | None = None
    context: tuple[str, ...] = ()  # reference intervals and notes shown for context, never flags
    stance: str | None = None  # guideline position where it differs from the clinic protocol

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the inputs that were missing (why a finding may be not assessed)."""
        return tuple(i.name for i in self.inputs if i.value is None)


@dataclass(frozen=True, slots=True)
class Statement:
    """A cited statement: guideline recommendation or clinic protocol text, quoted or paraphrased."""

    source: str  # "guideline" | "clinic_protocol" | "study"
    text: str
    strength: str | None
    citations: tuple[str, ...]
    wording: str  # "verbatim" | "paraphrase"


@dataclass(frozen=True, slots=True)
class Option:
    """A management option with the statements for and against it. Never a directive."""

    id: str
    title: str
    because: tuple[str, ...]  # rule ids whose flags made this option relevant
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class NextStep:
    id: str
    text: str
    because: str  # rule id
    citations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Classification:
    rpl: Status
    rpl_definition: str  # rule id of the definition in force
    losses_counted: int | None
    rif: Status
    rif_definition: str
    failed_transfers: int | None


@dataclass(frozen=True, slots=True)
class Assessment:
    case_id: str
    kb_version: str
    kb_overrides: tuple[str, ...]  # descriptions of the local overrides in force
    classification: Classification
    findings: tuple[Finding, ...]
    next_steps: tuple[NextStep, ...]
    options: tuple[Option, ...]
    warnings: tuple[str, ...] = ()

    def finding(self, rule_id: str) -> Finding:
        for f in self.findings:
            if f.rule_id == rule_id:
                return f
        raise KeyError(rule_id)
