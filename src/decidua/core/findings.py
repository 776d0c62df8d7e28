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


FLAG_STATUS: dict[bool | None, Status] = {True: Status.FLAGGED, False: Status.WITHIN_RANGE, None: Status.NOT_ASSESSED}
"""A rule's three-valued flag -> its status: the one mapping both engines use (the batch engine as an
expression, :func:`decidua.engines.columnar.status_expr`)."""


def status_of(flag: object) -> Status:
    """Three-valued flag (true, false, null) -> status."""
    return FLAG_STATUS[None if flag is None else bool(flag)]


class Interpretation(StrEnum):
    """HL7 v3 ObservationInterpretation codes used on results (subset)."""

    HIGH = "H"
    LOW = "L"
    NORMAL = "N"


@dataclass(frozen=True, slots=True)
class InputValue:
    """One input a rule read, with the value it had (``None`` = missing) and the form label a clinician knows."""

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
class Statement:
    """A cited statement: a study's result, the clinic protocol, a guideline's definition, or a caveat."""

    source: str  # "guideline" | "clinic_protocol" | "study" | "caveat"
    text: str
    strength: str | None
    citations: tuple[str, ...]
    wording: str  # "quote" | "paraphrase"
    bearing: str | None = None  # for a study: "supports" | "against" | "neutral" the association flagged
    verified: bool = True  # False: the text could not be checked against a copy of the source


@dataclass(frozen=True, slots=True)
class Stance:
    """What a guideline says, graded as the guideline grades it."""

    source: str  # the guideline by name and year
    text: str
    verdict: str  # recommended, suggested, may be considered, insufficient evidence, research only, not recommended
    strength: str
    wording: str  # "quote" | "paraphrase"
    verified: bool  # text and grading checked against a copy of the guideline
    citations: tuple[str, ...]
    note: str | None = None

    @property
    def favourable(self) -> bool:
        """The guideline recommends, suggests or allows it (rather than advising against or reserving it)."""
        return self.verdict in ("recommended", "suggested", "may be considered")


@dataclass(frozen=True, slots=True)
class Frequency:
    """How common a genotype is in a population (so that a common genotype is not read as a rare alarm)."""

    genotype: str
    population: str
    percent: float
    n: int | None
    citations: tuple[str, ...]
    derived: str | None = None


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
    status_label: str = ""  # the clinician's word for the status: met / not met, above / not above, ...
    stances: tuple[Stance, ...] = ()  # what the guidelines say of this test (first: the principal one)
    statements: tuple[Statement, ...] = ()  # the evidence: supporting and contrary studies, protocol text
    population: tuple[Frequency, ...] = ()  # how common the genotype flagged is

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the inputs that were missing (why a finding may be not assessed)."""
        return tuple(i.name for i in self.inputs if i.value is None)

    @property
    def missing_labels(self) -> tuple[str, ...]:
        """The missing inputs by their form labels, each once (several columns may come from one field)."""
        return tuple(dict.fromkeys(i.label or i.name for i in self.inputs if i.value is None))

    @property
    def stance(self) -> Stance | None:
        """The principal guideline's stance (the first of :attr:`stances`)."""
        return self.stances[0] if self.stances else None


@dataclass(frozen=True, slots=True)
class Pathway:
    """Whether the RPL / RIF work-up applies to this patient, under the definitions in force.

    ``True``: met; ``False``: not met; ``None``: cannot tell (the history needed is not recorded).
    """

    rpl: bool | None
    rif: bool | None
    workup_indicated: bool | None
    unexplained_rpl: bool | None
    explained: bool | None  # an explaining finding (an alternative explanation to deal with first) is flagged
    reason: str  # the classification under each definition, then the verdict
    verdict: str = ""  # the verdict alone: applies, does not apply, cannot tell (and why)


@dataclass(frozen=True, slots=True)
class Option:
    """A management option with the guidelines' stances and the evidence. Never a directive.

    ``relevant`` says whether the option is one to discuss with this patient under the pathway (her findings raise
    it and she meets the definition it is meant for), not that anyone recommends it: the stances say that.
    ``stances_concern`` is set when the guidelines give no verdict on the option itself, only on a related test
    (e.g. KIR/HLA-C genotyping behind single embryo transfer): the option is then grouped apart.
    """

    id: str
    title: str
    kind: str
    because: tuple[str, ...]  # ids of the findings (and pathway values) whose status made this option relevant
    relevant: bool
    indication: str
    stances: tuple[Stance, ...]
    statements: tuple[Statement, ...]
    gate: str = "not_gated"  # met | not_met | cannot_tell | held_back | not_gated
    stances_concern: str | None = None

    @property
    def stance(self) -> Stance:
        return self.stances[0]

    @property
    def verdict_group(self) -> str:
        """``for`` (the principal guideline recommends, suggests or allows it), ``against`` (advises against,
        finds the evidence insufficient, or reserves it for research) or ``none`` (no verdict on the option)."""
        if self.stances_concern is not None:
            return "none"
        return "for" if self.stance.favourable else "against"


@dataclass(frozen=True, slots=True)
class NextStep:
    id: str
    kind: str  # "investigation" | "care"
    text: str
    because: tuple[str, ...]
    indicated: bool
    indication: str
    citations: tuple[str, ...]
    stances: tuple[Stance, ...] = ()
    gate: str = "not_gated"  # met | not_met | cannot_tell | held_back | not_gated


@dataclass(frozen=True, slots=True)
class Prognosis:
    """A published prognosis after unexplained RPL, for this patient's age and number of losses where tabulated."""

    id: str
    title: str
    measure: str
    percent: float | None  # the table's value for this age (a tabulated one) and these losses, when shipped
    table_age: int | None
    table_losses: int | None
    bracket: tuple[tuple[int, float | None], ...]  # (age, percent) of the rows either side of an age between rows
    age: int | None
    losses: int | None
    explanation: str  # which cell was read, or why none applies
    validity: str
    overall: tuple[Statement, ...]
    citations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Classification:
    rpl: Status
    rpl_definition: str  # rule id of the definition in force
    losses_counted: int | None  # for certain (the lower bound when a count is uncertain)
    rif: Status
    rif_definition: str
    failed_transfers: int | None
    losses_label: str = "losses"  # what the RPL definition counts
    transfers_label: str = "failed transfers"  # what the RIF definition counts
    losses_counted_max: int | None = None  # the upper bound when a loss may or may not count; else losses_counted

    @property
    def losses_shown(self) -> str | None:
        """The count as a clinician reads it: ``"2"``, or ``"2-3"`` when a loss may or may not count."""
        if self.losses_counted is None:
            return None
        most = self.losses_counted_max
        return f"{self.losses_counted}" if most in (None, self.losses_counted) else f"{self.losses_counted}-{most}"


@dataclass(frozen=True, slots=True)
class Assessment:
    case_id: str
    kb_version: str
    kb_overrides: tuple[str, ...]  # descriptions of the local overrides in force
    classification: Classification
    findings: tuple[Finding, ...]
    next_steps: tuple[NextStep, ...]
    options: tuple[Option, ...]
    pathway: Pathway
    prognosis: tuple[Prognosis, ...] = ()
    warnings: tuple[str, ...] = ()
    reference_data: tuple[str, ...] = ()  # releases allele names were interpreted with, e.g. "IPD-KIR 2.13.0"

    def finding(self, rule_id: str) -> Finding:
        for f in self.findings:
            if f.rule_id == rule_id:
                return f
        raise KeyError(rule_id)
