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
``{cond_sle: true}``, combined with ``{any: [...]}``, ``{all: [...]}``, ``{not: ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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
        if not self.verified:
            parts.append(" [details not verified against the source]")
        return "".join(parts)


class StatementSpec(Strict):
    source: Literal["guideline", "clinic_protocol", "study", "caveat"]  # caveat: decidua's own qualification
    text: str
    strength: str | None = None
    wording: Literal["verbatim", "paraphrase"]
    cites: tuple[CiteKey, ...] = Field(min_length=1)


class Summary(Strict):
    flagged: str
    within_range: str
    not_assessed: str


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
    stance: str | None = None  # guideline position where it differs from this rule
    next_step: str | None = None  # offered when the rule is not assessed (a missing investigation)
    alternative_explanation: bool = False  # a flag means another cause to consider first
    category: str | None = None  # compatibility category this rule's flag puts a couple in (first flagged wins)
    verified: bool = True  # False: a value in this rule could not be checked against its source
    note: str | None = None


class CountRule(RuleBase):
    kind: Literal["count"]
    count: tuple[str, ...] = Field(min_length=1)
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


class OptionSpec(Strict):
    id: RuleId
    title: str
    when_flagged: tuple[str, ...] = Field(min_length=1)  # rule ids, or "group:<name>"
    statements: tuple[StatementSpec, ...] = Field(min_length=1)


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
    options: tuple[OptionSpec, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    citations: dict[CiteKey, Citation] = {}


class RuleOverride(Strict):
    """New parameter values for one rule; only numbers may change, never the logic."""

    value: float | None = None
    bands: tuple[float, ...] | None = None  # new band values, in the rule's band order
    low: float | None = None
    high: float | None = None
    at_least: int | None = Field(default=None, ge=1)


class OverrideFile(Strict):
    override_schema_version: Literal[1]
    name: str
    version: str
    source: str = Field(description="the clinic document or decision these local values come from")
    choices: dict[str, RuleId] = {}
    rules: dict[RuleId, RuleOverride] = {}
