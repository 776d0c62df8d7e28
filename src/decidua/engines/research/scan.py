"""The KIR/HLA-C scan of a typed cohort against an outcome, in the manner of Hiby et al. (Hiby SE, Regan L, Lo W,
et al. Hum Reprod 2008;23:972-976: maternal KIR AA and KIR2DS1, parental HLA-C groups in recurrent miscarriage;
Hiby SE, Apps R, Sharkey AM, et al. Maternal activating KIRs protect against human reproductive failure mediated
by fetal HLA-C2. J Clin Invest 2010;120:4102-4110: more fetal than maternal C2): every KIR gene (KIR2DS1 among
them), the KIR genotype (AA/Bx) and motifs (Cen, Tel), the mother's and father's HLA-C groups (a paternal C2 is
also the chance that an embryo inherits one), whether embryos may carry more C2 than the mother, and maternal
KIR AA with more fetal C2 than mother or with a paternal C2, each as an exposure of its own 2x2 table with the
outcome.

The cohort is in the batch engine's input layout; its features are derived chunk by chunk by the batch engine
itself (:func:`decidua.engines.batch.prepare`, the same code that assesses the cohort), so the scan's genotype
groups are those the assessments report; rows the batch engine rejects are counted and left out. Only counts
leave a chunk or a Dask partition (four per exposure), so memory stays flat whatever the cohort's size.

Many tests on one cohort: p values are adjusted by Benjamini-Hochberg (Benjamini Y, Hochberg Y. Controlling the
false discovery rate. J R Stat Soc B 1995;57:289-300; ``scipy.stats.false_discovery_control``), and
each test states its power to detect a given odds ratio (default 2) at two-sided alpha 0.05, by the normal
approximation for two independent proportions (Cohen's h; ``statsmodels`` ``NormalIndPower``) with the observed
group sizes and the outcome rate of the unexposed, so that a clinic sees which "findings" its data can support.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from decidua.core.errors import InputError
from decidua.engines.batch import HLA_COLUMNS, KIR_COLUMNS, plan_layout, prepare
from decidua.engines.research.association import Association, two_by_two
from decidua.engines.research.frame import Column, binary
from decidua.engines.research.source import Source

_OUTCOME = "__outcome"


def _equals(column: str, value: object) -> Callable[[], pl.Expr]:
    def exposure() -> pl.Expr:
        return pl.col(column).eq(value)

    return exposure


def _at_least(column: str, value: int) -> Callable[[], pl.Expr]:
    def exposure() -> pl.Expr:
        return pl.col(column).ge(value)

    return exposure


def _groups() -> tuple[tuple[str, str, Callable[[], pl.Expr]], ...]:
    """(name, what it means, the exposure over the batch engine's feature columns; null when undetermined)."""

    def kir_aa() -> pl.Expr:
        return pl.col("kir_genotype") == "AA"

    def more_c2() -> pl.Expr:
        return pl.col("p_embryo_more_c2_than_mother") > 0

    groups: list[tuple[str, str, Callable[[], pl.Expr]]] = [
        ("KIR AA", "maternal KIR genotype AA (vs Bx)", kir_aa),
    ]
    for motif in ("cen", "tel"):
        for level in ("AA", "AB", "BB"):
            meaning = f"maternal {motif} motif {level} (vs the others)"
            groups.append((f"{motif.title()}-{level}", meaning, _equals(f"kir_{motif}", level)))
    for who, col in (("maternal", "woman_c2_count"), ("paternal", "sperm_c2_count")):
        for count, name in ((0, "C1C1"), (1, "C1C2"), (2, "C2C2")):
            groups.append((f"{who} {name}", f"{who} HLA-C {name} (vs the others)", _equals(col, count)))
        groups.append((f"{who} C2", f"{who} HLA-C carries C2", _at_least(col, 1)))
    groups += [
        ("fetal C2 > maternal", "embryos may carry more C2 than the mother", more_c2),
        (
            "KIR AA x fetal C2 > maternal",
            "maternal KIR AA and embryos may carry more C2 than her",
            lambda: kir_aa() & more_c2(),
        ),
        (
            "KIR AA x paternal C2",
            "maternal KIR AA and a paternal C2",
            lambda: kir_aa() & (pl.col("sperm_c2_count") >= 1),
        ),
    ]
    return tuple(groups)


GROUPS = _groups()
_FEATURES = (
    "kir_genotype",
    "kir_cen",
    "kir_tel",
    "woman_c2_count",
    "sperm_c2_count",
    "p_embryo_more_c2_than_mother",
)


@dataclass(frozen=True, slots=True)
class ScanRow:
    exposure: str
    meaning: str
    association: Association | None  # None when the table is degenerate (see note)
    table: tuple[tuple[int, int], tuple[int, int]]
    p_adjusted: float | None
    power: float | None
    note: str | None

    def to_record(self) -> dict[str, object]:
        a = self.association
        return {
            "exposure": self.exposure,
            "meaning": self.meaning,
            "table": [list(r) for r in self.table],
            "odds_ratio": None if a is None else a.odds_ratio,
            "ci": None if a is None else list(a.ci),
            "exact_ci": None if a is None else list(a.exact_ci),
            "p_fisher": None if a is None else a.p_fisher,
            "p_bh": self.p_adjusted,
            "power": self.power,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Scan:
    outcome: str
    rows_read: int
    rows_rejected: int
    outcome_missing: int
    power_odds_ratio: float
    results: tuple[ScanRow, ...]

    def to_record(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "outcome_missing": self.outcome_missing,
            "power_odds_ratio": self.power_odds_ratio,
            "p_adjustment": "Benjamini-Hochberg",
            "results": [r.to_record() for r in self.results],
        }


def power_two_proportions(n1: int, n0: int, p0: float, odds_ratio: float, alpha: float = 0.05) -> float | None:
    """Power of a two-sided test of two proportions to detect ``odds_ratio`` with n1 exposed and n0 unexposed,
    the unexposed having outcome rate p0 (normal approximation, Cohen's h)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if n1 == 0 or n0 == 0 or not 0 < p0 < 1:
        return None
    odds = odds_ratio * p0 / (1 - p0)
    p1 = odds / (1 + odds)
    h = abs(float(proportion_effectsize(p1, p0)))
    return float(NormalIndPower().power(effect_size=h, nobs1=n1, alpha=alpha, ratio=n0 / n1))


def scan(source: Source, outcome: Column, *, key: str = "case_id", odds_ratio: float = 2.0) -> Scan:
    """Every genotype exposure against ``outcome``, over the cohort in the batch input layout.

    Raises
    ------
    InputError
        No key column, or a column that cannot be read.
    """
    schema = source.schema().collect_schema()
    plan_layout(schema.names(), key, allow_extra=True)  # the key column is there
    # only what the genotype features and the outcome read: the batch engine then prepares a narrow frame
    read = [n for n in schema if n in {key, *KIR_COLUMNS, *HLA_COLUMNS, "oocytes", *outcome.value.meta.root_names()}]
    layout = plan_layout(read, key, allow_extra=True)
    genes = [c for c in KIR_COLUMNS if c in schema]
    exposures = [(name, meaning, make()) for name, meaning, make in GROUPS] + [
        (f"KIR{c.removeprefix('kir_').upper()}", f"maternal KIR{c.removeprefix('kir_').upper()} present", pl.col(c))
        for c in genes
    ]

    gene_cells = [binary(c, c, source.schema()).value.alias(c) for c in genes]  # P/A words, as everywhere

    def tables(rows: pl.LazyFrame) -> pl.LazyFrame:
        """Four cells per exposure, and the rows read, rejected and without an outcome, of one part."""
        # the key replaced by the row number: joined back by row (a woman's key may repeat, one row per cycle)
        chunk = rows.select(read).collect().with_columns(pl.int_range(pl.len()).cast(pl.String).alias(key))
        valid, bad = prepare(chunk, layout)
        side = chunk.lazy().select(pl.col(key), outcome.value.alias(_OUTCOME), *gene_cells)
        # materialised: the sums below then read columns, not the plan once per sum
        joined = valid.select(key, *_FEATURES).join(side, on=key, how="inner").collect()
        y = pl.col(_OUTCOME)
        cells = [
            (e & o).sum().cast(pl.Int64).alias(f"{i}:{j}")
            for i, (_, _, expr) in enumerate(exposures)
            for j, (e, o) in enumerate(((expr, y), (expr, ~y), (~expr, y), (~expr, ~y)))
        ]
        stats = joined.select(y.is_null().sum().cast(pl.Int64).alias("__missing"), *cells)
        counts = pl.DataFrame(
            {"__rows": [chunk.height], "__rejected": [bad.select(pl.len()).collect().item()]},
            schema={"__rows": pl.Int64, "__rejected": pl.Int64},
        )
        return pl.concat([stats, counts], how="horizontal").lazy()

    try:
        totals = source.aggregate(tables, [], chunked=True).row(0, named=True)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot scan the cohort: {exc}") from None
    total, rejected, missing = int(totals["__rows"]), int(totals["__rejected"]), int(totals["__missing"])
    if total == 0:
        raise InputError("no rows to scan (none in the file, or none the --where condition selects)")
    sums = {name: [int(totals[f"{i}:{j}"] or 0) for j in range(4)] for i, (name, _, _) in enumerate(exposures)}
    rows: list[ScanRow] = []
    for name, meaning, _ in exposures:
        a, b, c, d = sums[name]
        table = ((a, b), (c, d))
        result: Association | None
        note: str | None
        try:
            result = two_by_two(a, b, c, d, name, outcome.spec)
        except InputError as exc:
            result, note = None, str(exc)
        else:
            note = "; ".join(result.notes) or None
        power = power_two_proportions(a + b, c + d, c / (c + d), odds_ratio) if c + d else None
        rows.append(ScanRow(name, meaning, result, table, None, power, note))
    adjusted = _bh([r.association.p_fisher if r.association is not None else None for r in rows])
    rows = [
        ScanRow(r.exposure, r.meaning, r.association, r.table, p, r.power, r.note)
        for r, p in zip(rows, adjusted, strict=True)
    ]
    return Scan(outcome.spec, total, rejected, missing, odds_ratio, tuple(rows))


def _bh(p: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p values of the tests that have one (``scipy.stats.false_discovery_control``)."""
    from scipy.stats import false_discovery_control

    present = [(i, x) for i, x in enumerate(p) if x is not None and not math.isnan(x)]
    if not present:
        return [None] * len(p)
    adjusted = false_discovery_control([x for _, x in present], method="bh")
    out: list[float | None] = [None] * len(p)
    for (i, _), q in zip(present, adjusted, strict=True):
        out[i] = float(q)
    return out


__all__ = ["GROUPS", "Scan", "ScanRow", "power_two_proportions", "scan"]
