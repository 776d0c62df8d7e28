"""Assess a cohort in the flat feature layout, column-wise, with Polars.

The pipeline is lazy end to end: :func:`prepare` casts and checks the input columns and splits valid rows
from rejected ones (each with its reason), :func:`assess_lazy` adds one status column per active rule and the
classification. The rules are the knowledge base's compiled expressions translated by
:mod:`decidua.engines.columnar`, so every row gets exactly the one-patient result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from decidua.core.errors import InputError
from decidua.core.features import FEATURE_INDEX, FEATURES, FeatureSpec
from decidua.core.findings import Status
from decidua.engines.columnar import FEATURE_SCHEMA, to_polars
from decidua.knowledge.loader import KnowledgeBase

DEFAULT_KEY = "case_id"
REASON = "reason"
STATUS_DTYPE = pl.Enum([s.value for s in Status])

# Cross-column consistency of a row (each: a condition that must hold, and what it means).
CONSISTENCY: tuple[tuple[str, str, str], ...] = (
    ("n_transfers_failed", "n_transfers", "n_transfers_failed must not exceed n_transfers"),
    (
        "n_euploid_transfers_failed",
        "n_transfers_failed",
        "n_euploid_transfers_failed must not exceed n_transfers_failed",
    ),
)


@dataclass(frozen=True, slots=True)
class Layout:
    """How an input's columns map onto the feature layout."""

    key: str
    present: tuple[str, ...]  # feature columns found in the input
    absent: tuple[str, ...]  # feature columns missing: read as null (not recorded)


def plan_layout(columns: Sequence[str], key: str = DEFAULT_KEY, allow_extra: bool = False) -> Layout:
    """Check an input's column names against the documented layout.

    Raises
    ------
    InputError
        If the key column is missing, or (unless ``allow_extra``) a column is not part of the layout.
    """
    if key not in columns:
        raise InputError(f"input has no key column {key!r}; columns found: {', '.join(columns) or 'none'}")
    unknown = [c for c in columns if c != key and c not in FEATURE_INDEX]
    if unknown and not allow_extra:
        raise InputError(
            f"input columns not in the layout: {', '.join(unknown)} "
            "(see `decidua batch --columns`; pass --allow-extra to ignore them)"
        )
    present = tuple(f.name for f in FEATURES if f.name in columns)
    absent = tuple(f.name for f in FEATURES if f.name not in columns)
    return Layout(key, present, absent)


_WORDS: dict[str, bool] = {
    **dict.fromkeys(("true", "t", "yes", "y", "1", "positive", "pos", "+"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0", "negative", "neg", "-"), False),
}
ValueMap = dict[str, bool | str]


def value_maps(frame: pl.DataFrame, layout: Layout) -> dict[str, ValueMap]:
    """For text cells of boolean and categorical columns: each distinct spelling -> its value.

    Labs write "Normal", " abnormal" or "Yes"; these are read case- and space-insensitively. Working on the
    distinct values (a handful per column) instead of every cell keeps the cost per row to one hash lookup.
    Spellings that mean nothing allowed are left out, so they are rejected with their row.
    """
    text = [n for n in layout.present if FEATURE_INDEX[n].dtype in ("bool", "str") and frame.schema[n] == pl.String]
    distinct = frame.select(pl.col(n).unique().drop_nulls().implode() for n in text).row(0) if text else ()
    maps: dict[str, ValueMap] = {}
    for name, values in zip(text, distinct, strict=True):
        spec = FEATURE_INDEX[name]
        vocabulary: dict[str, bool | str] = (
            dict(_WORDS) if spec.dtype == "bool" else {c.lower(): c for c in spec.categories}
        )
        maps[name] = {raw: vocabulary[raw.strip().lower()] for raw in values if raw.strip().lower() in vocabulary}
    return maps


def _cast(spec: FeatureSpec, col: pl.Expr, source: pl.DataType, mapping: ValueMap | None) -> pl.Expr:
    target = FEATURE_SCHEMA[spec.name]
    if mapping is not None:
        dtype = pl.Enum(spec.categories) if spec.dtype == "str" else target
        return col.replace_strict(mapping, default=None, return_dtype=dtype)
    if spec.dtype == "str":
        return col.cast(pl.String).cast(pl.Enum(spec.categories), strict=False)
    if source == pl.String:
        col = col.str.strip_chars()
    if spec.dtype == "int" and source in (pl.Float32, pl.Float64):
        # a whole-number float (Excel, pandas) is accepted; 2.5 pregnancies is not
        return pl.when(col == col.round(0)).then(col).otherwise(None).cast(target, strict=False)
    return col.cast(target, strict=False)


def _check(spec: FeatureSpec, raw: pl.Expr, value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(is this column's value bad?, the message saying why) for one feature column."""
    if spec.dtype == "bool":
        allowed = "true/false (also yes/no, 1/0, positive/negative)"
    elif spec.dtype == "str":
        allowed = "one of " + ", ".join(spec.categories)
    else:
        allowed = f"{'an integer' if spec.dtype == 'int' else 'a number'} from {spec.low:g} to {spec.high:g}"
    bad = raw.is_not_null() & value.is_null()  # present but not of the column's type or vocabulary
    if spec.dtype not in ("bool", "str") and spec.low is not None and spec.high is not None:
        bad = bad | ((value < spec.low) | (value > spec.high)).fill_null(False)
    message = pl.format(f"{spec.name}: got '{{}}'; allowed: {allowed}", raw.cast(pl.String).fill_null(""))
    return bad, message


def _raw(name: str) -> str:
    return f"__raw_{name}"


def prepare(frame: pl.DataFrame, layout: Layout) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Cast the input to the feature schema and split it into (valid rows, rejected rows with a reason).

    Categorical columns become Enums of their allowed values. Reasons are formatted only for the rejected rows;
    valid rows cost one boolean per check.
    """
    schema = frame.schema
    maps = value_maps(frame, layout)
    raw = frame.lazy().select(pl.col(layout.key).cast(pl.String), *(pl.col(n).alias(_raw(n)) for n in layout.present))
    typed = raw.with_columns(
        *(_cast(FEATURE_INDEX[n], pl.col(_raw(n)), schema[n], maps.get(n)).alias(n) for n in layout.present),
        *(pl.lit(None, FEATURE_SCHEMA[n]).alias(n) for n in layout.absent),
    )
    checks = [_check(FEATURE_INDEX[n], pl.col(_raw(n)), pl.col(n)) for n in layout.present]
    checks += [
        ((pl.col(a) > pl.col(b)).fill_null(False), pl.lit(msg))
        for a, b, msg in CONSISTENCY
        if a in layout.present and b in layout.present
    ]
    checks.append((pl.col(layout.key).is_null(), pl.lit(f"{layout.key}: missing key")))
    flagged = typed.with_columns(pl.any_horizontal([bad for bad, _ in checks]).alias(REASON))
    features = [f.name for f in FEATURES]
    valid = flagged.filter(~pl.col(REASON)).select(layout.key, *features)
    reason = pl.concat_str([pl.when(bad).then(msg) for bad, msg in checks], separator="; ", ignore_nulls=True)
    rejected = flagged.filter(pl.col(REASON)).select(layout.key, reason.alias(REASON))
    return valid, rejected


def _status(flag: pl.Expr) -> pl.Expr:
    def lit(status: Status) -> pl.Expr:
        return pl.lit(status.value, STATUS_DTYPE)

    return (
        pl.when(flag.is_null())
        .then(lit(Status.NOT_ASSESSED))
        .when(flag)
        .then(lit(Status.FLAGGED))
        .otherwise(lit(Status.WITHIN_RANGE))
    )


def output_columns(kb: KnowledgeBase) -> list[str]:
    """Names of the result columns after the key, in order."""
    return ["rpl", "rpl_losses_counted", "rif", *(r.id for r in kb.active_rules)]


def assess_lazy(valid: pl.LazyFrame, kb: KnowledgeBase, key: str = DEFAULT_KEY) -> pl.LazyFrame:
    """Key, classification and one status column per active rule, for every valid row."""
    rpl, rif = kb.selected["rpl_definition"], kb.selected["rif_definition"]
    statuses = {r.id: _status(to_polars(kb.compiled[r.id].flag)) for r in kb.active_rules}
    rpl_measure = kb.compiled[rpl].measure
    losses = to_polars(rpl_measure).cast(pl.Int64) if rpl_measure is not None else pl.lit(None, pl.Int64)
    return valid.select(
        pl.col(key),
        statuses[rpl].alias("rpl"),
        losses.alias("rpl_losses_counted"),
        statuses[rif].alias("rif"),
        *(expr.alias(rule_id) for rule_id, expr in statuses.items()),
    )


def summary(result: pl.DataFrame, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Counts of each status for every finding column."""
    out = []
    for name in ["rpl", "rif", *(r.id for r in kb.active_rules)]:
        counts = dict(result[name].value_counts().iter_rows())
        out.append({"finding": name, **{s.value: int(counts.get(s.value, 0)) for s in Status}})
    return out
