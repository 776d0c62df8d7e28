"""The shape of knowledge-base files (shipped and clinic overrides), validated with pydantic.

A rule file is reviewed by clinicians, so its grammar is small and explicit:

* ``count``: sum of columns, flagged when at least ``at_least``;
* ``threshold``: one numeric input, flagged when above (or below) a threshold; ``bands`` give a different
  threshold under a condition (e.g. age over 35). When the condition cannot be decided (age unknown) the rule
  still decides if every candidate threshold gives the same answer, and is otherwise not assessed;
* ``range``: one numeric input against a reference interval, flagged High or Low, optionally only when
  ``applies_when`` holds (e.g. a biopsy at LH+7);
* ``criteria``: a boolean condition over columns.

Conditions are mappings: ``{age_years: {">": 35}}``, ``{karyotype_woman: {in: [abnormal]}}``,
``{cond_sle: true}``, combined with ``{any: [...]}``, ``{all: [...]}``, ``{not: ...}``. A missing value makes a
comparison unknown (the rule is then not assessed), except with ``is``: ``{apl_anti_b2gpi_igg: {is: true}}`` is
false when the value is missing. ``{if: C, then: X, else: Y}`` decides by ``C`` (unknown counts as false), where
``X`` and ``Y`` are conditions or the literals ``true``, ``false`` and ``null`` (not assessed).

Next steps and options are *triggered* by the statuses of findings, with the same combinators:
``{flagged: nk.peripheral.clinic}``, ``{not_assessed: investigation.antiphospholipid}``,
``{within_range: group:nk}``, ``{high: group:nk}`` / ``{low: group:nk}`` (a high / low result), where a reference
is a rule id,
``group:<name>`` (any rule of the group), or one of the pathway values ``rpl``, ``rif``, ``workup``,
``unexplained_rpl`` and ``explained`` (flagged: yes, within_range: no, not_assessed: cannot tell); a trigger may
also test the feature row like a rule does (``{oocytes_donor: true}``). Their ``pathways`` gate them: an item with
``pathways: [rpl, rif]`` is indicated only when the patient meets the RPL or the RIF definition in force; while
the ``when`` of one of its ``held_back`` entries holds it is listed, not indicated, with that entry's ``reason``
(the first that holds).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints, model_validator

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")]
CiteKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
Condition = dict[str, Any]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(Strict):
    authors: str
    title: str
    journal: str | None = None
    year: int
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    verified: bool = Field(description="bibliographic details checked against a stored copy of the source")
    note: str | None = None

    @model_validator(mode="after")
    def _locatable(self) -> Citation:
        if not (self.doi or self.pmid or self.url):
            raise ValueError("a citation needs a doi, pmid or url")
        return self

    def short(self) -> str:
        return f"{self.authors} ({self.year})"

    def to_string(self) -> str:
        parts = [f"{self.authors.rstrip('.')}. {self.title.rstrip('.')}."]
        if self.journal:
            loc = f" {self.journal} {self.year}"
            if self.volume:
                loc += f";{self.volume}"
                if self.issue:
                    loc += f"({self.issue})"
            if self.pages:
                loc += f":{self.pages}"
            parts.append(loc + ".")
        else:
            parts.append(f" {self.year}.")
        if self.doi:
            parts.append(f" doi:{self.doi}")
        if self.pmid:
            parts.append(f" PMID {self.pmid}")
        if self.url and not self.doi:
            parts.append(f" {self.url}")
        return "".join(parts)  # whether it was verified is shown once by each output, not on every reference


Wording = Literal["quote", "paraphrase"]


class StatementSpec(Strict):
    """Evidence shown with a finding or an option: a study's result, the clinic protocol, a caveat."""

    source: Literal["guideline", "clinic_protocol", "study", "caveat"]  # caveat: decidua's own qualification
    text: str
    strength: str | None = None
    wording: Wording
    # for a study: does its result support the association the rule flags, go against it, or neither?
    bearing: Literal["supports", "against", "neutral"] | None = None
    verified: bool = True  # False: the text could not be checked against a copy of the source
    cites: tuple[CiteKey, ...] = Field(min_length=1)


Verdict = Literal[
    "recommended",
    "suggested",
    "may be considered",
    "insufficient evidence",
    "research only",
    "not recommended",
    "informative",  # a statement of fact or risk that informs the decision, not a recommendation for or against
]
FAVOURABLE_VERDICTS: frozenset[str] = frozenset({"recommended", "suggested", "may be considered"})


class StanceSpec(Strict):
    """What a guideline says about the test or the treatment a finding or option concerns, graded as it grades."""

    source: str = Field(description="the guideline by name and year, e.g. 'ESHRE RPL guideline 2017'")
    text: str
    verdict: Verdict = Field(description="the gist of the statement, so that outputs can group options by it")
    strength: str = Field(description="the guideline's own grading, e.g. 'strong; evidence very low (⊕○○○)'")
    wording: Wording
    verified: bool = Field(description="the text and grading were checked against a copy of the guideline")
    cites: tuple[CiteKey, ...] = Field(min_length=1)
    note: str | None = None


class PopulationFrequency(Strict):
    """How common the genotype a finding flags is, so that a common genotype is not read as a rare alarm."""

    genotype: str
    population: str
    percent: float = Field(ge=0, le=100)
    n: int | None = Field(default=None, ge=1)
    derived: str | None = None  # how decidua computed the figure from the source's counts, when it did
    cites: tuple[CiteKey, ...] = Field(min_length=1)


class Variant(Strict):
    """One wording of a summary; the first whose ``when`` holds is used (the last has none)."""

    when: Condition | None = None
    text: str


SummaryText = str | tuple[Variant, ...]


class Summary(Strict):
    flagged: SummaryText
    within_range: SummaryText
    not_assessed: SummaryText

    @model_validator(mode="after")
    def _last_variant_is_the_default(self) -> Summary:
        for name in ("flagged", "within_range", "not_assessed"):
            text = getattr(self, name)
            if isinstance(text, tuple) and (not text or text[-1].when is not None):
                raise ValueError(f"{name}: the last variant is the default and has no 'when'")
        return self


class StatusLabels(Strict):
    """The words a clinician reads for each status of a rule (e.g. met / not met, above / not above)."""

    flagged: str
    within_range: str
    not_assessed: str = "not assessed"


class Band(Strict):
    when: Condition
    value: float
    label: str


class ContextInterval(Strict):
    label: str
    low: float
    high: float
    unit: str
    cites: tuple[CiteKey, ...] = Field(min_length=1)


class RuleBase(Strict):
    id: RuleId
    group: Literal["classification", "investigation", "nk", "autoimmune", "immunogenetics"]
    title: str
    choice: str | None = None
    evidence_level: str
    cites: tuple[CiteKey, ...] = Field(min_length=1)
    summary: Summary
    statements: tuple[StatementSpec, ...] = ()
    stances: tuple[
        StanceSpec, ...
    ] = ()  # what the guidelines say of this test; required for nk, autoimmune, immunogenetics
    population: tuple[PopulationFrequency, ...] = ()
    labels: StatusLabels | None = None  # default: by kind (met / not met, above / not above, ...)
    measure_label: str | None = None  # what the measure counts, e.g. "first-trimester miscarriages"
    alternative_explanation: bool = False  # a flag means another cause to consider first
    category: str | None = None  # compatibility category this rule's flag puts a couple in (first flagged wins)
    verified: bool = True  # False: a value in this rule could not be checked against its source
    note: str | None = None


class CountRule(RuleBase):
    """Flagged when the sum of ``count`` is at least ``at_least``. With ``count_max`` (the most the count could be
    when some events may be one or two), not flagged only when that sum is below ``at_least``; in between, unknown."""

    kind: Literal["count"]
    count: tuple[str, ...] = Field(min_length=1)
    count_max: tuple[str, ...] | None = None
    at_least: int = Field(ge=1)


class ThresholdRule(RuleBase):
    kind: Literal["threshold"]
    input: str
    unit: str
    direction: Literal["above", "below"] = "above"
    value: float
    bands: tuple[Band, ...] = ()
    context: tuple[ContextInterval, ...] = ()


class RangeRule(RuleBase):
    kind: Literal["range"]
    input: str
    unit: str
    low: float
    high: float
    applies_when: Condition | None = None
    applies_label: str | None = None
    context: tuple[ContextInterval, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> RangeRule:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class CriteriaRule(RuleBase):
    kind: Literal["criteria"]
    flag: Condition
    inputs: tuple[str, ...] = Field(min_length=1)
    measure: str | None = None  # an input column shown as the finding's value


Rule = Annotated[CountRule | ThresholdRule | RangeRule | CriteriaRule, Field(discriminator="kind")]


class Choice(Strict):
    label: str
    default: RuleId


Pathway = Literal["rpl", "rif"]


class HoldBack(Strict):
    """While ``when`` holds (a trigger), an item is listed but not indicated (a prognosis: gives no value), with
    ``reason``."""

    when: Condition
    reason: str


class StepSpec(Strict):
    """A next step (an investigation, or care) offered when its trigger holds; gated by ``pathways``."""

    id: RuleId
    kind: Literal["investigation", "care"]
    text: str
    when: Condition  # over statuses (see the module docstring)
    pathways: tuple[Pathway, ...] = ()  # empty: not gated (e.g. care that a finding itself calls for)
    held_back: tuple[HoldBack, ...] = ()
    stances: tuple[StanceSpec, ...] = ()
    cites: tuple[CiteKey, ...] = Field(min_length=1)


class OptionSpec(Strict):
    """A management option, shown with the guidelines' stances and, where it offers it, the clinic protocol."""

    id: RuleId
    title: str
    kind: Literal["immunomodulatory", "anticoagulant", "hormonal", "genetic", "transfer", "supportive"]
    when: Condition  # over statuses (see the module docstring)
    pathways: tuple[Pathway, ...] = ()
    held_back: tuple[HoldBack, ...] = ()
    stances: tuple[StanceSpec, ...] = Field(min_length=1)
    # set when the stances give no verdict on the option itself, only on a related test: what they concern
    stances_concern: str | None = None
    statements: tuple[StatementSpec, ...] = ()


class PrognosisCell(Strict):
    age: int = Field(ge=10, le=70)
    losses: int = Field(ge=1, le=20)
    percent: float = Field(ge=0, le=100)


class PrognosisSpec(Strict):
    """A published prognosis after unexplained RPL: a table by age and losses, and the cohort's overall figure."""

    id: RuleId
    title: str
    when: Condition  # over statuses
    measure: str  # what the percentages are, e.g. "predicted success (%) of the next pregnancy"
    ages: tuple[int, ...] = Field(min_length=1)  # the table's rows (exact ages of the published model)
    losses: tuple[int, ...] = Field(min_length=1)  # its columns (number of previous losses)
    cells: tuple[PrognosisCell, ...] = ()  # the cells checked against a copy of the source (others are not shipped)
    validity: str  # the population the table was derived from and the range it covers
    # patients outside the table's cohort: while one entry's `when` holds, no value, with its reason (the first)
    excluded: tuple[HoldBack, ...] = ()
    overall: tuple[StatementSpec, ...] = Field(min_length=1)  # cohort-level figures, always shown
    cites: tuple[CiteKey, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _cells_in_table(self) -> PrognosisSpec:
        for c in self.cells:
            if c.age not in self.ages or c.losses not in self.losses:
                raise ValueError(f"cell age {c.age}, losses {c.losses} is outside the table's rows and columns")
        return self


class UnexplainedSpec(Strict):
    """When RPL counts as unexplained: no flagged explanation, and the recommended investigations done."""

    explained_by: tuple[RuleId, ...] = Field(min_length=1)  # a flag of any of these explains the losses
    requires: tuple[RuleId, ...] = ()  # these must be assessed before "unexplained" can be said


class Interaction(Strict):
    """A maternal NK receptor and the HLA-C ligand it recognises on trophoblast."""

    receptor: str  # KIR gene, e.g. KIR2DL1
    ligand: Literal["C1", "C2"]
    effect: Literal["inhibitory", "activating"]
    strength: Literal["strong", "weak"]
    note: str | None = None
    cites: tuple[CiteKey, ...] = Field(min_length=1)


class KnowledgeBaseFile(Strict):
    schema_version: Literal[1]
    kb_version: str
    title: str
    choices: dict[str, Choice] = {}
    rules: tuple[Rule, ...] = ()
    steps: tuple[StepSpec, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    prognosis: tuple[PrognosisSpec, ...] = ()
    unexplained_rpl: UnexplainedSpec | None = None
    interactions: tuple[Interaction, ...] = ()
    citations: dict[CiteKey, Citation] = {}


class RuleOverride(Strict):
    """New parameter values for one rule; only numbers may change, never the logic.

    Numbers are strict: ``true`` or ``"22"`` is refused rather than read as 1 or 22.
    """

    value: StrictFloat | StrictInt | None = None
    bands: tuple[StrictFloat | StrictInt, ...] | None = None  # new band values, in the rule's band order
    low: StrictFloat | StrictInt | None = None
    high: StrictFloat | StrictInt | None = None
    at_least: StrictInt | None = Field(default=None, ge=1)


class OverrideFile(Strict):
    override_schema_version: Literal[1]
    name: str
    version: str
    source: str = Field(description="the clinic document or decision these local values come from")
    choices: dict[str, RuleId] = {}
    rules: dict[RuleId, RuleOverride] = {}
