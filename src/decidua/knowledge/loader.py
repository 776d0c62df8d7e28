"""Load, check and (optionally) override the knowledge base.

The shipped knowledge base is a set of YAML files in ``decidua/knowledge/data``; every file carries the same
``kb_version``. A clinic may load an override file of its own thresholds and choices; the override is
recorded in every assessment (``kb_overrides``) and in the effective version string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from decidua.core.errors import KnowledgeBaseError, MissingCitation
from decidua.core.expr import Expr, Or, columns
from decidua.core.features import FEATURE_INDEX, MAX_COUNT
from decidua.knowledge.compile import (
    PATHWAY_VALUES,
    CompiledRule,
    because_key,
    compile_condition,
    compile_pathway,
    compile_rule,
    compile_trigger,
    feature_refs,
    held_back_key,
)
from decidua.knowledge.schema import (
    Choice,
    Citation,
    CountRule,
    CriteriaRule,
    Interaction,
    KnowledgeBaseFile,
    OptionSpec,
    OverrideFile,
    PrognosisSpec,
    RangeRule,
    Rule,
    RuleOverride,
    StepSpec,
    ThresholdRule,
    UnexplainedSpec,
)

try:  # libyaml's parser: the same data as the pure-Python one, ~10x faster (0.15 s -> 0.015 s for the shipped files)
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    # mypy types the name by the first import; the pure-Python loader is another class with the same interface
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# Findings a clinician may act on carry the guidelines' word: a rule of these groups must have a stance.
STANCE_REQUIRED = frozenset({"nk", "immunogenetics", "autoimmune"})


@dataclass(frozen=True)
class KnowledgeBase:
    """The knowledge base in force: rules (all, and the active ones), steps, options, citations, overrides."""

    kb_version: str
    title: str
    rules: tuple[Rule, ...]
    choices: Mapping[str, Choice]
    selected: Mapping[str, str]  # choice -> selected rule id
    options: tuple[OptionSpec, ...]
    citations: Mapping[str, Citation]
    interactions: tuple[Interaction, ...] = ()
    overrides: tuple[str, ...] = ()
    compiled: Mapping[str, CompiledRule] = field(default_factory=dict)
    steps: tuple[StepSpec, ...] = ()
    prognosis: tuple[PrognosisSpec, ...] = ()
    unexplained_rpl: UnexplainedSpec | None = None
    pathway: Mapping[str, Expr] = field(default_factory=dict)  # rpl, rif, workup, unexplained_rpl over features
    triggers: Mapping[str, Expr] = field(default_factory=dict)  # step/option/prognosis id -> over statuses
    # item id -> the feature columns its trigger tests (each compiled under because_key, to name the values)
    because_features: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    # Derived once per knowledge base (an assessment asks for them hundreds of times); ``cached_property`` keeps
    # them in the instance's ``__dict__``, outside the dataclass's fields, equality and ``replace``.
    @cached_property
    def active_rules(self) -> tuple[Rule, ...]:
        """Rules evaluated in an assessment: every rule outside a choice, and the selected one of each choice."""
        return tuple(r for r in self.rules if r.choice is None or self.selected[r.choice] == r.id)

    @cached_property
    def _rules_by_id(self) -> Mapping[str, Rule]:
        return {r.id: r for r in self.rules}

    @cached_property
    def _active_by_group(self) -> Mapping[str, tuple[str, ...]]:
        """Every group of a rule -> the ids of its active rules (none, when its rules are inactive alternatives)."""
        groups: dict[str, list[str]] = {r.group: [] for r in self.rules}
        for r in self.active_rules:
            groups[r.group].append(r.id)
        return {g: tuple(ids) for g, ids in groups.items()}

    def rule(self, rule_id: str) -> Rule:
        return self._rules_by_id[rule_id]

    def citation(self, key: str) -> Citation:
        return self.citations[key]

    def citation_text(self, key: str) -> str:
        """The citation's reference as every output writes it (:meth:`Citation.to_string`), made once per
        knowledge base: an assessment lists some 70."""
        return self._citation_texts[key]

    @cached_property
    def _citation_texts(self) -> Mapping[str, str]:
        return {key: c.to_string() for key, c in self.citations.items()}

    def resolve(self, ref: str) -> tuple[str, ...]:
        """A trigger's reference -> the ids whose statuses it reads (active rules of a group; a pathway value)."""
        if ref in PATHWAY_VALUES:
            return (ref,)
        if ref.startswith("group:"):
            ids = self._active_by_group.get(ref.removeprefix("group:"))
            if ids is None:
                raise KnowledgeBaseError(f"unknown group {ref.removeprefix('group:')!r} in {ref!r}")
            return ids or (ref,)  # a group without an active rule: a status that is never found (never holds)
        if ref not in self._rules_by_id:
            raise KnowledgeBaseError(
                f"unknown rule {ref!r}; a trigger names a rule id, group:<name> or {PATHWAY_VALUES}"
            )
        return (ref,)


def _read_yaml(text: str, origin: str) -> Any:
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{origin}: not valid YAML: {exc}") from None


def _format_validation(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin} is invalid:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  - {loc}: {err['msg']} (got {err.get('input')!r})"[:400])
    return "\n".join(lines)


def _parse_files(sources: Iterable[tuple[str, str]]) -> list[KnowledgeBaseFile]:
    files = []
    for origin, text in sources:
        try:
            files.append(KnowledgeBaseFile.model_validate(_read_yaml(text, origin)))
        except ValidationError as exc:
            raise KnowledgeBaseError(_format_validation(exc, origin)) from None
    return files


def _shipped_sources() -> list[tuple[str, str]]:
    data = resources.files("decidua.knowledge") / "data"
    return sorted(
        (f"knowledge/data/{p.name}", p.read_text("utf-8")) for p in data.iterdir() if p.name.endswith(".yaml")
    )


def _cited(
    rules: Iterable[Rule], steps: Iterable[StepSpec], options: Iterable[OptionSpec], prognosis: Iterable[PrognosisSpec]
) -> Iterable[tuple[str, tuple[str, ...]]]:
    """Every place that cites, with the keys it cites (for the check that each key is a known citation)."""
    for r in rules:
        yield f"rule {r.id}", r.cites
        for st in r.statements:
            yield f"rule {r.id}: statement", st.cites
        for sp in r.stances:
            yield f"rule {r.id}: stance of {sp.source}", sp.cites
        for f in r.population:
            yield f"rule {r.id}: population frequency of {f.genotype}", f.cites
        for interval in getattr(r, "context", ()):
            yield f"rule {r.id} context {interval.label!r}", interval.cites
    for step in steps:
        yield f"step {step.id}", step.cites
        for sp in step.stances:
            yield f"step {step.id}: stance of {sp.source}", sp.cites
    for o in options:
        for st in o.statements:
            yield f"option {o.id}: statement", st.cites
        for sp in o.stances:
            yield f"option {o.id}: stance of {sp.source}", sp.cites
    for p in prognosis:
        yield f"prognosis {p.id}", p.cites
        for st in p.overall:
            yield f"prognosis {p.id}: statement", st.cites


def build(files: list[KnowledgeBaseFile]) -> KnowledgeBase:
    """Merge parsed files into one knowledge base and check it is complete and consistent."""
    if not files:
        raise KnowledgeBaseError("no knowledge-base files found")
    versions = {f.kb_version for f in files}
    if len(versions) != 1:
        raise KnowledgeBaseError(f"knowledge-base files disagree on kb_version: {sorted(versions)}")
    rules: list[Rule] = []
    steps: list[StepSpec] = []
    options: list[OptionSpec] = []
    prognosis: list[PrognosisSpec] = []
    interactions: list[Interaction] = []
    choices: dict[str, Choice] = {}
    citations: dict[str, Citation] = {}
    unexplained = [f.unexplained_rpl for f in files if f.unexplained_rpl is not None]
    if len(unexplained) > 1:
        raise KnowledgeBaseError("unexplained_rpl is defined in more than one file")
    for f in files:
        rules += f.rules
        steps += f.steps
        options += f.options
        prognosis += f.prognosis
        interactions += f.interactions
        for key in (choices.keys() & f.choices.keys()) | (citations.keys() & f.citations.keys()):
            raise KnowledgeBaseError(f"choice or citation {key!r} is defined twice")
        choices.update(f.choices)
        citations.update(f.citations)
    ids = [r.id for r in rules] + [s.id for s in steps] + [o.id for o in options] + [p.id for p in prognosis]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise KnowledgeBaseError(f"ids defined twice: {dupes}")
    for where, keys in _cited(rules, steps, options, prognosis):
        for key in keys:
            if key not in citations:
                raise MissingCitation(f"{where} cites {key!r}, which is not in the citations")
    for pair in interactions:
        for key in pair.cites:
            if key not in citations:
                raise MissingCitation(f"interaction {pair.receptor}-{pair.ligand} cites unknown {key!r}")
    for r in rules:
        if r.choice is not None and r.choice not in choices:
            raise KnowledgeBaseError(f"rule {r.id} belongs to unknown choice {r.choice!r}")
        if r.group in STANCE_REQUIRED and not r.stances:
            raise KnowledgeBaseError(f"rule {r.id}: a finding of group {r.group!r} must carry the guidelines' stance")
    rule_ids = {r.id for r in rules}
    in_a_choice = {r.id for r in rules if r.choice is not None}
    if unexplained:
        for rule_id in (*unexplained[0].explained_by, *unexplained[0].requires):
            if rule_id not in rule_ids:
                raise KnowledgeBaseError(f"unexplained_rpl names unknown rule {rule_id!r}")
            if rule_id in in_a_choice:
                raise KnowledgeBaseError(f"unexplained_rpl names {rule_id!r}, an alternative of a choice")
    for name, choice in choices.items():
        members = [r.id for r in rules if r.choice == name]
        if choice.default not in members:
            raise KnowledgeBaseError(f"choice {name!r}: default {choice.default!r} is not one of its rules {members}")
    for needed in ("rpl_definition", "rif_definition"):
        if needed not in choices:
            raise KnowledgeBaseError(f"the knowledge base needs the choice {needed!r} (the pathway reads it)")
    return _assemble(
        KnowledgeBase(
            kb_version=versions.pop(),
            title=files[0].title,
            rules=tuple(rules),
            choices=choices,
            selected={name: c.default for name, c in choices.items()},
            options=tuple(options),
            citations=citations,
            interactions=tuple(interactions),
            steps=tuple(steps),
            prognosis=tuple(prognosis),
            unexplained_rpl=unexplained[0] if unexplained else None,
        )
    )


def _assemble(kb: KnowledgeBase) -> KnowledgeBase:
    """``kb`` with its rules compiled, and its pathway and triggers compiled under the choices selected."""
    compiled = {r.id: compile_rule(r) for r in kb.rules}
    for r in kb.rules:
        _check_inputs(r, compiled[r.id])
    pathway = compile_pathway(
        compiled[kb.selected["rpl_definition"]], compiled[kb.selected["rif_definition"]], kb.unexplained_rpl, compiled
    )
    triggers: dict[str, Expr] = {}
    because: dict[str, tuple[str, ...]] = {}
    items: tuple[StepSpec | OptionSpec | PrognosisSpec, ...] = (*kb.steps, *kb.options, *kb.prognosis)
    in_a_choice = {r.id for r in kb.rules if r.choice is not None}

    def resolve(ref: str) -> tuple[str, ...]:
        if ref in in_a_choice:  # it would never fire once another alternative is chosen
            raise KnowledgeBaseError(
                f"{ref!r} is an alternative of a choice; name the pathway value (rpl, rif) or the group instead"
            )
        return kb.resolve(ref)

    for item in items:
        kind = type(item).__name__.removesuffix("Spec").lower()
        conditions = [(item.id, "when", item.when)]
        guards = item.excluded if isinstance(item, PrognosisSpec) else item.held_back
        conditions += [(held_back_key(item.id, i), "held_back", h.when) for i, h in enumerate(guards)]
        for key, name, cond in conditions:
            where = f"{kind} {item.id}: {name}"
            try:
                triggers[key] = compile_trigger(cond, where, resolve)
            except KnowledgeBaseError as exc:
                raise KnowledgeBaseError(f"{where}: {exc}") from None
        tests: dict[str, list[Expr]] = {}
        for feature_cond in feature_refs(item.when):
            ((column, _),) = feature_cond.items()
            tests.setdefault(column, []).append(compile_condition(feature_cond, f"{kind} {item.id}: when"))
        for column, exprs in tests.items():
            triggers[because_key(item.id, column)] = exprs[0] if len(exprs) == 1 else Or(tuple(exprs))
        because[item.id] = tuple(tests)
    return replace(kb, compiled=compiled, pathway=pathway, triggers=triggers, because_features=because)


def _check_inputs(rule: Rule, compiled: CompiledRule) -> None:
    """A criteria rule lists every column it reads (its flag, measure and wordings): they are shown as its inputs."""
    if not isinstance(rule, CriteriaRule):
        return
    read = set(columns(compiled.flag))
    for wordings in compiled.summaries.values():
        for when, _ in wordings:
            if when is not None:
                read |= columns(when)
    unlisted = sorted(read - set(rule.inputs) - ({rule.measure} if rule.measure else set()))
    if unlisted:
        raise KnowledgeBaseError(f"rule {rule.id}: reads {unlisted} but does not list them in inputs")


@cache
def load_shipped() -> KnowledgeBase:
    """The knowledge base shipped with this version of decidua (parsed once)."""
    return build(_parse_files(_shipped_sources()))


def _fmt(v: float) -> str:
    return f"{v:g}"


def apply_override(kb: KnowledgeBase, override: OverrideFile) -> KnowledgeBase:
    """A copy of ``kb`` with the override's choices and thresholds, each change recorded."""
    changes: list[str] = [f"override {override.name!r} version {override.version} (source: {override.source})"]
    selected = dict(kb.selected)
    for name, rule_id in override.choices.items():
        if name not in kb.choices:
            raise KnowledgeBaseError(f"override choices.{name}: unknown choice; known: {sorted(kb.choices)}")
        members = [r.id for r in kb.rules if r.choice == name]
        if rule_id not in members:
            raise KnowledgeBaseError(f"override choices.{name}: {rule_id!r} is not one of {members}")
        if selected[name] != rule_id:
            changes.append(f"choice {name}: {selected[name]} -> {rule_id}")
            selected[name] = rule_id
    rules = list(kb.rules)
    for rule_id, ov in override.rules.items():
        try:
            idx = [r.id for r in rules].index(rule_id)
        except ValueError:
            raise KnowledgeBaseError(f"override rules.{rule_id}: no such rule") from None
        rules[idx] = _override_rule(rules[idx], ov, changes)
    version = kb.kb_version + "+" + re.sub(r"[^A-Za-z0-9.]+", "-", f"{override.name}.{override.version}").strip("-")
    return _assemble(
        replace(
            kb,
            kb_version=version,
            rules=tuple(rules),
            selected=selected,
            overrides=kb.overrides + tuple(changes),
        )
    )


def _allowed_values(rule: Rule) -> tuple[float, float, str]:
    """The range an override may give a number of ``rule`` (the physical range of what it compares)."""
    if isinstance(rule, CountRule):
        return 1, MAX_COUNT, f"a whole number of {', '.join(rule.count)} from 1 to {MAX_COUNT}"
    if isinstance(rule, ThresholdRule | RangeRule):
        spec = FEATURE_INDEX[rule.input]
        low = spec.low if spec.low is not None else float("-inf")
        high = spec.high if spec.high is not None else float("inf")
        return low, high, f"a value of {rule.input} in {rule.unit} from {low:g} to {high:g}"
    return 0, 0, "nothing (a criteria rule has no number to change)"  # pragma: no cover - refused before


def _check_value(where: str, value: float, rule: Rule) -> None:
    low, high, allowed = _allowed_values(rule)
    if not low <= value <= high:
        raise KnowledgeBaseError(f"{where}: got {value:g}; allowed: {allowed}")


def _override_rule(rule: Rule, ov: RuleOverride, changes: list[str]) -> Rule:
    """``rule`` with the override's numbers, each range-checked like a case value and recorded in ``changes``."""
    where = f"override rules.{rule.id}"
    update: dict[str, Any] = {}
    given = ov.model_dump(exclude_none=True)
    allowed: set[str] = {
        "CountRule": {"at_least"},
        "ThresholdRule": {"value", "bands"},
        "RangeRule": {"low", "high"},
        "CriteriaRule": set(),
    }[type(rule).__name__]
    bad = sorted(set(given) - allowed)
    if bad:
        raise KnowledgeBaseError(
            f"{where}: cannot change {bad} of a {rule.kind} rule; allowed: {sorted(allowed) or 'nothing'}"
        )
    for key, new in given.items():
        if key == "bands" and isinstance(rule, ThresholdRule):
            if len(new) != len(rule.bands):
                raise KnowledgeBaseError(f"{where}.bands: give {len(rule.bands)} values, one per band, got {len(new)}")
            for i, v in enumerate(new):
                _check_value(f"{where}.bands[{i}] ({rule.bands[i].label})", v, rule)
            update["bands"] = tuple(b.model_copy(update={"value": v}) for b, v in zip(rule.bands, new, strict=True))
            for b, v in zip(rule.bands, new, strict=True):
                if b.value != v:
                    changes.append(f"rule {rule.id} band {b.label!r}: {_fmt(b.value)} -> {_fmt(v)}")
        else:
            _check_value(f"{where}.{key}", new, rule)
            old = getattr(rule, key)
            if old != new:
                changes.append(f"rule {rule.id} {key}: {_fmt(old)} -> {_fmt(new)}")
            update[key] = new
    new_rule = rule.model_copy(update=update)
    if isinstance(new_rule, RangeRule) and new_rule.low > new_rule.high:
        raise KnowledgeBaseError(f"{where}: low {new_rule.low:g} is above high {new_rule.high:g}")
    return new_rule


def parse_override(text: str, origin: str) -> OverrideFile:
    try:
        return OverrideFile.model_validate(_read_yaml(text, origin))
    except ValidationError as exc:
        raise KnowledgeBaseError(_format_validation(exc, origin)) from None


def load_kb(override: Path | None = None) -> KnowledgeBase:
    """The shipped knowledge base, with a clinic's override file applied when one is given."""
    kb = load_shipped()
    if override is None:
        return kb
    try:
        text = override.read_text("utf-8")
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot read override file {str(override)!r}: {exc.strerror}") from None
    return apply_override(kb, parse_override(text, str(override)))
