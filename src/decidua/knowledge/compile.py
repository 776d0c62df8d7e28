"""Compile knowledge-base rules into expressions (:mod:`decidua.core.expr`).

Each rule becomes a :class:`CompiledRule`: a three-valued ``flag`` (True: flagged, False: within range,
None: not assessed) and, where meaningful, the ``measure`` it judged, the ``threshold`` it applied and an
HL7 ``interpretation`` code. The one-patient and the batch engine evaluate exactly these trees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast, get_args

from decidua.core.errors import KnowledgeBaseError
from decidua.core.expr import And, Cmp, CmpOp, Col, Expr, IsIn, IsNull, Lit, Not, Or, Sum, When, columns
from decidua.core.features import FEATURE_INDEX
from decidua.core.findings import Status
from decidua.knowledge.schema import CountRule, CriteriaRule, RangeRule, Rule, SummaryText, ThresholdRule

CompileOne = Callable[[Mapping[str, Any], str], Expr]
Wordings = tuple[tuple[Expr | None, str], ...]  # (condition, text); the first that holds is used

_OPS: frozenset[str] = frozenset(get_args(CmpOp))
NULL = Lit(None)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: str
    flag: Expr
    measure: Expr | None = None
    threshold: Expr | None = None
    interpretation: Expr | None = None
    summaries: Mapping[Status, Wordings] = field(default_factory=dict)  # read by the one-patient engine only
    flag_columns: frozenset[str] = field(init=False, repr=False, compare=False)  # the columns ``flag`` reads

    def __post_init__(self) -> None:
        object.__setattr__(self, "flag_columns", columns(self.flag))

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


_LITERALS: dict[object, Expr] = {True: Lit(True), False: Lit(False), None: NULL}


def _branch(body: object, where: str, compile_one: CompileOne) -> Expr:
    """A branch of ``if``: a condition, or one of the literals true, false, null."""
    if body is None or isinstance(body, bool):
        return _LITERALS[body]
    if not isinstance(body, Mapping):
        raise KnowledgeBaseError(f"{where}: 'then' and 'else' take a condition or true, false, null")
    return compile_one(body, where)


def _combinator(cond: Mapping[str, Any], where: str, compile_one: CompileOne) -> Expr | None:
    """``any``, ``all``, ``not`` and ``if`` (shared by conditions over features and over statuses)."""
    if set(cond) == {"if", "then", "else"}:
        test = compile_one(cond["if"], where) if isinstance(cond["if"], Mapping) else None
        if test is None:
            raise KnowledgeBaseError(f"{where}: 'if' takes a condition")
        return When(test, _branch(cond["then"], where, compile_one), _branch(cond["else"], where, compile_one))
    if len(cond) != 1:
        raise KnowledgeBaseError(f"{where}: a condition has exactly one key (or if/then/else), got {sorted(cond)}")
    ((key, body),) = cond.items()
    if key in ("any", "all"):
        if not isinstance(body, list) or not body or not all(isinstance(c, Mapping) for c in body):
            raise KnowledgeBaseError(f"{where}: '{key}' takes a non-empty list of conditions")
        parts = tuple(compile_one(c, where) for c in body)
        return Or(parts) if key == "any" else And(parts)
    if key == "not":
        if not isinstance(body, Mapping):
            raise KnowledgeBaseError(f"{where}: 'not' takes one condition")
        return Not(compile_one(body, where))
    return None


def compile_condition(cond: Mapping[str, Any], where: str) -> Expr:
    """``{age_years: {">": 35}}`` and friends -> :data:`Expr` (see :mod:`decidua.knowledge.schema`)."""
    combined = _combinator(cond, where, compile_condition)
    if combined is not None:
        return combined
    ((key, body),) = cond.items()
    if key == "sum":
        if not isinstance(body, Mapping) or "of" not in body or len(body) < 2:
            raise KnowledgeBaseError(f"{where}: 'sum' takes {{of: [columns], <op>: number}}")
        total = Sum(tuple(_column(c, where) for c in body["of"]))
        ops = {k: v for k, v in body.items() if k != "of"}
        if not set(ops) <= _OPS or not all(isinstance(v, int | float) for v in ops.values()):
            raise KnowledgeBaseError(f"{where}: 'sum' compares with numbers using {sorted(_OPS)}")
        parts = tuple(Cmp(cast(CmpOp, op), total, Lit(v)) for op, v in ops.items())
        return parts[0] if len(parts) == 1 else And(parts)
    col = _column(key, where)
    spec = FEATURE_INDEX[key]
    if isinstance(body, bool):
        _check_operand(key, "==", body, where)
        return Cmp("==", col, Lit(body))
    if not isinstance(body, Mapping) or not body:
        raise KnowledgeBaseError(f"{where}: condition on {key!r} must be true/false or a mapping of operators")
    tests: list[Expr] = []
    for op, value in body.items():
        if op == "in":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise KnowledgeBaseError(f"{where}: 'in' on {key!r} takes a list of strings")
            for v in value:
                _check_operand(key, op, v, where)
            tests.append(IsIn(col, tuple(value)))
        elif op == "is":  # known and equal: a missing value gives false, not unknown
            _check_operand(key, op, value, where)
            tests.append(When(IsNull(col), Lit(False), Cmp("==", col, Lit(value))))
        elif op in _OPS:
            _check_operand(key, op, value, where)
            if spec.dtype in ("bool", "str") and op not in ("==", "!="):
                raise KnowledgeBaseError(f"{where}: {op!r} on {key!r} ({spec.dtype}): only ==, != and is apply")
            tests.append(Cmp(cast(CmpOp, op), col, Lit(value)))
        else:
            raise KnowledgeBaseError(f"{where}: unknown operator {op!r}; allowed: in, is, {', '.join(sorted(_OPS))}")
    return tests[0] if len(tests) == 1 else And(tuple(tests))


def _check_operand(key: str, op: str, value: object, where: str) -> None:
    """An operand must be of the column's type (and among its values), so that both engines can compare it."""
    spec = FEATURE_INDEX[key]
    if spec.dtype == "bool":
        ok = isinstance(value, bool)
        allowed = "true or false"
    elif spec.dtype == "str":
        ok = isinstance(value, str) and (not spec.categories or value in spec.categories)
        allowed = f"one of {list(spec.categories)}"
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        allowed = "a number"
    if not ok:
        raise KnowledgeBaseError(f"{where}: {op!r} on {key!r} compares with {value!r}; allowed: {allowed}")


def _hl(flag: Expr, high: str) -> Expr:
    return When(flag, Lit(high), When(Not(flag), Lit("N"), NULL))


def _wordings(text: SummaryText, where: str) -> Wordings:
    if isinstance(text, str):
        return ((None, text),)
    return tuple((None if v.when is None else compile_condition(v.when, where), v.text) for v in text)


def compile_rule(rule: Rule) -> CompiledRule:
    """The rule's flag, measure, threshold and interpretation as expressions, with its summary wordings."""
    where = f"rule {rule.id}"
    summaries = {
        Status.FLAGGED: _wordings(rule.summary.flagged, f"{where} summary"),
        Status.WITHIN_RANGE: _wordings(rule.summary.within_range, f"{where} summary"),
        Status.NOT_ASSESSED: _wordings(rule.summary.not_assessed, f"{where} summary"),
    }
    return replace(_compile_flag(rule, where), summaries=summaries)


def _compile_flag(rule: Rule, where: str) -> CompiledRule:
    match rule:
        case CountRule():
            measure = Sum(tuple(_column(c, where) for c in rule.count))
            flag: Expr = Cmp(">=", measure, Lit(rule.at_least))
            if rule.count_max:
                most = Sum(tuple(_column(c, where) for c in rule.count_max))
                flag = When(flag, Lit(True), When(Cmp("<", most, Lit(rule.at_least)), Lit(False), NULL))
            return CompiledRule(rule.id, flag, measure, Lit(rule.at_least))
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
            decided = When(IsNull(applied), undecided, Cmp(op, x, applied))
            return CompiledRule(rule.id, decided, x, applied, _hl(decided, "H" if rule.direction == "above" else "L"))
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


# Triggers of next steps, options and prognoses: conditions over the statuses of findings and of the pathway,
# and over the feature row itself.
TRIGGER_KEYS: dict[str, str] = {**{s.value: s.value for s in Status}, "high": "H", "low": "L"}
PATHWAY_VALUES = ("rpl", "rif", "workup", "unexplained_rpl", "explained")
_INTERPRETATION_KEYS = ("high", "low")


def held_back_key(item_id: str, index: int) -> str:
    """The key of an item's ``index``-th ``held_back`` condition among the compiled triggers."""
    return f"{item_id}#held_back#{index}"


def status_column(ref: str) -> str:
    """The name under which a finding's (or a pathway value's) status is found in a status row."""
    return f"@{ref}"


def interpretation_column(ref: str) -> str:
    """The name under which a finding's HL7 interpretation (H, L, N) is found in a status row."""
    return f"@{ref}#interpretation"


def compile_trigger(cond: Mapping[str, Any], where: str, resolve: Callable[[str], tuple[str, ...]]) -> Expr:
    """``{flagged: group:nk}`` and friends -> :data:`Expr` over a status row (see :func:`status_column`).

    ``resolve`` turns a reference (rule id, ``group:<name>``, pathway value) into the ids it stands for and
    raises :class:`KnowledgeBaseError` for an unknown one.
    """

    def one(c: Mapping[str, Any], w: str) -> Expr:
        combined = _combinator(c, w, one)
        if combined is not None:
            return combined
        ((key, ref),) = c.items()
        if key in FEATURE_INDEX or key == "sum":
            return compile_condition(c, w)  # a condition on the feature row, as in a rule
        if key not in TRIGGER_KEYS or not isinstance(ref, str):
            raise KnowledgeBaseError(
                f"{w}: a trigger is {{flagged|within_range|not_assessed|high|low: <rule id, group:<name> or "
                f"{'|'.join(PATHWAY_VALUES)}>}} or a condition on a feature, combined with any/all/not; got {dict(c)!r}"
            )
        ids = resolve(ref)
        tests: tuple[Expr, ...]
        if key in _INTERPRETATION_KEYS:  # no result (or no interpretation) is simply not high, not unknown
            wanted = Lit(TRIGGER_KEYS[key])
            cols = [Col(interpretation_column(i)) for i in ids]
            tests = tuple(When(IsNull(c), Lit(False), Cmp("==", c, wanted)) for c in cols)
        else:
            tests = tuple(Cmp("==", Col(status_column(i)), Lit(TRIGGER_KEYS[key])) for i in ids)
        return tests[0] if len(tests) == 1 else Or(tests)

    return one(cond, where)


def trigger_refs(cond: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (status, reference) pairs a trigger asks for outside any ``not`` and ``if``: what an item is shown
    *because* of."""
    out: list[tuple[str, str]] = []
    if set(cond) == {"if", "then", "else"}:
        return out
    for key, body in cond.items():
        if key in ("any", "all") and isinstance(body, list):
            for c in body:
                if isinstance(c, Mapping):
                    out += trigger_refs(c)
        elif key in TRIGGER_KEYS and isinstance(body, str):
            out.append((key, body))
    return out


def feature_refs(cond: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The conditions on the feature row a trigger asks for outside any ``not`` and ``if`` (e.g.
    ``{n_stillbirths: {">": 0}}``): those that hold are named, with their values, as what an item is shown
    *because* of."""
    out: list[Mapping[str, Any]] = []
    if set(cond) == {"if", "then", "else"}:
        return out
    for key, body in cond.items():
        if key in ("any", "all") and isinstance(body, list):
            for c in body:
                if isinstance(c, Mapping):
                    out += feature_refs(c)
        elif key in FEATURE_INDEX:
            out.append({key: body})
    return out


def because_key(item_id: str, column: str) -> str:
    """The key, among the compiled triggers, of the condition on ``column`` in an item's trigger."""
    return f"{item_id}#because#{column}"


def describe_trigger(cond: object) -> str:
    """A trigger in words, e.g. ``(group:nk high or unexplained RPL: yes)``, for ``kb show``."""
    if not isinstance(cond, Mapping):
        return "always" if cond is True else "never" if cond is False else "cannot tell"
    if set(cond) == {"if", "then", "else"}:
        return (
            f"if {describe_trigger(cond['if'])} then {describe_trigger(cond['then'])} "
            f"else {describe_trigger(cond['else'])}"
        )
    ((key, body),) = cond.items()
    if key in ("any", "all") and isinstance(body, list):
        parts = [describe_trigger(c) for c in body]
        return parts[0] if len(parts) == 1 else "(" + (" or " if key == "any" else " and ").join(parts) + ")"
    if key == "not":
        return f"not {describe_trigger(body)}"
    if key in TRIGGER_KEYS and isinstance(body, str):
        if body in PATHWAY_VALUES:
            words = (
                {"flagged": "met", "within_range": "not met", "not_assessed": "cannot tell"}
                if body in ("rpl", "rif")
                else {"flagged": "yes", "within_range": "no", "not_assessed": "cannot tell"}
            )
            return f"{PATHWAY_WORDS[body]}: {words.get(key, key)}"
        words = {"flagged": "flagged", "within_range": "within range", "not_assessed": "not assessed"}
        return f"{body} {words.get(key, key)}"
    if key == "sum" and isinstance(body, Mapping):
        tests = " and ".join(f"{op} {_fmt_literal(v)}" for op, v in body.items() if op != "of")
        return f"{' + '.join(body.get('of', []))} {tests}"
    if isinstance(body, Mapping):
        return " and ".join(f"{key} {op} {_fmt_literal(v)}" for op, v in body.items())
    return f"{key} is {_fmt_literal(body)}"


def _fmt_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt_literal(v) for v in value) + "]"
    return str(value)


PATHWAY_WORDS = {
    "rpl": "RPL",
    "rif": "RIF",
    "workup": "work-up applies",
    "unexplained_rpl": "unexplained RPL",
    "explained": "a finding that may explain the losses",
}


def compile_pathway(
    rpl: CompiledRule, rif: CompiledRule, unexplained: Any, compiled: Mapping[str, CompiledRule]
) -> dict[str, Expr]:
    """The pathway values as expressions over the feature row (so that both engines compute them alike).

    * ``rpl``, ``rif``: the flags of the definitions in force (met, not met, cannot tell);
    * ``workup``: either one met (Kleene OR: not met only when both are not met);
    * ``unexplained_rpl``: RPL met and nothing in ``unexplained.explained_by`` flagged; cannot tell while one of
      ``unexplained.requires`` is not assessed. ``unexplained`` is a :class:`~decidua.knowledge.schema.UnexplainedSpec`
      or ``None`` (then it is never said).
    """
    out: dict[str, Expr] = {"rpl": rpl.flag, "rif": rif.flag, "workup": Or((rpl.flag, rif.flag))}
    if unexplained is None:
        out["unexplained_rpl"] = NULL
        out["explained"] = NULL
        return out
    # a finding that may explain the losses is flagged (one not assessed is not flagged): whatever the definitions,
    # a cause to deal with first. Never unknown, so that it reads like unexplained_rpl beside it.
    out["explained"] = Or(
        tuple(When(IsNull(compiled[r].flag), Lit(False), compiled[r].flag) for r in unexplained.explained_by)
    )
    terms: list[Expr] = []
    for rule_id in unexplained.explained_by:
        flag = compiled[rule_id].flag
        terms.append(flag if rule_id in unexplained.requires else When(IsNull(flag), Lit(False), flag))
    for rule_id in unexplained.requires:
        if rule_id not in unexplained.explained_by:
            terms.append(When(IsNull(compiled[rule_id].flag), NULL, Lit(False)))
    out["unexplained_rpl"] = And((rpl.flag, Not(Or(tuple(terms)))))
    return out
