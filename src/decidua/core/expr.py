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


def evaluate(expr: Expr, row: Mapping[str, Scalar]) -> Scalar:
    """Evaluate ``expr`` on one feature row (missing keys read as ``None``).

    Examples
    --------
    >>> e = Or((Cmp(">", Col("nk"), Lit(24.0)), And((Cmp(">", Col("age"), Lit(35)), Cmp(">", Col("nk"), Lit(18.0))))))
    >>> evaluate(e, {"nk": 20.0, "age": None}) is None
    True
    >>> evaluate(e, {"nk": 25.0, "age": None})
    True
    """
    match expr:
        case Col(name):
            return row.get(name)
        case Lit(value):
            return value
        case Cmp(op, left, right):
            a, b = evaluate(left, row), evaluate(right, row)
            if a is None or b is None:
                return None
            return _CMP[op](a, b)
        case And(args):
            seen_null = False
            for arg in args:
                v = evaluate(arg, row)
                if v is None:
                    seen_null = True
                elif not v:
                    return False
            return None if seen_null else True
        case Or(args):
            seen_null = False
            for arg in args:
                v = evaluate(arg, row)
                if v is None:
                    seen_null = True
                elif v:
                    return True
            return None if seen_null else False
        case Not(arg):
            v = evaluate(arg, row)
            return None if v is None else not v
        case IsNull(arg):
            return evaluate(arg, row) is None
        case IsIn(arg, values):
            v = evaluate(arg, row)
            return None if v is None else v in values
        case Sum(args):
            total: float = 0
            for arg in args:
                v = evaluate(arg, row)
                if v is None:
                    return None
                if not isinstance(v, int | float):
                    raise TypeError(f"Sum over non-numeric value {v!r}")
                total += v
            return total
        case Arith(op, left, right):
            a, b = evaluate(left, row), evaluate(right, row)
            if a is None or b is None:
                return None
            return _ARITH[op](a, b)
        case When(cond, then, otherwise):
            return evaluate(then, row) if evaluate(cond, row) is True else evaluate(otherwise, row)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover - exhaustive match above


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
