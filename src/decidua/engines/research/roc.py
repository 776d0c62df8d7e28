"""How well a marker's cut-off separates an outcome: ROC curve, AUC with DeLong's interval, and sensitivity,
specificity, PPV and NPV at a cut-off and at the Youden optimum, from counts aggregated by Polars.

A test is positive when the marker is *above* the cut-off (as the knowledge base's rules read "NK above 24 %").

* **AUC** is the Mann-Whitney probability that a row with the outcome has a higher marker than one without, ties
  counting one half. **DeLong's variance** (DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two
  or more correlated receiver operating characteristic curves: a nonparametric approach. Biometrics
  1988;44:837-845): each row with the outcome has the placement value V10 = P(a row without it scores lower, ties
  one half), each row without it V01 = P(a row with it scores higher); Var(AUC) = S10/m + S01/n with S10, S01 the
  sample variances of the placement values over the m and n rows. Rows with equal marker values share their
  placement value, so both are computed on the table of distinct values with their counts (as Sun X, Xu W. Fast
  implementation of DeLong's algorithm. IEEE Signal Process Lett 2014;21:1389-1393, do with midranks). The 95 %
  interval is AUC ± 1.96 SE on the AUC scale, cut to [0, 1] (as pROC does).
* **Youden's J** = sensitivity + specificity - 1 (Youden WJ. Index for rating diagnostic tests. Cancer
  1950;3:32-35), maximised over the cut-offs between distinct marker values; the cut-off reported is the highest
  value read as negative.
* Proportions carry Wilson score intervals (Wilson EB. Probable inference, the law of succession, and statistical
  inference. J Am Stat Assoc 1927;22:209-212) and exact Clopper-Pearson ones, both from ``scipy.stats.binomtest``
  (the same figures as ``statsmodels`` ``proportion_confint``, without importing statsmodels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from decidua.core.errors import InputError
from decidua.engines.research.frame import Column, Counted, counted
from decidua.engines.research.source import Source

_MARKER, _OUTCOME = "__marker", "__outcome"


@dataclass(frozen=True, slots=True)
class Proportion:
    k: int
    n: int
    value: float | None
    wilson: tuple[float | None, float | None]
    exact: tuple[float | None, float | None]

    def to_record(self) -> dict[str, object]:
        return {
            "k": self.k,
            "n": self.n,
            "value": self.value,
            "wilson_ci": list(self.wilson),
            "exact_ci": list(self.exact),
        }


def proportion(k: int, n: int) -> Proportion:
    """k of n with its Wilson and Clopper-Pearson 95 % intervals; ``None`` figures when n is 0."""
    from scipy.stats import binomtest

    if n == 0:
        return Proportion(k, n, None, (None, None), (None, None))
    test = binomtest(k, n)
    w = test.proportion_ci(0.95, method="wilson")
    e = test.proportion_ci(0.95, method="exact")
    return Proportion(k, n, k / n, (float(w.low), float(w.high)), (float(e.low), float(e.high)))


@dataclass(frozen=True, slots=True)
class AtCutoff:
    cutoff: str  # the rule as read: "> 24", or "> 24 (> 18 if age_years > 35)"
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion

    @property
    def youden(self) -> float | None:
        s, p = self.sensitivity.value, self.specificity.value
        return None if s is None or p is None else s + p - 1

    def to_record(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff,
            "table": {
                "tp": self.true_positive,
                "fp": self.false_positive,
                "fn": self.false_negative,
                "tn": self.true_negative,
            },
            "sensitivity": self.sensitivity.to_record(),
            "specificity": self.specificity.to_record(),
            "ppv": self.ppv.to_record(),
            "npv": self.npv.to_record(),
            "youden_j": self.youden,
        }


def at_cutoff(cutoff: str, tp: int, fp: int, fn: int, tn: int) -> AtCutoff:
    return AtCutoff(
        cutoff,
        tp,
        fp,
        fn,
        tn,
        proportion(tp, tp + fn),
        proportion(tn, tn + fp),
        proportion(tp, tp + fp),
        proportion(tn, tn + fn),
    )


@dataclass(frozen=True, slots=True)
class Cutoff:
    """A cut-off: how it reads (``> 24 (> 18 if age_years > 35)``), the positive-test expression from the marker
    and the other columns it reads (by their spec), and those columns."""

    text: str
    positive: Callable[[pl.Expr, Mapping[str, pl.Expr]], pl.Expr]
    reads: tuple[Column, ...] = ()


def fixed_cutoff(value: float) -> Cutoff:
    return Cutoff(f"> {value:g}", lambda marker, _: marker > value)


@dataclass(frozen=True, slots=True)
class Roc:
    marker: str
    outcome: str
    positives: int  # rows with the outcome
    negatives: int
    auc: float
    auc_ci: tuple[float | None, float | None]
    auc_se: float
    curve: tuple[tuple[float, float, float], ...]  # (cut-off, 1 - specificity, sensitivity), from the highest cut-off
    at: AtCutoff | None
    youden: AtCutoff
    youden_cutoff: float
    excluded: tuple[Counted, ...]
    notes: tuple[str, ...] = ()

    def to_record(self) -> dict[str, object]:
        return {
            "marker": self.marker,
            "outcome": self.outcome,
            "n": self.positives + self.negatives,
            "with_outcome": self.positives,
            "without_outcome": self.negatives,
            "auc": self.auc,
            "auc_ci": list(self.auc_ci),
            "auc_ci_method": "DeLong",
            "at_cutoff": None if self.at is None else self.at.to_record(),
            "youden": self.youden.to_record() | {"cutoff_value": self.youden_cutoff},
            "excluded": [c.to_record() for c in self.excluded],
            "notes": list(self.notes),
        }


def delong(values: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(AUC, its DeLong standard error) from distinct marker values (ascending) with the counts of rows with
    (``pos``) and without (``neg``) the outcome at each.

    Examples
    --------
    >>> auc, se = delong(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]), np.array([2, 1, 0]))
    >>> round(auc, 4)
    0.9444
    """
    m, n = int(pos.sum()), int(neg.sum())
    neg_below = np.cumsum(neg) - neg  # rows without the outcome strictly below each value
    pos_above = m - np.cumsum(pos)  # rows with the outcome strictly above
    v10 = (neg_below + 0.5 * neg) / n  # placement of a row with the outcome at this value
    v01 = (pos_above + 0.5 * pos) / m
    auc = float((pos * v10).sum() / m)
    s10 = float((pos * (v10 - auc) ** 2).sum() / (m - 1)) if m > 1 else 0.0
    s01 = float((neg * (v01 - auc) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    return auc, math.sqrt(s10 / m + s01 / n)


def roc(
    source: Source,
    marker: Column,
    outcome: Column,
    cutoff: Cutoff | None = None,
) -> Roc:
    """ROC analysis of ``marker`` against ``outcome``, and the table at ``cutoff``; rows where a column the
    cut-off also reads (e.g. age, for an age-dependent threshold) is missing are left out of that table only.

    Raises
    ------
    InputError
        When one outcome class is empty (no ROC curve exists) or a column cannot be read.
    """
    excluded = counted(source, [marker, outcome])

    def by_value(rows: pl.LazyFrame) -> pl.LazyFrame:
        return (
            rows.select(marker.value.alias(_MARKER), outcome.value.alias(_OUTCOME))
            .drop_nulls()
            .group_by(_MARKER)
            .agg(
                pl.col(_OUTCOME).cast(pl.Int64).sum().alias("pos"),
                (~pl.col(_OUTCOME)).cast(pl.Int64).sum().alias("neg"),
            )
        )

    try:
        counts = source.aggregate(by_value, [_MARKER]).sort(_MARKER)
    except (pl.exceptions.PolarsError, InputError) as exc:
        raise InputError(f"cannot read {marker.option} / {outcome.option}: {exc}") from None
    if counts.height == 0:
        mk, oc = excluded
        raise InputError(
            f"no row has both {marker.option} and {outcome.option} read ({mk.spec}: {mk.missing:,} missing, "
            f"{mk.invalid:,} unreadable; {oc.spec}: {oc.missing:,} missing, {oc.invalid:,} unreadable)"
        )
    values = counts[_MARKER].to_numpy()
    pos, neg = counts["pos"].to_numpy(), counts["neg"].to_numpy()
    m, n = int(pos.sum()), int(neg.sum())
    if m == 0 or n == 0:
        raise InputError(
            f"{outcome.option} {outcome.spec!r}: {'no' if m == 0 else 'every'} row with a {marker.spec} value has the "
            "outcome; a ROC analysis needs both classes"
        )
    auc, se = delong(values, pos, neg)
    # cut-offs from the highest (nothing positive) down: positive = marker above the cut-off
    tp = np.concatenate([[0], np.cumsum(pos[::-1])])  # above each of: +inf, v_k, v_{k-1}, ...
    fp = np.concatenate([[0], np.cumsum(neg[::-1])])
    curve = tuple(
        (float(t), float(f / n), float(s / m))
        for t, f, s in zip(np.concatenate([[math.inf], values[::-1]]), fp, tp, strict=True)
    )
    # Youden over thresholds "x > v" for each distinct v (and "x > -inf": everything positive)
    tp_t = m - np.cumsum(pos)  # positives above v_i
    fp_t = n - np.cumsum(neg)
    j = tp_t / m + (1 - fp_t / n) - 1
    best = int(np.argmax(j))
    youden = at_cutoff(
        f"> {values[best]:g}", int(tp_t[best]), int(fp_t[best]), int(m - tp_t[best]), int(n - fp_t[best])
    )
    at = None
    notes: list[str] = []
    if cutoff is not None:
        extra = cutoff.reads
        both = marker.value.is_not_null() & outcome.value.is_not_null()
        extra_counts = counted(source.transform(lambda rows: rows.filter(both)), extra) if extra else ()
        cols = [
            marker.value.alias(_MARKER),
            outcome.value.alias(_OUTCOME),
            *(c.value.alias(c.spec) for c in extra),  # under their own names: the cut-off reads them so
        ]
        test = cutoff.positive(pl.col(_MARKER), {c.spec: pl.col(c.spec) for c in extra})

        def table(rows: pl.LazyFrame) -> pl.LazyFrame:
            t = rows.select(cols).drop_nulls().select(test.alias("test"), pl.col(_OUTCOME))
            return t.select(
                (pl.col("test") & pl.col(_OUTCOME)).sum().alias("tp"),
                (pl.col("test") & ~pl.col(_OUTCOME)).sum().alias("fp"),
                (~pl.col("test") & pl.col(_OUTCOME)).sum().alias("fn"),
                (~pl.col("test") & ~pl.col(_OUTCOME)).sum().alias("tn"),
            )

        row = source.aggregate(table, []).row(0, named=True)
        at = at_cutoff(cutoff.text, int(row["tp"]), int(row["fp"]), int(row["fn"]), int(row["tn"]))
        for c in extra_counts:
            if c.missing or c.invalid:
                notes.append(
                    f"{c.spec}: {c.missing} missing and {c.invalid} unreadable rows left out of the cut-off's table"
                )
    auc_ci: tuple[float | None, float | None]
    if m < 2 or n < 2:
        auc_ci = (None, None)
        notes.append(
            f"{min(m, n)} row(s) in one outcome class: DeLong's variance needs at least two in each, so no interval"
        )
    else:
        auc_ci = (max(0.0, auc - 1.959964 * se), min(1.0, auc + 1.959964 * se))
    notes.append(
        "The Youden optimum is chosen on these rows, so its performance here is optimistic; PPV and NPV depend on "
        f"this cohort's share with the outcome ({m / (m + n):.1%})"
    )
    return Roc(
        marker.spec,
        outcome.spec,
        m,
        n,
        auc,
        auc_ci,
        se,
        curve,
        at,
        youden,
        float(values[best]),
        excluded,
        tuple(notes),
    )


__all__ = ["AtCutoff", "Cutoff", "Proportion", "Roc", "at_cutoff", "delong", "fixed_cutoff", "proportion", "roc"]
