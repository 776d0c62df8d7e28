"""Reference intervals from a clinic's own cohort, as CLSI EP28-A3c / IFCC describe them, and whether separate
intervals for subgroups (e.g. under and over 35) are justified.

The values are first aggregated by Polars into a table of distinct values with their counts (per partition), so
10 million rows become a few thousand; every figure below is exact on that table.

* **Outliers** (stated with the result, never silent): ``tukey`` - values below Q1 - 1.5 IQR or above
  Q3 + 1.5 IQR (Tukey JW. Exploratory data analysis. 1977; quartiles by linear interpolation, R type 7) on the
  Box-Cox transformed values (lambda by maximum likelihood), so that the long tail of a skewed marker such as NK
  % is not cut as if it were outliers (Horn PS, Feng L, Li Y, Pesce AJ. Effect of outliers and nonhealthy
  individuals on reference interval estimation. Clin Chem 2001;47:2137-2145, as the R package
  referenceIntervals implements it; values must be positive, else the raw scale is used and said);
  ``tukey-raw`` - the same fences on the raw values; ``dixon`` - Reed's rule: on each side of the median, the
  innermost gap between adjacent values that exceeds a third of the range marks every value beyond it (Reed AH,
  Henry RJ, Mason WB. Influence of statistical method used on the resulting estimate of normal range. Clin Chem
  1971;17:275-284; as the R package mcradds applies it); ``none``.
* **Nonparametric** (n >= 120): the 2.5th and 97.5th percentiles at rank p(n + 1) with linear interpolation (the
  estimator IFCC and CLSI recommend; R type 6), and the 90 % confidence interval of each limit from order
  statistics: with B ~ Binomial(n, 0.025), ranks r1 = the smallest r with P(B <= r) > 0.05 and
  r2 = the 95th percentile of B plus 1 give [x(r1), x(r2)] for the lower limit and [x(n+1-r2), x(n+1-r1)] for
  the upper. This rule reproduces every row (n = 119 to 1000) of the rank table of EP28-A3c (Table 8) as
  shipped by the R packages referenceIntervals and mcradds, and extends it to any n.
* **Robust** (20 <= n < 120; Horn PS, Pesce AJ, Copeland BE. A robust approach to reference interval estimation
  and evaluation. Clin Chem 1998;44:622-631, as CLSI EP28-A3c gives it): the biweight location T (tuning 3.7,
  scale MAD/0.6745, iterated to 1e-6) and limits T -/+ t(0.975, n-1) sqrt(s_bi(205.6)^2 + S_T(3.7)^2); the
  90 % intervals of the limits by a percentile bootstrap (5,000 resamples, fixed seed: the same data give the
  same figures). Checked against EP28-A3c Appendix B's example as mcradds reproduces it (9.0495 to 10.1994).
  The biweight interval assumes symmetry: positive values are analysed on the Box-Cox scale and the limits
  transformed back (a skewed marker such as NK % otherwise gets limits far too low; checked by simulation).
* Fewer than 20 values: no interval (too few, said per partition).
* **Partitioning** of two subgroups: Harris EK, Boyd JC. On dividing reference data into subgroups to produce
  separate reference ranges. Clin Chem 1990;36:265-270 - the normal deviate z = |m1 - m2| / sqrt(s1^2/n1 +
  s2^2/n2) against z* = 3 sqrt((n1 + n2)/240); and Lahti A, Hyltoft Petersen P, Boyd JC, et al. Objective
  criteria for partitioning Gaussian-distributed reference values into subgroups. Clin Chem 2002;48:338-352 -
  the share of a subgroup outside a limit of the combined interval: over 4.1 % justifies separate intervals,
  3.2 % or less justifies combining them, between is marginal. The ratio of the standard deviations (over 1.5
  is often quoted as a further reason to partition) is shown, but it was found only in secondary sources, so no
  verdict rests on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from decidua.core.errors import InputError
from decidua.engines.research.frame import Column, Counted, counted
from decidua.engines.research.source import Source

OUTLIER_RULES = ("tukey", "tukey-raw", "dixon", "none")
MIN_ROBUST, MIN_NONPARAMETRIC = 20, 120
MAX_GROUPS = 12
BOOTSTRAP, SEED = 5000, 20261130
_VALUE, _PART = "__value", "__partition"


@dataclass(frozen=True, slots=True)
class Interval:
    partition: str  # "all", or the subgroup's label
    n: int  # values used, after outliers
    method: str | None  # "nonparametric", "robust", or None when too few
    lower: float | None
    upper: float | None
    lower_ci: tuple[float, float] | None
    upper_ci: tuple[float, float] | None
    outliers_low: int
    outliers_high: int
    mean: float | None
    sd: float | None
    note: str | None = None

    def to_record(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "n": self.n,
            "method": self.method,
            "lower": self.lower,
            "upper": self.upper,
            "lower_ci": None if self.lower_ci is None else list(self.lower_ci),
            "upper_ci": None if self.upper_ci is None else list(self.upper_ci),
            "outliers_removed": {"low": self.outliers_low, "high": self.outliers_high},
            "mean": self.mean,
            "sd": self.sd,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Partitioning:
    groups: tuple[str, str]
    z: float
    z_star: float
    sd_ratio: float
    harris_boyd: str  # "separate intervals" or "one interval"
    outside: dict[str, tuple[float, float]]  # group -> (% below, % above) the combined interval
    lahti: str  # "separate intervals", "one interval", "marginal"

    def to_record(self) -> dict[str, object]:
        return {
            "groups": list(self.groups),
            "harris_boyd": {"z": self.z, "z_star": self.z_star, "verdict": self.harris_boyd},
            "lahti": {
                "percent_outside": {g: {"below": lo, "above": hi} for g, (lo, hi) in self.outside.items()},
                "verdict": self.lahti,
            },
            "sd_ratio": self.sd_ratio,
        }


@dataclass(frozen=True, slots=True)
class ReferenceInterval:
    column: str
    where: str | None
    partition_by: str | None
    outlier_rule: str
    overall: Interval
    partitions: tuple[Interval, ...]
    partitioning: Partitioning | tuple[Partitioning, ...] | None  # two subgroups: one; more: every pair
    excluded: tuple[Counted, ...]
    histogram: dict[str, tuple[tuple[float, ...], tuple[int, ...]]]  # partition -> (values, counts) for plots

    def to_record(self) -> dict[str, object]:
        o = self.overall
        return {
            "column": self.column,
            "where": self.where,
            "n": o.n,
            "method": o.method,
            "lower": o.lower,
            "upper": o.upper,
            "lower_ci": None if o.lower_ci is None else list(o.lower_ci),
            "upper_ci": None if o.upper_ci is None else list(o.upper_ci),
            "outliers": {"rule": self.outlier_rule, "low": o.outliers_low, "high": o.outliers_high},
            "note": o.note,
            "partition_by": self.partition_by,
            "partitions": [p.to_record() for p in self.partitions],
            "partitioning": (
                None
                if self.partitioning is None
                else [p.to_record() for p in self.partitioning]
                if isinstance(self.partitioning, tuple)
                else self.partitioning.to_record()
            ),
            "excluded": [c.to_record() for c in self.excluded],
        }


# --- order statistics on a table of distinct values -----------------------------------------------------------


def order_statistic(values: np.ndarray, counts: np.ndarray, rank: int) -> float:
    """x(rank), 1-based, of the sample the table stands for."""
    cum = np.cumsum(counts)
    return float(values[int(np.searchsorted(cum, rank))])


def quantile(values: np.ndarray, counts: np.ndarray, h: float) -> float:
    """The value at (1-based, fractional) rank h by linear interpolation, h clamped to [1, n]."""
    n = int(counts.sum())
    h = min(max(h, 1.0), float(n))
    j = math.floor(h)
    low = order_statistic(values, counts, j)
    high = order_statistic(values, counts, min(j + 1, n))
    return low + (h - j) * (high - low)


def ci_ranks(n: int) -> tuple[int, int]:
    """Ranks (r1, r2) of the 90 % interval of the 2.5th percentile (see the module docstring).

    Examples
    --------
    >>> ci_ranks(120), ci_ranks(200), ci_ranks(500), ci_ranks(1000)
    ((1, 7), (2, 10), (7, 19), (17, 34))
    """
    from scipy.stats import binom

    b = binom(n, 0.025)
    r1 = int(b.ppf(0.05))
    if b.cdf(r1) <= 0.05:
        r1 += 1
    return max(r1, 1), int(b.ppf(0.95)) + 1


def boxcox_lambda(values: np.ndarray, counts: np.ndarray) -> float | None:
    """The Box-Cox lambda maximising the log-likelihood of the sample the table stands for (``None`` when a value
    is not positive)."""
    from scipy.optimize import minimize_scalar

    if values.size == 0 or values[0] <= 0:
        return None
    logs = np.log(values)
    total = float(counts.sum())
    sum_logs = float((counts * logs).sum())

    def negative_llf(lam: float) -> float:
        y = logs if abs(lam) < 1e-12 else (values**lam - 1) / lam
        mean = float((counts * y).sum()) / total
        var = float((counts * (y - mean) ** 2).sum()) / total
        if var <= 0:
            return math.inf
        return -((lam - 1) * sum_logs - total / 2 * math.log(var))

    return float(minimize_scalar(negative_llf, bounds=(-5, 5), method="bounded").x)


def _boxcox(values: np.ndarray, lam: float) -> np.ndarray:
    return np.log(values) if abs(lam) < 1e-12 else (values**lam - 1) / lam


def outliers(values: np.ndarray, counts: np.ndarray, rule: str) -> tuple[np.ndarray, str | None]:
    """Which distinct values are outliers by ``rule`` (a boolean mask over ``values``), and a note."""
    none = np.zeros(values.size, dtype=bool)
    if rule == "none" or values.size < 3:
        return none, None
    n = int(counts.sum())
    if rule in ("tukey", "tukey-raw"):
        scale, note = values, None
        if rule == "tukey":
            lam = boxcox_lambda(values, counts)
            if lam is None:
                note = "a value is not positive: Tukey's fences on the raw scale (no Box-Cox transform)"
            else:
                scale = _boxcox(values, lam)
                note = f"Tukey's fences on the Box-Cox scale (lambda {lam:.3f})"
        q1 = quantile(scale, counts, 1 + (n - 1) * 0.25)
        q3 = quantile(scale, counts, 1 + (n - 1) * 0.75)
        iqr = q3 - q1
        return (scale < q1 - 1.5 * iqr) | (scale > q3 + 1.5 * iqr), note
    if rule == "dixon":
        spread = float(values[-1] - values[0])
        if spread == 0:
            return none, None
        median = quantile(values, counts, (n + 1) / 2)
        gaps = np.diff(values) / spread > 1 / 3  # gap between values[i] and values[i + 1]
        mask = none.copy()
        low = [i for i in np.flatnonzero(gaps) if values[i + 1] <= median]
        high = [i for i in np.flatnonzero(gaps) if values[i] > median]
        if low:  # the innermost qualifying gap below the median: every value below it
            mask[: low[-1] + 1] = True
        if high:
            mask[high[0] + 1 :] = True
        return mask, None
    raise InputError(f"--outliers: got {rule!r}; allowed: {', '.join(OUTLIER_RULES)}")


# --- the two methods --------------------------------------------------------------------------------------------


def nonparametric(
    values: np.ndarray, counts: np.ndarray
) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    n = int(counts.sum())
    lower = quantile(values, counts, 0.025 * (n + 1))
    upper = quantile(values, counts, 0.975 * (n + 1))
    r1, r2 = ci_ranks(n)

    def x(rank: int) -> float:
        return order_statistic(values, counts, rank)

    return lower, upper, (x(r1), x(r2)), (x(n + 1 - r2), x(n + 1 - r1))


def _biweight_scale(x: np.ndarray, centre: float, spread: float, tuning: float, factor: float) -> float:
    u = (x - centre) / (tuning * spread)
    u = u[np.abs(u) < 1]
    num = factor * float((u**2 * (1 - u**2) ** 4).sum())
    den = float(((1 - u**2) * (1 - 5 * u**2)).sum())
    return tuning * spread * math.sqrt(num / (den * max(1.0, den - 1)))


def robust_limits(x: np.ndarray, tol: float = 1e-6) -> tuple[float, float]:
    """Horn & Pesce's robust 95 % limits of a sample (see the module docstring).

    Examples
    --------
    >>> x = np.array([8.9, 9.2, 9.4, 9.4, 9.5, 9.5, 9.5, 9.6, 9.6, 9.6, 9.6, 9.7, 9.7, 9.7, 9.7, 9.7, 9.8, 9.9,
    ...               9.9, 10.2])
    >>> [round(v, 5) for v in robust_limits(x)]  # CLSI EP28-A3c Appendix B, as mcradds reproduces it
    [9.04955, 10.1994]
    """
    from scipy.stats import t as student

    n = x.size
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median))) / 0.6745
    if mad == 0:
        raise InputError("more than half the values are equal: the robust method's scale is zero")
    location = median
    for _ in range(1000):
        u = (x - location) / (3.7 * mad)
        w = np.where(np.abs(u) > 1, 0.0, (1 - u**2) ** 2)
        new = float((x * w).sum() / w.sum())
        if abs(new - location) < tol:
            location = new
            break
        location = new
    s_wide = _biweight_scale(x, median, mad, 205.6, n)
    s_bi = _biweight_scale(x, median, mad, 3.7, n)
    s_t = _biweight_scale(x, location, s_bi, 3.7, 1)
    half = float(student.ppf(0.975, n - 1)) * math.sqrt(s_wide**2 + s_t**2)
    return location - half, location + half


def _inverse_boxcox(y: float, lam: float) -> float:
    if abs(lam) < 1e-12:
        return math.exp(y)
    base = lam * y + 1
    return base ** (1 / lam) if base > 0 else (0.0 if lam > 0 else math.inf)


def robust(
    values: np.ndarray, counts: np.ndarray
) -> tuple[tuple[float, float, tuple[float, float], tuple[float, float]], str]:
    """Horn-Pesce limits with bootstrap intervals, and how they were computed. The biweight interval assumes a
    symmetric distribution, so positive values are transformed by Box-Cox first (lambda by maximum likelihood)
    and the limits transformed back, as CLSI EP28-A3c and Horn et al. advise for skewed data; otherwise the raw
    values are used and that is said."""
    lam = boxcox_lambda(values, counts)
    scale = _boxcox(values, lam) if lam is not None else values
    x = np.repeat(scale, counts)

    def back(v: float) -> float:
        return _inverse_boxcox(v, lam) if lam is not None else v

    lower, upper = robust_limits(x)
    rng = np.random.default_rng(SEED)
    boots = []
    for _ in range(BOOTSTRAP):
        sample = rng.choice(x, x.size, replace=True)
        try:
            boots.append(robust_limits(sample))
        except InputError:
            continue  # a resample with zero spread has no robust limits
    b = np.array(boots)
    lo = (back(float(np.percentile(b[:, 0], 5))), back(float(np.percentile(b[:, 0], 95))))
    hi = (back(float(np.percentile(b[:, 1], 5))), back(float(np.percentile(b[:, 1], 95))))
    how = (
        f"on the Box-Cox scale (lambda {lam:.3f}), transformed back"
        if lam is not None
        else "on the raw scale (a value is not positive: no Box-Cox transform; the method assumes symmetry)"
    )
    return (back(lower), back(upper), lo, hi), how


def interval(label: str, values: np.ndarray, counts: np.ndarray, rule: str) -> tuple[Interval, np.ndarray, np.ndarray]:
    """The interval of one group from its table of distinct values (ascending) and counts, with the table of the
    values kept (outliers removed)."""
    out, outlier_note = outliers(values, counts, rule)
    median = quantile(values, counts, (int(counts.sum()) + 1) / 2) if values.size else 0.0
    out_low = int(counts[out & (values < median)].sum())
    out_high = int(counts[out & (values >= median)].sum())
    v, c = values[~out], counts[~out]
    n = int(c.sum())
    mean = float((v * c).sum() / n) if n else None
    sd = math.sqrt(float((c * (v - mean) ** 2).sum()) / (n - 1)) if n > 1 and mean is not None else None
    notes = [outlier_note] if outlier_note else []

    def result(
        method: str | None, limits: tuple[float, float, tuple[float, float], tuple[float, float]] | None
    ) -> Interval:
        lower, upper, lci, uci = limits if limits is not None else (None, None, None, None)
        return Interval(label, n, method, lower, upper, lci, uci, out_low, out_high, mean, sd, "; ".join(notes) or None)

    if n < MIN_ROBUST:
        notes.append(
            f"{n} values: a reference interval needs at least {MIN_ROBUST} (robust method) and "
            f"{MIN_NONPARAMETRIC} (nonparametric, CLSI EP28-A3c)"
        )
        return result(None, None), v, c
    if n >= MIN_NONPARAMETRIC:
        return result("nonparametric", nonparametric(v, c)), v, c
    try:
        limits, how = robust(v, c)
    except InputError as exc:
        notes.append(str(exc))
        return result(None, None), v, c
    notes.append(
        f"{n} values: fewer than {MIN_NONPARAMETRIC}, so the robust method {how} (limits' intervals by bootstrap)"
    )
    return result("robust", limits), v, c


def partitioning(
    a: Interval, b: Interval, tables: dict[str, tuple[np.ndarray, np.ndarray]], combined: Interval
) -> Partitioning | None:
    """Harris-Boyd and Lahti verdicts for two subgroups (``None`` when either lacks a mean and SD)."""
    if a.mean is None or b.mean is None or not a.sd or not b.sd:
        return None
    z = abs(a.mean - b.mean) / math.sqrt(a.sd**2 / a.n + b.sd**2 / b.n)
    z_star = 3 * math.sqrt((a.n + b.n) / 240)
    outside: dict[str, tuple[float, float]] = {}
    if combined.lower is not None and combined.upper is not None:
        for g in (a, b):
            v, c = tables[g.partition]
            total = int(c.sum())
            outside[g.partition] = (
                100 * float(c[v < combined.lower].sum()) / total,
                100 * float(c[v > combined.upper].sum()) / total,
            )
    shares = [x for pair in outside.values() for x in pair]
    if not shares:
        lahti = "not assessed (no combined interval)"
    elif max(shares) > 4.1:
        lahti = "separate intervals"
    elif max(shares) <= 3.2:
        lahti = "one interval"
    else:
        lahti = "marginal"
    return Partitioning(
        (a.partition, b.partition),
        z,
        z_star,
        max(a.sd, b.sd) / min(a.sd, b.sd),
        "separate intervals" if z > z_star else "one interval",
        outside,
        lahti,
    )


def _table(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    f = frame.sort(_VALUE)
    return f[_VALUE].to_numpy(), f["count"].to_numpy().astype(np.int64)


def reference_interval(
    source: Source,
    column: Column,
    *,
    where: pl.Expr | None = None,
    where_text: str | None = None,
    partition: Column | None = None,
    outlier_rule: str = "tukey",
) -> ReferenceInterval:
    """The reference interval of ``column`` over the rows ``where`` selects, overall and per ``partition`` (a
    yes/no column or condition: two subgroups; a column of categories: one subgroup each, at most 12) with the
    verdict on partitioning (for more than two subgroups, of every pair).

    Raises
    ------
    InputError
        An unknown outlier rule, a column that cannot be read, or no values at all.
    """
    if outlier_rule not in OUTLIER_RULES:
        raise InputError(f"--outliers: got {outlier_rule!r}; allowed: {', '.join(OUTLIER_RULES)}")
    selected = source.transform(lambda rows: rows.filter(where)) if where is not None else source
    excluded = counted(selected, [column, *([partition] if partition is not None else [])])
    cols = [column.value.alias(_VALUE)]
    if partition is not None:
        cols.append(partition.value.alias(_PART))
    keys = [_VALUE, _PART][: len(cols)]
    try:
        counts = selected.aggregate(lambda rows: rows.select(cols).drop_nulls().group_by(keys).len("count"), keys)
    except (pl.exceptions.PolarsError, InputError) as exc:
        raise InputError(f"cannot read {column.option} {column.spec!r}: {exc}") from None
    if counts.height == 0:
        read = excluded[0]
        raise InputError(
            f"{column.option} {column.spec!r}: no values in the rows selected ({read.missing:,} empty, "
            f"{read.invalid:,} not numbers)"
        )
    overall_table = _table(counts.group_by(_VALUE).agg(pl.col("count").sum()))
    overall, *kept = interval("all", *overall_table, outlier_rule)
    tables = {"all": overall_table}
    kept_tables = {"all": (kept[0], kept[1])}
    parts: list[Interval] = []
    verdict: Partitioning | tuple[Partitioning, ...] | None = None
    if partition is not None:
        if counts.schema[_PART] == pl.Boolean:
            levels: list[object] = [False, True]
            names = [f"{partition.spec}: {'yes' if flag else 'no'}" for flag in (False, True)]
        else:  # a column of categories: one subgroup each
            levels = sorted(counts.get_column(_PART).unique().to_list(), key=str)
            if len(levels) > MAX_GROUPS:
                raise InputError(
                    f"{partition.option} {partition.spec!r}: {len(levels)} distinct values; at most {MAX_GROUPS} "
                    'subgroups (give a condition, e.g. "age_years > 35")'
                )
            names = [f"{partition.spec}: {level}" for level in levels]
        for flag, label in zip(levels, names, strict=True):
            sub = counts.filter(pl.col(_PART) == flag)
            if sub.height == 0:
                parts.append(Interval(label, 0, None, None, None, None, None, 0, 0, None, None, "no values"))
                continue
            tables[label] = _table(sub.select(_VALUE, "count"))
            part, v, c = interval(label, *tables[label], outlier_rule)
            parts.append(part)
            kept_tables[label] = (v, c)
        pairs = [
            found
            for i, a in enumerate(parts)
            for b in parts[i + 1 :]
            if (found := partitioning(a, b, kept_tables, overall)) is not None
        ]
        verdict = pairs[0] if len(parts) == 2 and pairs else tuple(pairs) if len(parts) > 2 else None
    histogram = {k: (tuple(float(x) for x in v), tuple(int(x) for x in c)) for k, (v, c) in tables.items()}
    return ReferenceInterval(
        column.spec, where_text, None if partition is None else partition.spec, outlier_rule, overall,
        tuple(parts), verdict, excluded, histogram,
    )  # fmt: skip


__all__ = [
    "OUTLIER_RULES",
    "Interval",
    "Partitioning",
    "ReferenceInterval",
    "boxcox_lambda",
    "ci_ranks",
    "interval",
    "nonparametric",
    "outliers",
    "reference_interval",
    "robust_limits",
]
