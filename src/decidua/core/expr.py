"""A small expression language in which every rule is defined once.

A rule of the knowledge base compiles to an :data:`Expr` over the columns of a case's flat feature row.
The same tree is evaluated two ways: here, on one row (:func:`evaluate`), and column-wise over a cohort
by the batch engine (``decidua.engines.columnar``), so the two can never disagree by construction.

Semantics are SQL's and Polars': a missing value is ``None``; comparisons with ``None`` give ``None``;
``And``/``Or``/``Not`` use Kleene's three-valued logic; ``When`` takes its ``otherwise`` branch when the
condition is false *or* missing; arithmetic with ``None`` gives ``None``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Scalar = bool | int | float | str | None
CmpOp = Literal[">", ">=", "<", "<=", "==", "!="]
ArithOp = Literal["+", "-", "*", "/"]


@dataclass(frozen=True, slots=True)
class Col:
    name: str


@dataclass(frozen=True, slots=True)
class Lit:
    value: Scalar


@dataclass(frozen=True, slots=True)
class Cmp:
    op: CmpOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class And:
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    arg: Expr


@dataclass(frozen=True, slots=True)
class IsNull:
    arg: Expr


@dataclass(frozen=True, slots=True)
class IsIn:
    arg: Expr
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sum:
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """Binary arithmetic; ``None`` if either side is ``None``."""

    op: ArithOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class When:
    cond: Expr
    then: Expr
    otherwise: Expr


Expr = Col | Lit | Cmp | And | Or | Not | IsNull | IsIn | Sum | Arith | When

_ARITH: dict[str, Callable[[Any, Any], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


Evaluator = Callable[[Mapping[str, Scalar]], Scalar]
_COMPILED: dict[int, tuple[Expr, Evaluator]] = {}  # id(expr) -> (expr kept alive, its evaluator)
_MAX_COMPILED = 100_000


def evaluate(expr: Expr, row: Mapping[str, Scalar]) -> Scalar:
    """Evaluate ``expr`` on one feature row (missing keys read as ``None``).

    Each expression is turned into nested Python closures once (:func:`compile_expr`) and remembered by identity,
    so a rule evaluated on many rows walks its tree only the first time.

    Examples
    --------
    >>> e = Or((Cmp(">", Col("nk"), Lit(24.0)), And((Cmp(">", Col("age"), Lit(35)), Cmp(">", Col("nk"), Lit(18.0))))))
    >>> evaluate(e, {"nk": 20.0, "age": None}) is None
    True
    >>> evaluate(e, {"nk": 25.0, "age": None})
    True
    """
    hit = _COMPILED.get(id(expr))
    if hit is None or hit[0] is not expr:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        hit = (expr, compile_expr(expr))
        _COMPILED[id(expr)] = hit
    return hit[1](row)


def compile_expr(expr: Expr) -> Evaluator:
    """The function computing ``expr`` on a row, with :func:`evaluate`'s semantics."""
    match expr:
        case Col(name):
            return lambda row: row.get(name)
        case Lit(value):
            return lambda row: value
        case Cmp(op, Col(name), Lit(value)) if value is not None:  # most comparisons: one closure, not three
            compare = _CMP[op]

            def column_to_literal(row: Mapping[str, Scalar]) -> Scalar:
                v = row.get(name)
                return None if v is None else compare(v, value)

            return column_to_literal
        case Cmp(op, left, right):
            return _binary(compile_expr(left), compile_expr(right), _CMP[op])
        case Arith(op, left, right):
            return _binary(compile_expr(left), compile_expr(right), _ARITH[op])
        case And(args):
            return _kleene(tuple(compile_expr(a) for a in args), decisive=False)
        case Or(args):
            return _kleene(tuple(compile_expr(a) for a in args), decisive=True)
        case Not(arg):
            inner = compile_expr(arg)

            def negate(row: Mapping[str, Scalar]) -> Scalar:
                v = inner(row)
                return None if v is None else not v

            return negate
        case IsNull(arg):
            inner = compile_expr(arg)
            return lambda row: inner(row) is None
        case IsIn(arg, values):
            inner = compile_expr(arg)

            def member(row: Mapping[str, Scalar]) -> Scalar:
                v = inner(row)
                return None if v is None else v in values

            return member
        case Sum(args):
            parts = tuple(compile_expr(a) for a in args)

            def total(row: Mapping[str, Scalar]) -> Scalar:
                out: float = 0
                for part in parts:
                    v = part(row)
                    if v is None:
                        return None
                    if not isinstance(v, int | float):
                        raise TypeError(f"Sum over non-numeric value {v!r}")
                    out += v
                return out

            return total
        case When(cond, then, otherwise):
            test, yes, no = compile_expr(cond), compile_expr(then), compile_expr(otherwise)
            return lambda row: yes(row) if test(row) is True else no(row)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover - exhaustive match above


def _kleene(parts: tuple[Evaluator, ...], decisive: bool) -> Evaluator:
    """AND (``decisive`` False: any false part decides) or OR (``decisive`` True: any true part decides), in
    Kleene's three-valued logic: otherwise null if a part is null, else ``not decisive``."""

    def combine(row: Mapping[str, Scalar]) -> Scalar:
        seen_null = False
        for part in parts:
            v = part(row)
            if v is None:
                seen_null = True
            elif bool(v) is decisive:
                return decisive
        return None if seen_null else not decisive

    return combine


def _binary(left: Evaluator, right: Evaluator, op: Callable[[Any, Any], Any]) -> Evaluator:
    def apply(row: Mapping[str, Scalar]) -> Scalar:
        a, b = left(row), right(row)
        if a is None or b is None:
            return None
        result: Scalar = op(a, b)
        return result

    return apply


def columns(expr: Expr) -> frozenset[str]:
    """Names of the feature columns ``expr`` reads."""
    match expr:
        case Col(name):
            return frozenset({name})
        case Lit():
            return frozenset()
        case Cmp(_, left, right) | Arith(_, left, right):
            return columns(left) | columns(right)
        case And(args) | Or(args) | Sum(args):
            return frozenset().union(*(columns(a) for a in args))
        case Not(arg) | IsNull(arg) | IsIn(arg, _):
            return columns(arg)
        case When(cond, then, otherwise):
            return columns(cond) | columns(then) | columns(otherwise)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover
