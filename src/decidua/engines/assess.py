"""One-patient assessment: a case and a knowledge base in, an :class:`~decidua.core.findings.Assessment` out.

Pure: no I/O. Rules are the compiled expressions of the knowledge base, evaluated on the case's feature
row with :func:`decidua.core.expr.evaluate` (the batch engine evaluates the same trees column-wise). The order:

1. every active rule gives a finding (flagged, within range, not assessed);
2. the pathway gate says whether the RPL / RIF work-up applies (met, not met, cannot tell);
3. next steps, options and prognoses whose triggers hold are listed, each ``indicated`` or not with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decidua.core.case import Case
from decidua.core.expr import Scalar, evaluate
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
    status_of,
)
from decidua.engines.extract import Row, extract
from decidua.immunogenetics.releases import releases
from decidua.knowledge.compile import (
    TRIGGER_KEYS,
    because_key,
    held_back_key,
    interpretation_column,
    status_column,
    trigger_refs,
)
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
            names = [rule.input, *sorted(kb.compiled[rule.id].flag_columns - {rule.input})]
    return tuple(InputValue(n, row.get(n), FEATURE_INDEX[n].unit, FEATURE_INDEX[n].label) for n in names)


def _context(rule: Rule, measure: Scalar, kb: KnowledgeBase) -> tuple[str, ...]:
    out = []
    for interval in rule.context if isinstance(rule, ThresholdRule | RangeRule) else ():
        where = ""
        if isinstance(measure, int | float):
            inside = interval.low <= measure <= interval.high
            where = " (value inside)" if inside else " (value outside)"
        cites = ", ".join(kb.citation(k).short() for k in interval.cites)
        out.append(f"{interval.label}: {interval.low:g}-{interval.high:g} {interval.unit}{where}; {cites}")
    return tuple(out)


def statement(s: StatementSpec) -> Statement:
    return Statement(s.source, s.text, s.strength, s.cites, s.wording, s.bearing, s.verified)


def stance(s: StanceSpec) -> Stance:
    return Stance(s.source, s.text, s.verdict, s.strength, s.wording, s.verified, s.cites, s.note)


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


def _count_max(rule: Rule, row: Row, counted: int | None) -> int | None:
    """The most a count could be (a ``count_max`` rule whose count is uncertain), else the count itself."""
    if counted is None or not isinstance(rule, CountRule) or not rule.count_max:
        return counted
    values = [row.get(c) for c in rule.count_max]
    if not all(isinstance(v, int) for v in values):
        return counted
    return max(counted, sum(v for v in values if isinstance(v, int)))


def _classification(kb: KnowledgeBase, findings: Mapping[str, Finding], row: Row) -> Classification:
    rpl = findings[kb.selected["rpl_definition"]]
    rif = findings[kb.selected["rif_definition"]]
    rif_row = {i.name: i.value for i in rif.inputs}
    failed = rif.measure if isinstance(rif.measure, int) else rif_row.get("n_transfers_failed")
    losses = rpl.measure if isinstance(rpl.measure, int) else None
    return Classification(
        rpl=rpl.status,
        rpl_definition=rpl.rule_id,
        losses_counted=losses,
        rif=rif.status,
        rif_definition=rif.rule_id,
        failed_transfers=failed if isinstance(failed, int) else None,
        losses_label=kb.rule(rpl.rule_id).measure_label or "losses",
        transfers_label=kb.rule(rif.rule_id).measure_label or "failed transfers",
        losses_counted_max=_count_max(kb.rule(rpl.rule_id), row, losses),
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
        values["rpl"],
        values["rif"],
        workup,
        values["unexplained_rpl"],
        values["explained"],
        " ".join([*parts, verdict]),
        verdict,
    )


_PATHWAY_NAMES = {
    "rpl": "RPL",
    "rif": "RIF",
    "workup": "whether the RPL/RIF work-up applies",
    "unexplained_rpl": "unexplained RPL",
    "explained": "an explaining finding",
}


def _gate(pathways: tuple[PathwayName, ...], pathway: Pathway) -> tuple[bool, str, str]:
    """(indicated, gate, why) for an item meant for the patients who meet one of ``pathways``."""
    if not pathways:
        return True, "not_gated", ""
    values = {"rpl": pathway.rpl, "rif": pathway.rif}
    met = [p.upper() for p in pathways if values[p] is True]
    if met:
        return True, "met", f"{' and '.join(met)} met under the definition in force"
    names = " or ".join(p.upper() for p in pathways)
    if all(values[p] is False for p in pathways):
        return False, "not_met", f"not indicated: the patient does not meet the {names} definition in force"
    parts = [
        f"{p.upper()} {'not met' if values[p] is False else 'cannot be told from the history recorded'}"
        for p in pathways
    ]
    return False, "cannot_tell", "cannot tell whether indicated: " + "; ".join(parts)


def _because(kb: KnowledgeBase, when: Mapping[str, Any], status_row: Mapping[str, Scalar]) -> list[str]:
    """The ids (findings and pathway values) whose status, as the trigger asks, made an item relevant."""
    out: dict[str, None] = {}
    for wanted, ref in trigger_refs(when):
        column = interpretation_column if wanted in ("high", "low") else status_column
        value = TRIGGER_KEYS[wanted]
        for rule_id in kb.resolve(ref):
            if status_row.get(column(rule_id)) == value:
                out[rule_id] = None
    return list(out)


def _because_features(kb: KnowledgeBase, item_id: str, status_row: Mapping[str, Scalar]) -> list[str]:
    """The feature columns whose condition in an item's trigger holds (e.g. ``n_stillbirths`` for a stillbirth)."""
    return [
        c for c in kb.because_features.get(item_id, ()) if evaluate(kb.triggers[because_key(item_id, c)], status_row)
    ]


_PATHWAY_WORDS = {Status.FLAGGED: "yes", Status.WITHIN_RANGE: "no", Status.NOT_ASSESSED: "cannot tell"}
_DEFINITION_WORDS = {Status.FLAGGED: "met", Status.WITHIN_RANGE: "not met", Status.NOT_ASSESSED: "cannot tell"}


_INTERPRETATION_WORDS: dict[Interpretation | None, str] = {Interpretation.HIGH: " (high)", Interpretation.LOW: " (low)"}


def _why(
    because: list[str], findings: Mapping[str, Finding], statuses: Mapping[str, Status], row: Mapping[str, Scalar]
) -> str:
    words = []
    for ref in because:
        f = findings.get(ref)
        if f is not None:
            words.append(f"{f.title}: {f.status_label}" + _INTERPRETATION_WORDS.get(f.interpretation, ""))
        elif ref in statuses:
            vocabulary = _DEFINITION_WORDS if ref in ("rpl", "rif") else _PATHWAY_WORDS
            words.append(f"{_PATHWAY_NAMES.get(ref, ref)}: {vocabulary[statuses[ref]]}")
        else:  # a feature the trigger tests
            value = row.get(ref)
            shown = ("yes" if value else "no") if isinstance(value, bool) else _fmt(value)
            words.append(f"{FEATURE_INDEX[ref].description}: {shown}")
    return "; ".join(words)


def _indication(
    indicated: bool,
    gate_reason: str,
    because: list[str],
    findings: Mapping[str, Finding],
    statuses: Mapping[str, Status],
    row: Mapping[str, Scalar],
) -> str:
    why = _why(because, findings, statuses, row)
    if not why:
        return gate_reason
    why = f"because of {why}" if indicated else f"listed because of {why}"
    return f"{gate_reason}; {why}" if gate_reason else why


def _prognosis(
    spec: PrognosisSpec, kb: KnowledgeBase, row: Row, status_row: Mapping[str, Scalar], pathway: Pathway
) -> Prognosis:
    age = row.get("age_years")
    clinical = row.get("n_miscarriages")  # the table counts miscarriages, not biochemical losses
    losses = clinical if isinstance(clinical, int) else None
    cells = {(c.age, c.losses): c.percent for c in spec.cells}
    table_age = table_losses = None
    percent = None
    bracket: tuple[tuple[int, float | None], ...] = ()
    span = f"ages {min(spec.ages)}-{max(spec.ages)}, {min(spec.losses)}-{max(spec.losses)} previous losses"
    outside = next(
        (e.reason for i, e in enumerate(spec.excluded) if evaluate(kb.triggers[held_back_key(spec.id, i)], status_row)),
        None,
    )
    if not isinstance(age, int) or losses is None:
        explanation = "Age or number of miscarriages not recorded: no value from the table."
    elif outside is not None:
        explanation = f"{outside}: no value from the table."
    elif losses not in spec.losses or not min(spec.ages) <= age <= max(spec.ages):
        explanation = (
            f"Age {age} with {losses} miscarriage(s) is outside the table ({span}; biochemical losses are not "
            "counted): no value from the table."
        )
    elif age in spec.ages:
        table_age, table_losses = age, losses
        percent = cells.get((age, losses))
        explanation = (
            f"Table value for age {age} and {losses} previous losses."
            if percent is not None
            else f"The table's value for age {age} and {losses} losses could not be checked against a copy of the "
            "source and is not shipped; see the cohort figures."
        )
    else:
        below = max(a for a in spec.ages if a < age)
        above = min(a for a in spec.ages if a > age)
        table_losses = losses
        rows = ((below, cells.get((below, losses))), (above, cells.get((above, losses))))
        missing = [str(a) for a, p in rows if p is None]
        if missing:  # one row alone is the figure for a younger or an older woman: never shown as hers
            explanation = (
                f"Age {age} lies between the table's rows for ages {below} and {above}; with {losses} previous "
                f"losses the row for age {' and age '.join(missing)} could not be checked against the source and is "
                "not shipped, so no value is shown; see the cohort figures."
            )
        else:
            bracket = rows
            explanation = (
                f"Age {age} lies between the table's rows; with {losses} previous losses, "
                + " and ".join(f"age {a}: {p:g} %" for a, p in rows)
                + "."
            )
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
        bracket=bracket,
        age=age if isinstance(age, int) else None,
        losses=losses,
        explanation=explanation,
        validity=spec.validity,
        overall=tuple(statement(s) for s in spec.overall),
        citations=spec.cites,
    )


_APL_CORE = ("apl_lupus_anticoagulant", "apl_anticardiolipin_igg", "apl_anticardiolipin_igm")
_APL_OPTIONAL = ("apl_anti_b2gpi_igg", "apl_anti_b2gpi_igm")


def _warnings(row: Row) -> tuple[str, ...]:
    out = []
    transfers, listed = row.get("n_transfers_biochemical"), row.get("n_biochemical_losses_art")
    known = row.get("n_biochemical_losses_art_known")
    if isinstance(transfers, int) and isinstance(listed, int) and transfers > listed:
        extra = transfers - listed
        out.append(
            f"{extra} biochemical pregnancy(ies) after embryo transfer are recorded under transfers but not under "
            "pregnancies: each is counted once as a pregnancy loss where the RPL definition counts biochemical "
            "losses. Record them under pregnancies (outcome biochemical_loss, conception IVF/ICSI) to keep the "
            "history in one place."
        )
    if (
        isinstance(transfers, int)
        and transfers > 0
        and isinstance(listed, int)
        and isinstance(known, int)
        and listed > known
    ):
        out.append(
            f"{listed - known} biochemical loss(es) under pregnancies have no recorded conception: each may be "
            "the biochemical pregnancy of a transfer (counted once) or another event. Record the conception to "
            "count them exactly. Meanwhile, under a definition that counts biochemical losses, the count is a range: a "
            "threshold it decides (the definition, antiphospholipid syndrome with two, or three or more losses) "
            "is 'cannot tell' unless the lower count settles it."
        )
    negative = all(row.get(c) is False for c in _APL_CORE) and not any(row.get(c) is True for c in _APL_OPTIONAL)
    if row.get("cond_antiphospholipid_syndrome") is True and negative:
        out.append(
            "Antiphospholipid syndrome is recorded, but the antiphospholipid antibodies on file are negative "
            "(lupus anticoagulant, anticardiolipin IgG and IgM): the diagnosis rests on results not recorded "
            "here. The options for antiphospholipid syndrome follow the recorded diagnosis; check it."
        )
    stillbirths = row.get("n_stillbirths")
    if isinstance(stillbirths, int) and stillbirths > 0:
        out.append(
            f"{stillbirths} stillbirth(s) (fetal death at 24 weeks or later) recorded: not pregnancy losses under the "
            "RPL definitions, and a late loss has a work-up of its own (a fetal death at or after 10 weeks is a "
            "clinical criterion of antiphospholipid syndrome)."
        )
    return tuple(out)


def _status_row(row: Row, findings: Mapping[str, Finding], statuses: Mapping[str, Status]) -> dict[str, Scalar]:
    """What triggers read: the feature row, each status, and each finding's HL7 interpretation."""
    out: dict[str, Scalar] = dict(row)
    out |= {status_column(k): v.value for k, v in statuses.items()}
    out |= {interpretation_column(k): f.interpretation.value if f.interpretation else None for k, f in findings.items()}
    return out


def _item_gate(
    kb: KnowledgeBase,
    spec: StepSpec | OptionSpec,
    pathway: Pathway,
    status_row: Mapping[str, Scalar],
    findings: Mapping[str, Finding],
    statuses: Mapping[str, Status],
) -> tuple[list[str], bool, str, str]:
    """(because, indicated, gate, indication) of a triggered step or option."""
    because = _because(kb, spec.when, status_row) + _because_features(kb, spec.id, status_row)
    indicated, gate, reason = _gate(spec.pathways, pathway)
    for i, hold in enumerate(spec.held_back if indicated else ()):
        if evaluate(kb.triggers[held_back_key(spec.id, i)], status_row) is not True:
            continue
        held: list[str] = []
        for ref in _because(kb, hold.when, status_row):
            if ref == "explained" and kb.unexplained_rpl is not None:  # name the findings that explain
                held += [r for r in kb.unexplained_rpl.explained_by if statuses.get(r) is Status.FLAGGED]
            elif ref in findings:
                held.append(ref)
        why = _why(list(dict.fromkeys(held)), findings, statuses, status_row)
        return because, False, "held_back", f"held back: {hold.reason}" + (f" ({why})" if why else "")
    return because, indicated, gate, _indication(indicated, reason, because, findings, statuses, status_row)


def assess_row(row: Row, kb: KnowledgeBase, case_id: str) -> Assessment:
    """Assess a feature row (the shared core of :func:`assess` and of checks against the batch engine)."""
    findings = {r.id: evaluate_rule(r, kb, row) for r in kb.active_rules}
    pathway = _pathway(kb, row, findings)
    classification = _classification(kb, findings, row)
    statuses: dict[str, Status] = {rule_id: f.status for rule_id, f in findings.items()}
    statuses |= {
        "rpl": status_of(pathway.rpl),
        "rif": status_of(pathway.rif),
        "workup": status_of(pathway.workup_indicated),
        "unexplained_rpl": status_of(pathway.unexplained_rpl),
        "explained": status_of(pathway.explained),
    }
    status_row = _status_row(row, findings, statuses)

    def triggered(item_id: str) -> bool:
        return evaluate(kb.triggers[item_id], status_row) is True

    steps = []
    for spec in kb.steps:
        if triggered(spec.id):
            because, indicated, gate, indication = _item_gate(kb, spec, pathway, status_row, findings, statuses)
            steps.append(
                NextStep(
                    spec.id,
                    spec.kind,
                    spec.text,
                    tuple(because),
                    indicated,
                    indication,
                    spec.cites,
                    tuple(stance(s) for s in spec.stances),
                    gate,
                )
            )
    options = []
    for o in kb.options:
        if triggered(o.id):
            because, relevant, gate, indication = _item_gate(kb, o, pathway, status_row, findings, statuses)
            options.append(
                Option(
                    o.id,
                    o.title,
                    o.kind,
                    tuple(because),
                    relevant,
                    indication,
                    tuple(stance(s) for s in o.stances),
                    tuple(statement(s) for s in o.statements),
                    gate,
                    o.stances_concern,
                )
            )
    return Assessment(
        case_id=case_id,
        kb_version=kb.kb_version,
        kb_overrides=kb.overrides,
        classification=classification,
        findings=tuple(findings.values()),
        next_steps=tuple(steps),
        options=tuple(options),
        pathway=pathway,
        prognosis=tuple(_prognosis(p, kb, row, status_row, pathway) for p in kb.prognosis if triggered(p.id)),
        warnings=_warnings(row),
        reference_data=tuple(r.label for r in releases()),
    )


def assess(case: Case, kb: KnowledgeBase) -> Assessment:
    """Assess one case against the knowledge base in force.

    ``case`` must have passed :func:`decidua.core.validation.check_case` (the case-file reader does this).
    """
    return assess_row(extract(case), kb, case.case_id)
