"""One-patient assessment: a case and a knowledge base in, an :class:`~decidua.core.findings.Assessment` out.

Pure: no I/O. Rules are the compiled expressions of the knowledge base, evaluated on the case's feature
row with :func:`decidua.core.expr.evaluate` (the batch engine evaluates the same trees column-wise).
"""

from __future__ import annotations

from collections.abc import Mapping

from decidua.core.case import Case
from decidua.core.expr import Scalar, columns, evaluate
from decidua.core.features import FEATURE_INDEX
from decidua.core.findings import (
    Assessment,
    Classification,
    Finding,
    InputValue,
    Interpretation,
    NextStep,
    Option,
    Statement,
    Status,
    Threshold,
)
from decidua.engines.features import Row, extract
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import (
    CountRule,
    CriteriaRule,
    RangeRule,
    Rule,
    StatementSpec,
    ThresholdRule,
)


def status_of(flag: Scalar) -> Status:
    """Three-valued flag -> status."""
    if flag is None:
        return Status.NOT_ASSESSED
    return Status.FLAGGED if flag else Status.WITHIN_RANGE


def _fmt(value: Scalar) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _thresholds(rule: Rule) -> tuple[Threshold, ...]:
    match rule:
        case CountRule():
            return (Threshold("at_least", rule.at_least),)
        case ThresholdRule():
            word = "above" if rule.direction == "above" else "below"
            out = [Threshold(f"flag {word} ({band.label})", band.value, rule.unit, band.label) for band in rule.bands]
            out.append(Threshold(f"flag {word}", rule.value, rule.unit, "otherwise" if rule.bands else None))
            return tuple(out)
        case RangeRule():
            return (
                Threshold("reference low", rule.low, rule.unit, rule.applies_label),
                Threshold("reference high", rule.high, rule.unit, rule.applies_label),
            )
        case CriteriaRule():
            return ()
    raise TypeError(rule)  # pragma: no cover


def _inputs(rule: Rule, kb: KnowledgeBase, row: Row) -> tuple[InputValue, ...]:
    match rule:
        case CountRule():
            names = list(rule.count)
        case CriteriaRule():
            names = list(rule.inputs)
        case ThresholdRule() | RangeRule():
            names = [rule.input, *sorted(columns(kb.compiled[rule.id].flag) - {rule.input})]
    return tuple(InputValue(n, row.get(n), FEATURE_INDEX[n].unit, FEATURE_INDEX[n].description) for n in names)


def _context(rule: Rule, measure: Scalar, kb: KnowledgeBase) -> tuple[str, ...]:
    out = []
    for interval in getattr(rule, "context", ()):
        where = ""
        if isinstance(measure, int | float):
            inside = interval.low <= measure <= interval.high
            where = " (value inside)" if inside else " (value outside)"
        cites = ", ".join(kb.citation(k).short() for k in interval.cites)
        out.append(f"{interval.label}: {interval.low:g}-{interval.high:g} {interval.unit}{where}; {cites}")
    return tuple(out)


def _statement(s: StatementSpec) -> Statement:
    return Statement(s.source, s.text, s.strength, s.cites, s.wording)


def evaluate_rule(rule: Rule, kb: KnowledgeBase, row: Row) -> Finding:
    """Evaluate one rule on one feature row."""
    compiled = kb.compiled[rule.id]
    flag = evaluate(compiled.flag, row)
    status = status_of(flag)
    measure = evaluate(compiled.measure, row) if compiled.measure is not None else None
    applied = evaluate(compiled.threshold, row) if compiled.threshold is not None else None
    code = evaluate(compiled.interpretation, row) if compiled.interpretation is not None else None
    interpretation = Interpretation(code) if isinstance(code, str) else None
    fields: dict[str, str] = {
        "measure": _fmt(measure),
        "threshold": _fmt(applied),
        "interpretation": {"H": "high", "L": "low", "N": "normal"}.get(str(code), "n/a"),
    }
    if isinstance(rule, RangeRule):
        fields |= {"low": _fmt(rule.low), "high": _fmt(rule.high)}
    template = {
        Status.FLAGGED: rule.summary.flagged,
        Status.WITHIN_RANGE: rule.summary.within_range,
        Status.NOT_ASSESSED: rule.summary.not_assessed,
    }[status]
    return Finding(
        rule_id=rule.id,
        group=rule.group,
        title=rule.title,
        status=status,
        summary=template.format_map(fields),
        kb_version=kb.kb_version,
        inputs=_inputs(rule, kb, row),
        thresholds=_thresholds(rule),
        citations=rule.cites,
        evidence_level=rule.evidence_level,
        measure=measure,
        threshold_applied=applied,
        interpretation=interpretation,
        context=_context(rule, measure, kb),
        stance=rule.stance,
    )


def _classification(kb: KnowledgeBase, findings: Mapping[str, Finding]) -> Classification:
    rpl = findings[kb.selected["rpl_definition"]]
    rif = findings[kb.selected["rif_definition"]]
    rif_row = {i.name: i.value for i in rif.inputs}
    failed = rif_row.get("n_transfers_failed")
    return Classification(
        rpl=rpl.status,
        rpl_definition=rpl.rule_id,
        losses_counted=rpl.measure if isinstance(rpl.measure, int) else None,
        rif=rif.status,
        rif_definition=rif.rule_id,
        failed_transfers=failed if isinstance(failed, int) else None,
    )


def _options(kb: KnowledgeBase, findings: Mapping[str, Finding]) -> tuple[Option, ...]:
    flagged = [f for f in findings.values() if f.status is Status.FLAGGED]
    out = []
    for spec in kb.options:
        because: set[str] = set()
        for ref in spec.when_flagged:
            group = ref.removeprefix("group:") if ref.startswith("group:") else None
            because |= {f.rule_id for f in flagged if (f.group == group if group else f.rule_id == ref)}
        if because:
            out.append(
                Option(spec.id, spec.title, tuple(sorted(because)), tuple(_statement(s) for s in spec.statements))
            )
    return tuple(out)


def assess_row(row: Row, kb: KnowledgeBase, case_id: str) -> Assessment:
    """Assess a feature row (the shared core of :func:`assess` and of checks against the batch engine)."""
    findings = {r.id: evaluate_rule(r, kb, row) for r in kb.active_rules}
    steps = tuple(
        NextStep(r.id.replace("investigation.", "next."), r.next_step, r.id, r.cites)
        for r in kb.active_rules
        if r.next_step and findings[r.id].status is Status.NOT_ASSESSED
    )
    return Assessment(
        case_id=case_id,
        kb_version=kb.kb_version,
        kb_overrides=kb.overrides,
        classification=_classification(kb, findings),
        findings=tuple(findings.values()),
        next_steps=steps,
        options=_options(kb, findings),
    )


def assess(case: Case, kb: KnowledgeBase) -> Assessment:
    """Assess one case against the knowledge base in force.

    ``case`` must have passed :func:`decidua.core.validation.check_case` (the case-file reader does this).
    """
    return assess_row(extract(case), kb, case.case_id)
