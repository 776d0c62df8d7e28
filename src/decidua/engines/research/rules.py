"""Where the research commands meet the knowledge base: the active cut-off of a marker (for ``cohort cutoff``'s
default) and a knowledge-base override that sets a rule's cut-off from a clinic's own reference limits (for
``cohort reference-interval --as-override``), with its provenance written into the override's ``source``, which
every assessment made with it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from decidua.core.errors import InputError
from decidua.engines.columnar import to_polars
from decidua.engines.research.frame import numeric
from decidua.engines.research.reference import Partitioning, ReferenceInterval
from decidua.engines.research.roc import Cutoff
from decidua.knowledge.compile import compile_condition
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import ThresholdRule


def threshold_rule(
    kb: KnowledgeBase, column: str, rule_id: str | None = None, *, instead: str = "give the cut-off with --cutoff"
) -> ThresholdRule:
    """The threshold rule that reads ``column`` (an active one; ``rule_id`` chooses among several, and may name
    an inactive alternative).

    Raises
    ------
    InputError
        No such rule, or several and none chosen (the message lists them).
    """
    if rule_id is not None:
        try:
            rule = kb.rule(rule_id)
        except KeyError:
            raise InputError(f"--rule: no rule {rule_id!r} in knowledge base {kb.kb_version}") from None
        if not isinstance(rule, ThresholdRule) or rule.input != column:
            raise InputError(f"--rule: {rule_id} is not a threshold rule on {column!r}")
        return rule
    found = [r for r in kb.active_rules if isinstance(r, ThresholdRule) and r.input == column]
    if not found:
        raise InputError(f"no active threshold rule reads {column!r}; {instead}")
    if len(found) > 1:
        raise InputError(f"several rules read {column!r} ({', '.join(r.id for r in found)}); choose one with --rule")
    return found[0]


def band_columns(rule: ThresholdRule) -> list[str]:
    """The columns the rule's bands read (e.g. ``age_years``)."""
    names: dict[str, None] = {}
    for i, band in enumerate(rule.bands):
        expr = to_polars(compile_condition(band.when, f"rules.{rule.id}.bands[{i}]"))
        names.update(dict.fromkeys(expr.meta.root_names()))
    return list(names)


def rule_cutoff(kb: KnowledgeBase, rule: ThresholdRule, frame: pl.LazyFrame) -> Cutoff:
    """The rule's cut-off as a test on the marker (its bands, e.g. a lower cut-off over 35, included); the
    columns its bands read are read as numbers, and rows missing one are left out of the cut-off's table."""
    sign = ">" if rule.direction == "above" else "<"
    bands = [
        (to_polars(compile_condition(band.when, f"rules.{rule.id}.bands[{i}]")), band.value)
        for i, band in enumerate(rule.bands)
    ]
    names = dict.fromkeys(name for cond, _ in bands for name in cond.meta.root_names())
    reads = tuple(numeric("the rule's band", name, frame) for name in names)
    text = f"{sign} {rule.value:g}" + "".join(f" ({sign} {b.value:g} if {b.label})" for b in rule.bands)

    def positive(marker: pl.Expr, _columns: Mapping[str, pl.Expr]) -> pl.Expr:
        def test(value: float) -> pl.Expr:
            return marker > value if rule.direction == "above" else marker < value

        result = test(rule.value)
        for cond, value in reversed(bands):  # the first band that applies wins, as in the rule
            result = pl.when(cond).then(test(value)).otherwise(result)
        return result

    return Cutoff(f"{text} [{rule.id}, knowledge base {kb.kb_version}]", positive, reads)


def override_from_interval(
    result: ReferenceInterval,
    rule: ThresholdRule,
    *,
    source_file: str,
    name: str,
    today: dt.date,
    active: bool = True,
    merge: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An override file (as data) setting ``rule``'s cut-off to the cohort's upper (or, for a rule that flags
    values below, lower) reference limit; with a partition matching the rule's one band, the band's value too -
    or, when the data do not justify separate intervals (Harris-Boyd says one, Lahti does not say separate), the
    overall limit for both. An inactive alternative rule is selected in ``choices`` (else it would not apply);
    ``merge`` is the clinic's override in force, kept with this rule's values replaced.

    Raises
    ------
    InputError
        No interval, a partition the rule's bands do not match, or a rule with more than one band.
    """
    limit = "upper" if rule.direction == "above" else "lower"

    def value(interval: Any) -> float:
        v = interval.upper if limit == "upper" else interval.lower
        if v is None:
            raise InputError(
                f"no {limit} reference limit for {interval.partition}: {interval.note or 'too few values'}"
            )
        return round(float(v), 3)

    body: dict[str, Any] = {}
    combined = ""
    if result.partitions:
        if len(rule.bands) != 1:
            raise InputError(
                f"--as-override with --partition: {rule.id} has {len(rule.bands)} bands; a partition sets one band"
            )
        band = rule.bands[0]
        band_expr = to_polars(compile_condition(band.when, f"rules.{rule.id}.bands[0]"))
        if result.partition_by is None or not _same(band_expr, result.partition_by):
            raise InputError(
                f"--partition {result.partition_by!r} is not the condition of {rule.id}'s band ({band.label}: "
                f'{band.when}); partition by that condition, e.g. --partition "{_sql(band.when)}"'
            )
        no, yes = result.partitions
        p = result.partitioning
        if isinstance(p, Partitioning) and p.harris_boyd == "one interval" and p.lahti != "separate intervals":
            body = {"value": value(result.overall), "bands": [value(result.overall)]}
            combined = (
                f"; the data do not justify separate intervals (Harris-Boyd: {p.harris_boyd}, Lahti: "
                f"{p.lahti}), so one limit for both"
            )
        else:
            body = {"value": value(no), "bands": [value(yes)]}
    else:
        if rule.bands:
            raise InputError(
                f"{rule.id} has a band ({rule.bands[0].label}); derive both values with --partition "
                f'"{_sql(rule.bands[0].when)}"'
            )
        body = {"value": value(result.overall)}
    o = result.overall
    provenance = (
        f"decidua cohort reference-interval, {today.isoformat()}: the {limit} reference limit of {result.column} "
        f"in {source_file} (n = {o.n} after {o.outliers_low + o.outliers_high} outliers removed by "
        f"{result.outlier_rule}; method {o.method}"
        + (f"; rows where {result.where}" if result.where else "")
        + (
            "; partitioned by "
            + str(result.partition_by)
            + ": "
            + ", ".join(f"{p.partition} n = {p.n}, {p.method}" for p in result.partitions)
            if result.partitions
            else ""
        )
        + combined
        + "; CLSI EP28-A3c)"
    )
    rules: dict[str, Any] = dict(merge.get("rules", {})) if merge else {}
    choices: dict[str, Any] = dict(merge.get("choices", {})) if merge else {}
    rules[rule.id] = body
    if not active and rule.choice:
        choices[rule.choice] = rule.id  # an alternative applies only when chosen
    if merge:
        provenance += (
            f"; merged with the override in force ({merge.get('name')} {merge.get('version')}: {merge.get('source')})"
        )
    out: dict[str, Any] = {"override_schema_version": 1, "name": name, "version": today.isoformat()}
    out["source"] = provenance
    if choices:
        out["choices"] = choices
    out["rules"] = rules
    return out


def _same(expr: pl.Expr, spec: str) -> bool:
    try:
        return bool(expr.meta.eq(pl.sql_expr(spec)))
    except (pl.exceptions.PolarsError, ValueError):
        return False


def _sql(condition: Mapping[str, Any]) -> str:
    """A band condition like ``{age_years: {">": 35}}`` in the SQL the --partition option reads."""
    ((column, body),) = condition.items()
    if isinstance(body, Mapping) and len(body) == 1:
        ((op, value),) = body.items()
        return f"{column} {op} {value}"
    return str(condition)


__all__ = ["band_columns", "override_from_interval", "rule_cutoff", "threshold_rule"]
