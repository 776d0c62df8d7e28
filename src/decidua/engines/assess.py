"""One-patient assessment: a case and a knowledge base in, an :class:`~decidua.core.findings.Assessment` out.

Pure: no I/O. Rules are the compiled expressions of the knowledge base, evaluated on the case's feature
row with :func:`decidua.core.expr.evaluate` (the batch engine evaluates the same trees column-wise). The order:

1. every active rule gives a finding (flagged, within range, not assessed);
2. the pathway gate says whether the RPL / RIF work-up applies (met, not met, cannot tell);
3. next steps, options and prognoses whose triggers hold are listed, each ``indicated`` or not with the reason.
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
    Frequency,
    InputValue,
    Interpretation,
    NextStep,
    Option,
    Pathway,
    Prognosis,
    Stance,
    Statement,
    Status,
    Threshold,
)
from decidua.engines.features import Row, extract
from decidua.knowledge.compile import status_column, trigger_refs
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import (
    CountRule,
    CriteriaRule,
    OptionSpec,
    PrognosisSpec,
    RangeRule,
    Rule,
    StanceSpec,
    StatementSpec,
    StepSpec,
    ThresholdRule,
)
from decidua.knowledge.schema import (
    Pathway as PathwayName,
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


def status_label(rule: Rule, status: Status) -> str:
    """The clinician's word for a status: met / not met for definitions, above / not above for cut-offs, ..."""
    if rule.labels is not None:
        return {
            Status.FLAGGED: rule.labels.flagged,
            Status.WITHIN_RANGE: rule.labels.within_range,
            Status.NOT_ASSESSED: rule.labels.not_assessed,
        }[status]
    if status is Status.NOT_ASSESSED:
        return "not assessed"
    flagged = status is Status.FLAGGED
    match rule:
        case ThresholdRule():
            word = "above" if rule.direction == "above" else "below"
            return word if flagged else f"not {word}"
        case RangeRule():
            return "outside the range" if flagged else "within the range"
        case _ if rule.group == "investigation":
            return "abnormal" if flagged else "normal"
    return "met" if flagged else "not met"


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
    return tuple(InputValue(n, row.get(n), FEATURE_INDEX[n].unit, FEATURE_INDEX[n].label) for n in names)


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


def statement(s: StatementSpec) -> Statement:
    return Statement(s.source, s.text, s.strength, s.cites, s.wording, s.bearing)


def stance(s: StanceSpec) -> Stance:
    return Stance(s.source, s.text, s.strength, s.wording, s.verified, s.cites, s.note)


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
    template = next(text for when, text in compiled.summaries[status] if when is None or evaluate(when, row) is True)
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
        status_label=status_label(rule, status),
        stances=tuple(stance(s) for s in rule.stances),
        statements=tuple(statement(s) for s in rule.statements),
        population=tuple(
            Frequency(f.genotype, f.population, f.percent, f.n, f.cites, f.derived) for f in rule.population
        ),
    )


def _classification(kb: KnowledgeBase, findings: Mapping[str, Finding]) -> Classification:
    rpl = findings[kb.selected["rpl_definition"]]
    rif = findings[kb.selected["rif_definition"]]
    rif_row = {i.name: i.value for i in rif.inputs}
    failed = rif_row.get("n_transfers_failed", rif.measure)
    return Classification(
        rpl=rpl.status,
        rpl_definition=rpl.rule_id,
        losses_counted=rpl.measure if isinstance(rpl.measure, int) else None,
        rif=rif.status,
        rif_definition=rif.rule_id,
        failed_transfers=failed if isinstance(failed, int) else None,
    )


def _as_bool(flag: Scalar) -> bool | None:
    return None if flag is None else bool(flag)


def _pathway(kb: KnowledgeBase, row: Row, findings: Mapping[str, Finding]) -> Pathway:
    values = {name: _as_bool(evaluate(expr, row)) for name, expr in kb.pathway.items()}
    rpl, rif = findings[kb.selected["rpl_definition"]], findings[kb.selected["rif_definition"]]
    parts = [
        f"RPL {rpl.status_label} ({rpl.title}): {rpl.summary}",
        f"RIF {rif.status_label} ({rif.title}): {rif.summary}",
    ]
    workup = values["workup"]
    if workup is True:
        met = " and ".join(n for n, v in (("RPL", values["rpl"]), ("RIF", values["rif"])) if v)
        verdict = f"The {met} work-up applies to this patient."
    elif workup is False:
        verdict = (
            "She meets neither the RPL nor the RIF definition in force: the RPL/RIF work-up and the "
            "immunomodulatory options do not apply to her; her results are shown for information."
        )
    else:
        verdict = (
            "Whether the RPL/RIF work-up applies cannot be told until the missing history is recorded "
            "(a history that is not recorded is neither 'met' nor 'not met')."
        )
    return Pathway(
        values["rpl"], values["rif"], workup, values["unexplained_rpl"], " ".join([*parts, verdict]), verdict
    )


_PATHWAY_NAMES = {
    "rpl": "RPL",
    "rif": "RIF",
    "workup": "whether the RPL/RIF work-up applies",
    "unexplained_rpl": "unexplained RPL",
}


def _gate(pathways: tuple[PathwayName, ...], pathway: Pathway) -> tuple[bool, str]:
    """(indicated, why) for an item meant for the patients who meet one of ``pathways``."""
    if not pathways:
        return True, ""
    values = {"rpl": pathway.rpl, "rif": pathway.rif}
    met = [p.upper() for p in pathways if values[p] is True]
    if met:
        return True, f"{' and '.join(met)} met under the definition in force"
    names = " or ".join(p.upper() for p in pathways)
    if all(values[p] is False for p in pathways):
        return False, f"not indicated: the patient does not meet the {names} definition in force"
    parts = [
        f"{p.upper()} {'not met' if values[p] is False else 'cannot be told (history not recorded)'}" for p in pathways
    ]
    return False, "cannot tell whether indicated: " + "; ".join(parts)


def _because(
    kb: KnowledgeBase, item: StepSpec | OptionSpec | PrognosisSpec, statuses: Mapping[str, Status]
) -> list[str]:
    """The ids (findings and pathway values) whose status, as the trigger asks, made ``item`` relevant."""
    out: dict[str, None] = {}
    for wanted, ref in trigger_refs(item.when):
        for rule_id in kb.resolve(ref):
            if statuses.get(rule_id) == wanted:
                out[rule_id] = None
    return list(out)


_PATHWAY_WORDS = {Status.FLAGGED: "yes", Status.WITHIN_RANGE: "no", Status.NOT_ASSESSED: "cannot tell"}
_DEFINITION_WORDS = {Status.FLAGGED: "met", Status.WITHIN_RANGE: "not met", Status.NOT_ASSESSED: "cannot tell"}


def _why(because: list[str], findings: Mapping[str, Finding], statuses: Mapping[str, Status]) -> str:
    words = []
    for ref in because:
        f = findings.get(ref)
        if f is not None:
            words.append(f"{f.title}: {f.status_label}")
        else:
            vocabulary = _DEFINITION_WORDS if ref in ("rpl", "rif") else _PATHWAY_WORDS
            words.append(f"{_PATHWAY_NAMES.get(ref, ref)}: {vocabulary[statuses[ref]]}")
    return "; ".join(words)


def _indication(
    gate_reason: str, because: list[str], findings: Mapping[str, Finding], statuses: Mapping[str, Status]
) -> str:
    why = _why(because, findings, statuses)
    if not gate_reason:
        return f"because of {why}" if why else ""
    return f"{gate_reason}; because of {why}" if why else gate_reason


def _nearest(values: tuple[int, ...], x: int) -> int:
    return min(values, key=lambda v: (abs(v - x), v))


def _prognosis(
    spec: PrognosisSpec, row: Row, findings: Mapping[str, Finding], kb: KnowledgeBase, pathway: Pathway
) -> Prognosis:
    age = row.get("age_years")
    rpl = findings[kb.selected["rpl_definition"]]
    losses = rpl.measure if isinstance(rpl.measure, int) else None
    table_age = table_losses = None
    percent = None
    span = f"ages {min(spec.ages)}-{max(spec.ages)}, {min(spec.losses)}-{max(spec.losses)} previous losses"
    if not isinstance(age, int) or losses is None:
        explanation = "Age or number of losses not recorded: no value from the table."
    elif losses not in spec.losses or not min(spec.ages) - 2 <= age <= max(spec.ages) + 2:
        explanation = f"Age {age} with {losses} losses is outside the table ({span}): no value from the table."
    else:
        table_age, table_losses = _nearest(spec.ages, age), losses
        cell = next((c for c in spec.cells if c.age == table_age and c.losses == table_losses), None)
        row_word = "" if table_age == age else f" (the table's nearest row to age {age})"
        if cell is None:
            explanation = (
                f"The table's value for age {table_age}{row_word} and {losses} losses could not be checked against "
                "a copy of the source and is not shipped; see the cohort figures."
            )
        else:
            percent = cell.percent
            explanation = f"Table value for age {table_age}{row_word} and {losses} previous losses."
    if pathway.unexplained_rpl is None:
        explanation += (
            " It applies only if the investigations still outstanding find no cause (the table is for unexplained RPL)."
        )
    return Prognosis(
        id=spec.id,
        title=spec.title,
        measure=spec.measure,
        percent=percent,
        table_age=table_age,
        table_losses=table_losses,
        age=age if isinstance(age, int) else None,
        losses=losses,
        explanation=explanation,
        validity=spec.validity,
        overall=tuple(statement(s) for s in spec.overall),
        citations=spec.cites,
    )


def _warnings(row: Row) -> tuple[str, ...]:
    out = []
    transfers, listed = row.get("n_transfers_biochemical"), row.get("n_biochemical_losses_art")
    if isinstance(transfers, int) and isinstance(listed, int) and transfers > listed:
        extra = transfers - listed
        out.append(
            f"{extra} biochemical pregnancy(ies) after embryo transfer are recorded under transfers but not under "
            "pregnancies: each is counted once as a pregnancy loss where the RPL definition counts biochemical "
            "losses. Record them under pregnancies (outcome biochemical_loss, conception IVF/ICSI) to keep the "
            "history in one place."
        )
    return tuple(out)


def assess_row(row: Row, kb: KnowledgeBase, case_id: str) -> Assessment:
    """Assess a feature row (the shared core of :func:`assess` and of checks against the batch engine)."""
    findings = {r.id: evaluate_rule(r, kb, row) for r in kb.active_rules}
    pathway = _pathway(kb, row, findings)
    statuses: dict[str, Status] = {rule_id: f.status for rule_id, f in findings.items()}
    statuses |= {
        "rpl": status_of(pathway.rpl),
        "rif": status_of(pathway.rif),
        "workup": status_of(pathway.workup_indicated),
        "unexplained_rpl": status_of(pathway.unexplained_rpl),
    }
    status_row: dict[str, Scalar] = {status_column(k): v.value for k, v in statuses.items()}

    def triggered(item_id: str) -> bool:
        return evaluate(kb.triggers[item_id], status_row) is True

    steps = []
    for spec in kb.steps:
        if triggered(spec.id):
            because = _because(kb, spec, statuses)
            indicated, gate = _gate(spec.pathways, pathway)
            steps.append(
                NextStep(
                    spec.id,
                    spec.kind,
                    spec.text,
                    tuple(because),
                    indicated,
                    _indication(gate, because, findings, statuses),
                    spec.cites,
                    tuple(stance(s) for s in spec.stances),
                )
            )
    options = []
    for o in kb.options:
        if triggered(o.id):
            because = _because(kb, o, statuses)
            indicated, gate = _gate(o.pathways, pathway)
            options.append(
                Option(
                    o.id,
                    o.title,
                    o.kind,
                    tuple(because),
                    indicated,
                    _indication(gate, because, findings, statuses),
                    tuple(stance(s) for s in o.stances),
                    tuple(statement(s) for s in o.statements),
                )
            )
    return Assessment(
        case_id=case_id,
        kb_version=kb.kb_version,
        kb_overrides=kb.overrides,
        classification=_classification(kb, findings),
        findings=tuple(findings.values()),
        next_steps=tuple(steps),
        options=tuple(options),
        pathway=pathway,
        prognosis=tuple(_prognosis(p, row, findings, kb, pathway) for p in kb.prognosis if triggered(p.id)),
        warnings=_warnings(row),
    )


def assess(case: Case, kb: KnowledgeBase) -> Assessment:
    """Assess one case against the knowledge base in force.

    ``case`` must have passed :func:`decidua.core.validation.check_case` (the case-file reader does this).
    """
    return assess_row(extract(case), kb, case.case_id)
