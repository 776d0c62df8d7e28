"""Load, check and (optionally) override the knowledge base.

The shipped knowledge base is a set of YAML files in ``decidua/knowledge/data``; every file carries the same
``kb_version``. A clinic may load an override file of its own thresholds and choices; the override is
recorded in every assessment (``kb_overrides``) and in the effective version string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from decidua.core.errors import KnowledgeBaseError, MissingCitation
from decidua.knowledge.compile import CompiledRule, compile_rule
from decidua.knowledge.schema import (
    Choice,
    Citation,
    Interaction,
    KnowledgeBaseFile,
    OptionSpec,
    OverrideFile,
    RangeRule,
    Rule,
    RuleOverride,
    StatementSpec,
    ThresholdRule,
)


@dataclass(frozen=True)
class KnowledgeBase:
    """The knowledge base in force: rules (all, and the active ones), options, citations, overrides."""

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

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        """Rules evaluated in an assessment: every rule outside a choice, and the selected one of each choice."""
        return tuple(r for r in self.rules if r.choice is None or self.selected[r.choice] == r.id)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def citation(self, key: str) -> Citation:
        return self.citations[key]


def _read_yaml(text: str, origin: str) -> Any:
    try:
        return yaml.safe_load(text)
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


def _statements(rules: Iterable[Rule], options: Iterable[OptionSpec]) -> Iterable[tuple[str, StatementSpec]]:
    for r in rules:
        for s in r.statements:
            yield f"rule {r.id}", s
    for o in options:
        for s in o.statements:
            yield f"option {o.id}", s


def build(files: list[KnowledgeBaseFile]) -> KnowledgeBase:
    """Merge parsed files into one knowledge base and check it is complete and consistent."""
    if not files:
        raise KnowledgeBaseError("no knowledge-base files found")
    versions = {f.kb_version for f in files}
    if len(versions) != 1:
        raise KnowledgeBaseError(f"knowledge-base files disagree on kb_version: {sorted(versions)}")
    rules: list[Rule] = []
    options: list[OptionSpec] = []
    interactions: list[Interaction] = []
    choices: dict[str, Choice] = {}
    citations: dict[str, Citation] = {}
    for f in files:
        rules += f.rules
        options += f.options
        interactions += f.interactions
        for key in (choices.keys() & f.choices.keys()) | (citations.keys() & f.citations.keys()):
            raise KnowledgeBaseError(f"choice or citation {key!r} is defined twice")
        choices.update(f.choices)
        citations.update(f.citations)
    ids = [r.id for r in rules] + [o.id for o in options]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise KnowledgeBaseError(f"ids defined twice: {dupes}")
    for r in rules:
        for key in r.cites:
            if key not in citations:
                raise MissingCitation(f"rule {r.id} cites {key!r}, which is not in the citations")
        for interval in getattr(r, "context", ()):
            for key in interval.cites:
                if key not in citations:
                    raise MissingCitation(f"rule {r.id} context {interval.label!r} cites unknown {key!r}")
        if r.choice is not None and r.choice not in choices:
            raise KnowledgeBaseError(f"rule {r.id} belongs to unknown choice {r.choice!r}")
    for where, s in _statements(rules, options):
        for key in s.cites:
            if key not in citations:
                raise MissingCitation(f"{where}: statement cites {key!r}, which is not in the citations")
    for pair in interactions:
        for key in pair.cites:
            if key not in citations:
                raise MissingCitation(f"interaction {pair.receptor}-{pair.ligand} cites unknown {key!r}")
    rule_ids = {r.id for r in rules}
    groups = {r.group for r in rules}
    for o in options:
        for ref in o.when_flagged:
            ok = ref.removeprefix("group:") in groups if ref.startswith("group:") else ref in rule_ids
            if not ok:
                raise KnowledgeBaseError(f"option {o.id}: when_flagged names unknown {ref!r}")
    for name, choice in choices.items():
        members = [r.id for r in rules if r.choice == name]
        if choice.default not in members:
            raise KnowledgeBaseError(f"choice {name!r}: default {choice.default!r} is not one of its rules {members}")
    compiled = {r.id: compile_rule(r) for r in rules}
    return KnowledgeBase(
        kb_version=versions.pop(),
        title=files[0].title,
        rules=tuple(rules),
        choices=choices,
        selected={name: c.default for name, c in choices.items()},
        options=tuple(options),
        citations=citations,
        interactions=tuple(interactions),
        compiled=compiled,
    )


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
    return KnowledgeBase(
        kb_version=version,
        title=kb.title,
        rules=tuple(rules),
        choices=kb.choices,
        selected=selected,
        options=kb.options,
        citations=kb.citations,
        interactions=kb.interactions,
        overrides=kb.overrides + tuple(changes),
        compiled={r.id: compile_rule(r) for r in rules},
    )


def _override_rule(rule: Rule, ov: RuleOverride, changes: list[str]) -> Rule:
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
            update["bands"] = tuple(b.model_copy(update={"value": v}) for b, v in zip(rule.bands, new, strict=True))
            for b, v in zip(rule.bands, new, strict=True):
                if b.value != v:
                    changes.append(f"rule {rule.id} band {b.label!r}: {_fmt(b.value)} -> {_fmt(v)}")
        else:
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
