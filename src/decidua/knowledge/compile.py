"""Compile knowledge-base rules into expressions (:mod:`decidua.core.expr`).

Each rule becomes a :class:`CompiledRule`: a three-valued ``flag`` (True: flagged, False: within range,
None: not assessed) and, where meaningful, the ``measure`` it judged, the ``threshold`` it applied and an
HL7 ``interpretation`` code. The one-patient and the batch engine evaluate exactly these trees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

from decidua.core.errors import KnowledgeBaseError
from decidua.core.expr import And, Cmp, CmpOp, Col, Expr, IsIn, IsNull, Lit, Not, Or, Sum, When
from decidua.core.features import FEATURE_INDEX
from decidua.knowledge.schema import CountRule, CriteriaRule, RangeRule, Rule, ThresholdRule

_OPS: frozenset[str] = frozenset(get_args(CmpOp))
NULL = Lit(None)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str
    flag: Expr
    measure: Expr | None = None
    threshold: Expr | None = None
    interpretation: Expr | None = None

    def exprs(self) -> dict[str, Expr]:
        """The named outputs, for engines that evaluate them all (batch)."""
        out: dict[str, Expr] = {"flag": self.flag}
        if self.measure is not None:
            out["measure"] = self.measure
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.interpretation is not None:
            out["interpretation"] = self.interpretation
        return out


def _column(name: str, where: str) -> Col:
    if name not in FEATURE_INDEX:
        raise KnowledgeBaseError(f"{where}: unknown input column {name!r}; known: {', '.join(sorted(FEATURE_INDEX))}")
    return Col(name)


def compile_condition(cond: Mapping[str, Any], where: str) -> Expr:
    """``{age_years: {">": 35}}`` and friends -> :data:`Expr` (see :mod:`decidua.knowledge.schema`)."""
    if len(cond) != 1:
        raise KnowledgeBaseError(f"{where}: a condition has exactly one key, got {sorted(cond)}")
    ((key, body),) = cond.items()
    if key in ("any", "all"):
        if not isinstance(body, list) or not body:
            raise KnowledgeBaseError(f"{where}: '{key}' takes a non-empty list of conditions")
        parts = tuple(compile_condition(c, where) for c in body)
        return Or(parts) if key == "any" else And(parts)
    if key == "sum":
        if not isinstance(body, Mapping) or "of" not in body or len(body) < 2:
            raise KnowledgeBaseError(f"{where}: 'sum' takes {{of: [columns], <op>: number}}")
        total = Sum(tuple(_column(c, where) for c in body["of"]))
        ops = {k: v for k, v in body.items() if k != "of"}
        if not set(ops) <= _OPS or not all(isinstance(v, int | float) for v in ops.values()):
            raise KnowledgeBaseError(f"{where}: 'sum' compares with numbers using {sorted(_OPS)}")
        parts = tuple(Cmp(cast(CmpOp, op), total, Lit(v)) for op, v in ops.items())
        return parts[0] if len(parts) == 1 else And(parts)
    if key == "not":
        if not isinstance(body, Mapping):
            raise KnowledgeBaseError(f"{where}: 'not' takes one condition")
        return Not(compile_condition(body, where))
    col = _column(key, where)
    if isinstance(body, bool):
        return Cmp("==", col, Lit(body))
    if not isinstance(body, Mapping) or not body:
        raise KnowledgeBaseError(f"{where}: condition on {key!r} must be true/false or a mapping of operators")
    tests: list[Expr] = []
    for op, value in body.items():
        if op == "in":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise KnowledgeBaseError(f"{where}: 'in' on {key!r} takes a list of strings")
            allowed = FEATURE_INDEX[key].categories
            bad = [v for v in value if allowed and v not in allowed]
            if bad:
                raise KnowledgeBaseError(f"{where}: {bad} not among the values of {key!r}: {list(allowed)}")
            tests.append(IsIn(col, tuple(value)))
        elif op in _OPS:
            if not isinstance(value, int | float | str | bool):
                raise KnowledgeBaseError(f"{where}: operand of {op!r} on {key!r} must be a number or string")
            tests.append(Cmp(cast(CmpOp, op), col, Lit(value)))
        else:
            raise KnowledgeBaseError(f"{where}: unknown operator {op!r}; allowed: in, {', '.join(sorted(_OPS))}")
    return tests[0] if len(tests) == 1 else And(tuple(tests))


def _hl(flag: Expr, high: str) -> Expr:
    return When(flag, Lit(high), When(Not(flag), Lit("N"), NULL))


def compile_rule(rule: Rule) -> CompiledRule:
    where = f"rule {rule.id}"
    match rule:
        case CountRule():
            measure = Sum(tuple(_column(c, where) for c in rule.count))
            return CompiledRule(rule.id, Cmp(">=", measure, Lit(rule.at_least)), measure, Lit(rule.at_least))
        case ThresholdRule():
            x = _column(rule.input, where)
            op: CmpOp = ">" if rule.direction == "above" else "<"
            # The band whose condition holds first gives the threshold; an undecidable condition gives none.
            applied: Expr = Lit(rule.value)
            for band in reversed(rule.bands):
                c = compile_condition(band.when, f"{where} band {band.label!r}")
                applied = When(IsNull(c), NULL, When(c, Lit(band.value), applied))
            candidates = [rule.value, *(b.value for b in rule.bands)]
            beyond_all = And(tuple(Cmp(op, x, Lit(v)) for v in candidates))
            within_all = And(tuple(Not(Cmp(op, x, Lit(v))) for v in candidates))
            undecided = When(beyond_all, Lit(True), When(within_all, Lit(False), NULL))
            flag = When(IsNull(applied), undecided, Cmp(op, x, applied))
            return CompiledRule(rule.id, flag, x, applied, _hl(flag, "H" if rule.direction == "above" else "L"))
        case RangeRule():
            x = _column(rule.input, where)
            applies = compile_condition(rule.applies_when, where) if rule.applies_when else Lit(True)
            high, low = Cmp(">", x, Lit(rule.high)), Cmp("<", x, Lit(rule.low))
            flag = When(applies, Or((high, low)), NULL)
            interp = When(applies, When(high, Lit("H"), When(low, Lit("L"), When(IsNull(x), NULL, Lit("N")))), NULL)
            return CompiledRule(rule.id, flag, x, None, interp)
        case CriteriaRule():
            for name in rule.inputs:
                _column(name, where)
            shown = _column(rule.measure, where) if rule.measure else None
            return CompiledRule(rule.id, compile_condition(rule.flag, where), shown)
    raise KnowledgeBaseError(f"{where}: unknown kind")  # pragma: no cover - the schema admits no other kind
