"""Column-wise evaluation of the knowledge base's rule expressions with Polars.

:func:`to_polars` translates an :data:`~decidua.core.expr.Expr` into a Polars expression with the same
three-valued semantics as :func:`decidua.core.expr.evaluate`, and :func:`status_expr` turns a flag into a
status, so that the batch engine (:mod:`decidua.engines.batch`) assesses a whole cohort by one lazy query,
without per-row Python.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import polars as pl

from decidua.core.expr import And, Arith, Cmp, Col, Expr, IsIn, IsNull, Lit, Not, Or, Sum, When
from decidua.core.features import FEATURES, Dtype
from decidua.core.findings import FLAG_STATUS, Status

POLARS_DTYPES: dict[Dtype, Any] = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.String}
FEATURE_SCHEMA: dict[str, Any] = {f.name: POLARS_DTYPES[f.dtype] for f in FEATURES}
STATUS_DTYPE = pl.Enum([s.value for s in Status])


def to_polars(expr: Expr) -> pl.Expr:
    """The Polars expression computing ``expr`` column-wise (nulls propagate as in :func:`evaluate`)."""
    match expr:
        case Col(name):
            return pl.col(name)
        case Lit(value):
            return pl.lit(value)
        case Cmp(op, left, right):
            a, b = to_polars(left), to_polars(right)
            match op:
                case ">":
                    return a > b
                case ">=":
                    return a >= b
                case "<":
                    return a < b
                case "<=":
                    return a <= b
                case "==":
                    return a == b
                case "!=":
                    return a != b
        case And(args):
            return reduce(lambda x, y: x & y, (to_polars(a) for a in args))
        case Or(args):
            return reduce(lambda x, y: x | y, (to_polars(a) for a in args))
        case Not(arg):
            return ~to_polars(arg)
        case IsNull(arg):
            return to_polars(arg).is_null()
        case IsIn(arg, values):
            return to_polars(arg).is_in(list(values))  # a null input gives null, as in evaluate()
        case Sum(args):
            # "+" propagates nulls (sum_horizontal would skip them and count a missing value as 0).
            return reduce(lambda x, y: x + y, (to_polars(a) for a in args))
        case Arith(op, left, right):
            a, b = to_polars(left), to_polars(right)
            match op:
                case "+":
                    return a + b
                case "-":
                    return a - b
                case "*":
                    return a * b
                case "/":
                    return a / b
        case When(cond, then, otherwise):
            return pl.when(to_polars(cond)).then(to_polars(then)).otherwise(to_polars(otherwise))
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover


def status_expr(flag: pl.Expr) -> pl.Expr:
    """A three-valued flag column -> its status column (an Enum of the :class:`~decidua.core.findings.Status`
    values), by :data:`~decidua.core.findings.FLAG_STATUS` as the one-patient engine maps it."""

    def status(value: bool | None) -> pl.Expr:
        return pl.lit(FLAG_STATUS[value].value, STATUS_DTYPE)

    return pl.when(flag.is_null()).then(status(None)).when(flag).then(status(True)).otherwise(status(False))
