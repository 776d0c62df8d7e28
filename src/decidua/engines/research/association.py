"""Exposure-outcome association: the 2x2 table, odds ratios with their intervals, Fisher's exact test, and a
logistic regression adjusted for other columns, all from counts aggregated by Polars.

Table layout, as in every epidemiology text: rows exposed / not exposed, columns outcome / no outcome,
``[[a, b], [c, d]]``. Figures, each by the library made for it:

* sample odds ratio ``ad/bc`` with Woolf's interval (normal approximation on the log scale; Woolf B. On estimating
  the relation between blood group and disease. Ann Hum Genet 1955;19:251-253) - ``scipy.stats.contingency.
  odds_ratio(kind="sample")``; undefined with a zero cell, and then said, not printed as a number;
* the conditional maximum-likelihood odds ratio with its exact interval (from the noncentral hypergeometric
  distribution, defined with zero cells) - ``odds_ratio(kind="conditional")``; the interval's cost grows with the
  table's smallest margin, so above 1,000 it is not computed and that is said (Woolf's is then as good);
* Fisher's exact test, two-sided - ``scipy.stats.fisher_exact``;
* with ``adjust``: logistic regression, over the rows where every adjustment column is read too, of the outcome
  on the exposure and the adjustment columns
  (``statsmodels`` GLM, binomial family, fitted to the counts of each distinct covariate pattern, which gives the
  same estimates as fitting row by row): the adjusted odds ratio ``exp(beta)`` with its Wald 95 % interval and p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from decidua.core.errors import InputError
from decidua.engines.research.frame import Column, Counted, counted
from decidua.engines.research.source import Source

_OUTCOME, _EXPOSURE = "__outcome", "__exposure"
EXACT_CI_MAX_MARGIN = 1000


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Adjusted:
    odds_ratio: float | None
    ci: tuple[float | None, float | None]
    p: float | None
    covariates: tuple[str, ...]
    n: int
    note: str | None = None

    def to_record(self) -> dict[str, object]:
        return {
            "odds_ratio": self.odds_ratio,
            "ci": list(self.ci),
            "p": self.p,
            "covariates": list(self.covariates),
            "n": self.n,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Association:
    exposure: str
    outcome: str
    table: tuple[tuple[int, int], tuple[int, int]]  # [[a, b], [c, d]]
    odds_ratio: float | None  # sample OR ad/bc; None when a cell is zero
    ci: tuple[float | None, float | None]  # Woolf
    conditional_odds_ratio: float | None  # conditional MLE (inf/0 as None with a note)
    exact_ci: tuple[float | None, float | None]
    p_fisher: float
    adjusted: Adjusted | None
    excluded: tuple[Counted, ...]
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        (a, b), (c, d) = self.table
        return a + b + c + d

    def to_record(self) -> dict[str, object]:
        return {
            "exposure": self.exposure,
            "outcome": self.outcome,
            "n": self.n,
            "table": [list(row) for row in self.table],
            "odds_ratio": self.odds_ratio,
            "ci": list(self.ci),
            "ci_method": "Woolf (log odds ratio, normal approximation)",
            "conditional_odds_ratio": self.conditional_odds_ratio,
            "exact_ci": list(self.exact_ci),
            "p_fisher": self.p_fisher,
            "adjusted": None if self.adjusted is None else self.adjusted.to_record(),
            "excluded": [c.to_record() for c in self.excluded],
            "notes": list(self.notes),
        }


def two_by_two(a: int, b: int, c: int, d: int, exposure: str = "exposure", outcome: str = "outcome") -> Association:
    """The unadjusted figures of one table (no adjustment, nothing excluded).

    Raises
    ------
    InputError
        When the table is degenerate beyond what any figure can say: no one exposed, no one unexposed, or one
        outcome class only (the message says which).

    Examples
    --------
    >>> r = two_by_two(10, 20, 5, 40)
    >>> r.odds_ratio, round(r.p_fisher, 4)
    (4.0, 0.0365)
    """
    from scipy.stats import fisher_exact
    from scipy.stats.contingency import odds_ratio

    if a + b == 0 or c + d == 0:
        raise InputError(f"{exposure}: every row with an outcome is {'un' if a + b == 0 else ''}exposed; no comparison")
    if a + c == 0 or b + d == 0:
        which = "no" if a + c == 0 else "every"
        raise InputError(f"{outcome}: {which} row has the outcome; an association needs both outcome classes")
    table = np.array([[a, b], [c, d]], dtype=np.int64)
    notes: list[str] = []
    if 0 in (a, b, c, d):
        sample: float | None = None
        woolf: tuple[float | None, float | None] = (None, None)
        notes.append(
            "a cell is zero: the sample odds ratio and Woolf's interval are not defined; see the exact interval"
        )
    else:
        result = odds_ratio(table, kind="sample")
        ci = result.confidence_interval(0.95)
        sample, woolf = float(result.statistic), (float(ci.low), float(ci.high))
    conditional = odds_ratio(table, kind="conditional")
    stat = float(conditional.statistic)
    if not math.isfinite(stat) or stat == 0:
        notes.append(f"the conditional odds ratio is {'infinite' if stat else 'zero'} (a zero cell); see its interval")
    margin = min(a + b, c + d, a + c, b + d)
    if margin <= EXACT_CI_MAX_MARGIN or 0 in (a, b, c, d):  # with a zero cell it is the only interval there is
        ci = conditional.confidence_interval(0.95)
        exact: tuple[float | None, float | None] = (_finite(float(ci.low)), _finite(float(ci.high)))
    else:  # its cost grows with the smallest margin (scipy sums the noncentral hypergeometric term by term)
        exact = (None, None)
        notes.append(
            f"exact interval not computed: the smallest margin is {margin:,} (over {EXACT_CI_MAX_MARGIN:,}); "
            "at this size it and Woolf's interval agree closely"
        )
    p = float(fisher_exact(table).pvalue)
    return Association(
        exposure,
        outcome,
        ((a, b), (c, d)),
        sample,
        woolf,
        _finite(stat) if stat != 0 else 0.0,
        exact,
        p,
        None,
        (),
        tuple(notes),
    )


def _exp(x: float) -> float | None:
    """exp(x) when it is a finite number (a quasi-separated model's bound can overflow)."""
    return math.exp(x) if math.isfinite(x) and x < 700 else None


def _adjusted(patterns: pl.DataFrame, covariates: Sequence[str]) -> Adjusted:
    """Logistic regression on covariate patterns: columns exposure, covariates, ``events``, ``trials``."""
    import warnings

    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    n = int(patterns["trials"].sum())

    def not_estimable(why: str) -> Adjusted:
        return Adjusted(
            None, (None, None), None, tuple(covariates), n, f"the adjusted model cannot be estimated: {why}"
        )

    if n == 0:
        return not_estimable("no row has the exposure, the outcome and every covariate read")
    for c in covariates:
        if patterns[c].n_unique() < 2:
            return not_estimable(f"{c} takes one value in the rows with every covariate")
    exposed = patterns.group_by(_EXPOSURE).agg(pl.col("events").sum(), pl.col("trials").sum())
    for row in exposed.iter_rows(named=True):
        if row["events"] in (0, row["trials"]):
            return not_estimable("a zero cell among these rows (the odds ratio is unbounded); see the exact interval")
    if exposed.height < 2:
        return not_estimable("these rows are all exposed or all unexposed")
    x = patterns.select(pl.col(_EXPOSURE).cast(pl.Float64), *(pl.col(c).cast(pl.Float64) for c in covariates))
    design = sm.add_constant(x.to_numpy(), has_constant="add")
    endog = np.column_stack([patterns["events"].to_numpy(), (patterns["trials"] - patterns["events"]).to_numpy()])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = sm.GLM(endog, design, family=sm.families.Binomial()).fit()
    except (PerfectSeparationError, PerfectSeparationWarning, np.linalg.LinAlgError, ValueError) as exc:
        return not_estimable(f"{type(exc).__name__}: {exc}")
    beta, (lo, hi) = float(fit.params[1]), fit.conf_int()[1]
    p = float(fit.pvalues[1])
    if not all(map(math.isfinite, (beta, float(lo), float(hi), p))):
        return not_estimable("the fit did not converge to finite estimates")
    return Adjusted(_exp(beta), (_exp(float(lo)), _exp(float(hi))), p, tuple(covariates), n)


def associate(source: Source, exposure: Column, outcome: Column, adjust: Sequence[Column] = ()) -> Association:
    """The association of ``exposure`` with ``outcome`` over the rows where both (and every adjustment) are read.

    Raises
    ------
    InputError
        For a degenerate table (see :func:`two_by_two`) or a column that cannot be read.
    """
    roles = [exposure, outcome, *adjust]
    excluded = counted(source, roles)
    names = [f"__adjust{i}" for i in range(len(adjust))]

    def by_pattern(rows: pl.LazyFrame) -> pl.LazyFrame:
        usable = rows.select(
            exposure.value.alias(_EXPOSURE),
            outcome.value.alias(_OUTCOME),
            *(c.value.alias(n) for c, n in zip(adjust, names, strict=True)),
        ).drop_nulls([_EXPOSURE, _OUTCOME])  # the table: every row with both; the model: rows with the covariates
        return usable.group_by(_EXPOSURE, *names).agg(
            pl.col(_OUTCOME).cast(pl.Int64).sum().alias("events"), pl.len().alias("trials")
        )

    try:
        # sorted: the same patterns in the same order whichever engine added them up (the fit is then identical)
        patterns = source.aggregate(by_pattern, [_EXPOSURE, *names]).sort([_EXPOSURE, *names], nulls_last=True)
    except (pl.exceptions.PolarsError, InputError) as exc:
        raise InputError(f"cannot read {exposure.option} / {outcome.option}: {exc}") from None
    if patterns.height == 0:
        e, o = excluded[0], excluded[1]
        raise InputError(
            f"no row has both {exposure.option} and {outcome.option} read ({e.spec}: {e.missing:,} missing, "
            f"{e.invalid:,} unreadable; {o.spec}: {o.missing:,} missing, {o.invalid:,} unreadable)"
        )
    cells = patterns.group_by(_EXPOSURE).agg(pl.col("events").sum(), pl.col("trials").sum())
    by = {row[_EXPOSURE]: (int(row["events"]), int(row["trials"])) for row in cells.iter_rows(named=True)}
    (a, n1), (c, n0) = by.get(True, (0, 0)), by.get(False, (0, 0))
    result = two_by_two(a, n1 - a, c, n0 - c, exposure.spec, outcome.spec)
    adjusted = None
    if adjust:
        complete = patterns.drop_nulls(names).rename(dict(zip(names, [a.spec for a in adjust], strict=True)))
        adjusted = _adjusted(complete, [a.spec for a in adjust])
    return Association(
        result.exposure,
        result.outcome,
        result.table,
        result.odds_ratio,
        result.ci,
        result.conditional_odds_ratio,
        result.exact_ci,
        result.p_fisher,
        adjusted,
        excluded,
        result.notes,
    )


__all__ = ["Adjusted", "Association", "associate", "two_by_two"]
