"""Columns of a research cohort, read as the statistics need them, with every missing and unreadable cell counted.

A cohort file (CSV, Parquet, Excel; any columns, the batch engine's input and output layouts included) arrives as
a lazy frame. A *numeric* column is a number column, or text whose non-empty cells all read as numbers; a *binary*
column is a boolean column, 0/1 numbers, or text in decidua's yes/no vocabulary (:mod:`decidua.core.cells`);
either may instead be an expression over the columns in SQL syntax (``age_years > 35``, ``kir_genotype = 'AA'``),
read by Polars. Cells that are empty are *missing*; cells that are present but cannot be read are *invalid*; both
are counted and the rows left out, never imputed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from decidua.core.cells import CELL_HELP_SHORT, GENE_WORDS, WORDS
from decidua.core.errors import InputError
from decidua.engines.research.source import Source

_TEXT = (pl.String, pl.Categorical, pl.Enum)
_ROW = "__row"
# SQL that reads more than one row: its result would depend on how the rows are split into chunks or partitions
_AGGREGATE = re.compile(
    r"\b(AVG|SUM|COUNT|MIN|MAX|MEDIAN|STDDEV\w*|VAR\w*|FIRST|LAST|QUANTILE\w*|RANK|ROW_NUMBER|LAG|LEAD)\s*\(|"
    r"\bOVER\b|\bSELECT\b|\bEXISTS\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Column:
    """How one role (``--column``, ``--outcome``, ...) is read: the expression giving the value (null when missing
    or invalid) and the one telling an invalid cell from a missing one."""

    option: str  # the command-line option that named it, for messages
    spec: str  # the column name or expression as given
    value: pl.Expr
    invalid: pl.Expr  # true where a cell is present but unreadable


@dataclass(frozen=True, slots=True)
class Counted:
    """How many rows a role could use, and why the others could not."""

    option: str
    spec: str
    missing: int
    invalid: int

    def to_record(self) -> dict[str, object]:
        return {"option": self.option, "column": self.spec, "missing": self.missing, "invalid": self.invalid}


def _expression(option: str, spec: str, schema: pl.Schema) -> pl.Expr:
    """A column of the frame, or an SQL expression over its columns (names checked)."""
    if spec in schema:
        return pl.col(spec)
    if _AGGREGATE.search(spec):
        raise InputError(
            f"{option}: {spec!r} aggregates over rows; a condition here reads one row at a time (e.g. age_years > 35)"
        )
    try:
        expr = pl.sql_expr(spec)
    except Exception as exc:
        raise InputError(f"{option}: {spec!r} is neither a column of the file nor an expression: {exc}") from None
    unknown = [c for c in expr.meta.root_names() if c not in schema]
    if unknown:
        raise InputError(
            f"{option}: {spec!r} names {', '.join(repr(c) for c in unknown)}, not a column of the file "
            f"(columns: {', '.join(list(schema)[:40])}{' ...' if len(schema) > 40 else ''})"
        )
    return expr


def numeric_columns(source: Source, names: Iterable[str]) -> Source:
    """The rows with each named text column cast to Float64 when all its non-empty cells read as numbers (one
    pass over those columns, added up across the parts); other columns as they are."""
    schema = source.schema().collect_schema()
    text = [n for n in dict.fromkeys(names) if n in schema and isinstance(schema[n], _TEXT)]
    if not text:
        return source

    def trimmed(n: str) -> pl.Expr:
        return pl.col(n).cast(pl.String).str.strip_chars()

    def failures(rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.select(
            ((trimmed(n) != "") & trimmed(n).is_not_null() & trimmed(n).cast(pl.Float64, strict=False).is_null())
            .sum()
            .alias(n)
            for n in text
        )

    failed = source.aggregate(failures, []).row(0, named=True)
    numeric = [n for n in text if failed[n] == 0]
    if not numeric:
        return source

    def cast(rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.with_columns(
            pl.when(trimmed(n) != "").then(trimmed(n)).cast(pl.Float64, strict=False).alias(n) for n in numeric
        )

    return source.transform(cast)


def with_features(source: Source, names: Iterable[str], key: str = "case_id") -> Source:
    """The rows with the named decidua features (``kir_genotype``, ``woman_c2_count``, ...) that they lack,
    derived from their batch-layout columns by the batch engine part by part and joined back row by row (a
    cohort may repeat a woman's key, one row per cycle); a row the batch engine rejects gets none (and is counted
    as missing where a role reads them). Unchanged when every name is a column already or none is a feature.

    Raises
    ------
    InputError
        A feature is needed but the rows have no ``key`` column.
    """
    from decidua.core.features import FEATURE_INDEX
    from decidua.engines.batch import plan_layout, prepare
    from decidua.engines.columnar import FEATURE_SCHEMA

    schema = source.schema().collect_schema()
    wanted = [n for n in dict.fromkeys(names) if n not in schema and n in FEATURE_INDEX]
    if not wanted:
        return source
    if key not in schema:
        raise InputError(
            f"{', '.join(wanted)}: decidua derives these from a cohort in the batch input layout, which needs the "
            f"key column {key!r}"
        )
    layout = plan_layout(schema.names(), key, allow_extra=True)

    def features(rows: pl.LazyFrame) -> pl.LazyFrame:
        # joined back by row, not by key: a cohort may hold several rows per woman (one per cycle)
        chunk = rows.collect().with_row_index(_ROW)
        if chunk.height == 0:
            derived = pl.DataFrame(schema={_ROW: pl.UInt32, **{n: FEATURE_SCHEMA[n] for n in wanted}})
        else:
            numbered = chunk.with_columns(pl.col(_ROW).cast(pl.String).alias(key)).drop(_ROW)
            valid, _ = prepare(numbered, layout)
            derived = valid.select(pl.col(key).cast(pl.UInt32).alias(_ROW), *wanted).collect()
        return chunk.join(derived, on=_ROW, how="left").drop(_ROW).lazy()

    return source.transform(features, heavy=True)


def numeric(option: str, spec: str, frame: pl.LazyFrame) -> Column:
    """A numeric role: a number column, or text read as numbers (a cell that is not a number is invalid)."""
    schema = frame.collect_schema()
    expr = _expression(option, spec, schema)
    dtype = schema.get(spec)
    if dtype is not None and isinstance(dtype, _TEXT):
        text = expr.cast(pl.String).str.strip_chars()
        value = pl.when(text != "").then(text).cast(pl.Float64, strict=False)
        return Column(option, spec, value, (text != "") & text.is_not_null() & value.is_null())
    if dtype is not None and not dtype.is_numeric():
        raise InputError(f"{option}: column {spec!r} is {dtype}, not numbers")
    value = expr.cast(pl.Float64, strict=False)
    return Column(option, spec, pl.when(value.is_finite()).then(value), value.is_not_null() & ~value.is_finite())


def binary(option: str, spec: str, frame: pl.LazyFrame) -> Column:
    """A yes/no role: a boolean column or expression, 0/1 numbers, or yes/no words (``CELL_HELP_SHORT``)."""
    schema = frame.collect_schema()
    expr = _expression(option, spec, schema)
    dtype = schema.get(spec)
    if dtype is None or dtype == pl.Boolean:  # an expression: Polars types it (a comparison is boolean)
        return Column(option, spec, expr.cast(pl.Boolean, strict=False), pl.lit(False))
    if isinstance(dtype, _TEXT):
        word = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
        words = GENE_WORDS if spec.startswith("kir_") else WORDS  # a KIR gene column reads P/A too
        value = word.replace_strict(words, default=None, return_dtype=pl.Boolean)
        return Column(option, spec, value, (word != "") & word.is_not_null() & value.is_null())
    if dtype.is_numeric():
        value = pl.when(expr == 1).then(True).when(expr == 0).then(False)
        return Column(option, spec, value, expr.is_not_null() & value.is_null())
    raise InputError(f"{option}: column {spec!r} is {dtype}; expected {CELL_HELP_SHORT}")


def covariate(option: str, spec: str, frame: pl.LazyFrame) -> Column:
    """An adjustment column: numbers when the column holds numbers (see :func:`numeric_columns`), else yes/no."""
    dtype = frame.collect_schema().get(spec)
    if dtype is not None and dtype.is_numeric():
        return numeric(option, spec, frame)
    return binary(option, spec, frame)


def category(option: str, spec: str, frame: pl.LazyFrame) -> Column:
    """A subgroup role: a text column's values as categories (blank: missing), else yes/no (a condition, a
    boolean or 0/1 column)."""
    dtype = frame.collect_schema().get(spec)
    if dtype is not None and isinstance(dtype, _TEXT):
        text = pl.col(spec).cast(pl.String).str.strip_chars()
        return Column(option, spec, pl.when(text != "").then(text), pl.lit(False))
    return binary(option, spec, frame)


def counted(source: Source, roles: Iterable[Column]) -> tuple[Counted, ...]:
    """Missing and invalid cells of each role, in one pass."""
    roles = list(roles)

    def query(rows: pl.LazyFrame) -> pl.LazyFrame:
        exprs = []
        for i, r in enumerate(roles):
            exprs += [(r.value.is_null() & ~r.invalid).sum().alias(f"m{i}"), r.invalid.sum().alias(f"i{i}")]
        return rows.select(exprs)

    try:
        row = source.aggregate(query, []).row(0, named=True)
    except (pl.exceptions.PolarsError, InputError) as exc:
        raise InputError(f"cannot read {', '.join(r.option for r in roles)}: {exc}") from None
    return tuple(Counted(r.option, r.spec, int(row[f"m{i}"]), int(row[f"i{i}"])) for i, r in enumerate(roles))


__all__ = [
    "Column",
    "Counted",
    "binary",
    "category",
    "counted",
    "covariate",
    "numeric",
    "numeric_columns",
    "with_features",
]
