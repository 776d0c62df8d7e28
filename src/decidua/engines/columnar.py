"""Column-wise evaluation of the knowledge base's rule expressions with Polars.

:func:`to_polars` translates an :data:`~decidua.core.expr.Expr` into a Polars expression with the same
three-valued semantics as :func:`decidua.core.expr.evaluate`; :func:`rule_columns` builds, for every
active rule, the status column (and its measure) so that a whole cohort is assessed by one lazy query,
without per-row Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Any

import polars as pl

from decidua.core.expr import And, Arith, Cmp, Col, Expr, IsIn, IsNull, Lit, Not, Or, Scalar, Sum, When
from decidua.core.features import FEATURES, Dtype
from decidua.core.findings import Status
from decidua.knowledge.loader import KnowledgeBase

POLARS_DTYPES: dict[Dtype, Any] = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.String}
FEATURE_SCHEMA: dict[str, Any] = {f.name: POLARS_DTYPES[f.dtype] for f in FEATURES}


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
    """Three-valued flag -> status string (the values of :class:`~decidua.core.findings.Status`)."""
    return (
        pl.when(flag.is_null())
        .then(pl.lit(Status.NOT_ASSESSED.value))
        .when(flag)
        .then(pl.lit(Status.FLAGGED.value))
        .otherwise(pl.lit(Status.WITHIN_RANGE.value))
    )


def rule_columns(kb: KnowledgeBase, with_measures: bool = True) -> list[pl.Expr]:
    """One status column per active rule (named by rule id), plus ``<rule id>:measure`` where one exists, and one
    per pathway value (``pathway:workup`` ...)."""
    out = [status_expr(to_polars(expr)).alias(f"pathway:{name}") for name, expr in kb.pathway.items()]
    for rule in kb.active_rules:
        compiled = kb.compiled[rule.id]
        out.append(status_expr(to_polars(compiled.flag)).alias(rule.id))
        if with_measures and compiled.measure is not None:
            out.append(to_polars(compiled.measure).cast(pl.Float64).alias(f"{rule.id}:measure"))
    return out


def frame_from_rows(rows: Iterable[Mapping[str, Scalar]]) -> pl.DataFrame:
    """A feature frame with the documented schema from feature rows (missing keys are null)."""
    rows = list(rows)
    return pl.DataFrame({name: [r.get(name) for r in rows] for name in FEATURE_SCHEMA}, schema=FEATURE_SCHEMA)


def assess_frame(frame: pl.DataFrame | pl.LazyFrame, kb: KnowledgeBase, keep: Iterable[str] = ()) -> pl.DataFrame:
    """Statuses (and measures) of every active rule for every row of a feature frame."""
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    return lazy.select(*(pl.col(k) for k in keep), *rule_columns(kb)).collect()
