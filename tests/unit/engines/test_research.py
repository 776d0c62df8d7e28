"""Cohort statistics (decidua.engines.research) against published worked examples and independent computations."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st

from decidua.core.errors import InputError
from decidua.engines.research.association import associate, two_by_two
from decidua.engines.research.frame import binary, counted, numeric, numeric_columns
from decidua.engines.research.reference import (
    boxcox_lambda,
    ci_ranks,
    interval,
    outliers,
    quantile,
    reference_interval,
    robust_limits,
)
from decidua.engines.research.roc import delong, fixed_cutoff, proportion, roc
from decidua.engines.research.scan import _bh, power_two_proportions
from decidua.engines.research.source import LocalSource


def table(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    v, c = np.unique(np.asarray(values, dtype=float), return_counts=True)
    return v, c.astype(np.int64)


# --- reference intervals -----------------------------------------------------------------------------------------


# CLSI EP28-A3c Table 8 rows as the R packages referenceIntervals and mcradds ship them
@pytest.mark.parametrize(
    ("n", "ranks"),
    [(119, (1, 7)), (120, (1, 7)), (132, (1, 7)), (133, (1, 8)), (160, (1, 8)), (161, (1, 9)), (188, (2, 9)),
     (190, (2, 10)), (218, (2, 10)), (219, (2, 11)), (249, (2, 12)), (250, (3, 12)), (500, (7, 19)),
     (1000, (17, 34))],
)  # fmt: skip
def test_confidence_ranks_reproduce_the_clsi_table(n: int, ranks: tuple[int, int]) -> None:
    assert ci_ranks(n) == ranks


def test_robust_limits_of_the_clsi_appendix_b_example() -> None:
    x = np.array([8.9, 9.2, *[9.4] * 2, *[9.5] * 3, *[9.6] * 4, *[9.7] * 5, 9.8, *[9.9] * 2, 10.2])
    lower, upper = robust_limits(x)
    assert (lower, upper) == (pytest.approx(9.049545, abs=1e-6), pytest.approx(10.199396, abs=1e-6))


def test_outlier_rules_on_mcradds_test_vectors() -> None:
    v, c = table([13.6, 44.4, 45.9, 11.9, 41.9, 53.3, 44.7, 95.2, 44.1, 50.7, 45.2, 60.1, 89.1])
    mask, _ = outliers(v, c, "dixon")
    assert sorted(v[mask]) == [11.9, 13.6, 89.1, 95.2]
    v, c = table([13.6, 44.4, 45.9, 14.9, 41.9, 53.3, 44.7, 95.2, 44.1, 50.7, 45.2, 60.1, 89.1])
    mask, _ = outliers(v, c, "tukey-raw")
    assert sorted(v[mask]) == [13.6, 14.9, 89.1, 95.2]
    mask, _ = outliers(v, c, "none")
    assert not mask.any()


def test_boxcox_lambda_agrees_with_scipy() -> None:
    from scipy import stats

    x = np.round(np.random.default_rng(1).lognormal(2.6, 0.35, 3000), 1)
    assert boxcox_lambda(*table(list(x))) == pytest.approx(stats.boxcox(x)[1], abs=1e-4)
    assert boxcox_lambda(*table([0.0, 1.0, 2.0])) is None  # a value that is not positive


@given(st.lists(st.integers(0, 60), min_size=1, max_size=300), st.floats(0.0, 1.0))
def test_quantiles_from_counts_equal_numpy_on_the_expanded_sample(values: list[int], p: float) -> None:
    v, c = table([float(x) for x in values])
    x = np.sort(np.asarray(values, dtype=float))
    # R type 6 (p(n+1), linear) is numpy's "weibull"; type 7 is numpy's default "linear"
    n = len(values)
    assert quantile(v, c, p * (n + 1)) == pytest.approx(
        np.quantile(x, min(max(p, 1 / (n + 1)), n / (n + 1)), method="weibull")
    )
    assert quantile(v, c, 1 + (n - 1) * p) == pytest.approx(np.quantile(x, p))


def test_nonparametric_interval_and_its_confidence_limits() -> None:
    x = np.arange(1, 241, dtype=float)  # n = 240: ranks (2, 11)
    iv, _, _ = interval("all", *table(list(x)), "none")
    assert iv.method == "nonparametric"
    assert (iv.lower, iv.upper) == (pytest.approx(0.025 * 241), pytest.approx(0.975 * 241))
    assert iv.lower_ci == (2.0, 11.0)
    assert iv.upper_ci == (230.0, 239.0)


def test_small_groups_use_the_robust_method_or_none() -> None:
    rng = np.random.default_rng(4)
    iv, _, _ = interval("small", *table(list(np.round(rng.normal(10, 1, 60), 2))), "none")
    assert iv.method == "robust"
    assert iv.lower_ci is not None
    assert iv.lower_ci[0] <= iv.lower <= iv.lower_ci[1]
    iv, _, _ = interval("tiny", *table([1.0, 2.0, 3.0]), "none")
    assert (iv.method, iv.lower) == (None, None)
    assert "at least 20" in (iv.note or "")


def test_partitioning_verdicts() -> None:
    rng = np.random.default_rng(7)
    same = pl.DataFrame({"x": np.round(rng.normal(15, 4, 4000), 1), "old": rng.random(4000) < 0.5}).lazy()
    r = reference_interval(
        LocalSource(same), numeric("--column", "x", same), partition=binary("--partition", "old", same)
    )
    assert r.partitioning is not None
    assert (r.partitioning.harris_boyd, r.partitioning.lahti) == ("one interval", "one interval")
    old = rng.random(4000) < 0.5
    shifted = pl.DataFrame({"x": np.round(rng.normal(15, 4, 4000) + 6 * old, 1), "old": old}).lazy()
    r = reference_interval(
        LocalSource(shifted), numeric("--column", "x", shifted), partition=binary("--partition", "old", shifted)
    )
    assert r.partitioning is not None
    assert (r.partitioning.harris_boyd, r.partitioning.lahti) == ("separate intervals", "separate intervals")
    assert r.partitioning.z > r.partitioning.z_star


def test_missing_and_unreadable_cells_are_counted_not_imputed() -> None:
    frame = pl.DataFrame({"x": ["1.5", "", None, "abc", "2.5"], "y": ["yes", "no", "maybe", None, "1"]}).lazy()
    x, y = numeric("--column", "x", frame), binary("--outcome", "y", frame)
    [cx, cy] = counted(LocalSource(frame), [x, y])
    assert (cx.missing, cx.invalid, cy.missing, cy.invalid) == (2, 1, 1, 1)
    assert numeric_columns(LocalSource(frame), ["x"]).schema().collect_schema()["x"] == pl.String  # "abc" keeps it text


def test_unknown_columns_and_bad_expressions_name_the_option() -> None:
    frame = pl.DataFrame({"x": [1.0]}).lazy()
    with pytest.raises(InputError, match=r"--where: 'age > 35' names 'age', not a column"):
        binary("--where", "age > 35", frame)
    with pytest.raises(InputError, match="--outcome"):
        binary("--outcome", "x >> 2", frame)


# --- ROC ---------------------------------------------------------------------------------------------------------


def _brute_force(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return float(psi.mean()), math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


@given(st.lists(st.integers(0, 30), min_size=2, max_size=60), st.lists(st.integers(0, 30), min_size=2, max_size=60))
def test_delong_on_counts_equals_the_pairwise_definition(pos: list[int], neg: list[int]) -> None:
    p, n = np.array(pos, dtype=float), np.array(neg, dtype=float)
    values = np.unique(np.concatenate([p, n]))
    pc = np.array([(p == v).sum() for v in values])
    nc = np.array([(n == v).sum() for v in values])
    auc, se = delong(values, pc, nc)
    want_auc, want_se = _brute_force(p, n)
    assert auc == pytest.approx(want_auc)
    assert se == pytest.approx(want_se, abs=1e-12)


def test_delong_standard_error_agrees_with_a_bootstrap() -> None:
    rng = np.random.default_rng(11)
    pos, neg = np.round(rng.normal(1, 1, 300), 1), np.round(rng.normal(0, 1, 500), 1)
    values = np.unique(np.concatenate([pos, neg]))
    counts = np.array([(pos == v).sum() for v in values]), np.array([(neg == v).sum() for v in values])
    _auc, se = delong(values, *counts)
    boots = [_brute_force(rng.choice(pos, pos.size), rng.choice(neg, neg.size))[0] for _ in range(400)]
    assert se == pytest.approx(float(np.std(boots, ddof=1)), rel=0.15)


def test_roc_at_a_cutoff_and_youden() -> None:
    frame = pl.DataFrame({"m": [1, 2, 3, 4, 5, 6, 7, 8], "y": [0, 0, 0, 1, 0, 1, 1, 1]}).lazy()
    r = roc(LocalSource(frame), numeric("--marker", "m", frame), binary("--outcome", "y", frame), fixed_cutoff(4))
    assert r.at is not None
    assert (r.at.true_positive, r.at.false_positive, r.at.false_negative, r.at.true_negative) == (3, 1, 1, 3)
    assert r.auc == pytest.approx(15 / 16)
    assert (r.youden_cutoff, r.youden.youden) == (3.0, pytest.approx(0.75))
    ones = pl.DataFrame({"m": [1, 2], "y": [1, 1]}).lazy()
    marker, outcome = numeric("--marker", "m", ones), binary("--outcome", "y", ones)
    with pytest.raises(InputError, match="needs both classes"):
        roc(LocalSource(ones), marker, outcome)


def test_wilson_and_exact_intervals() -> None:
    p = proportion(7, 20)
    assert p.wilson == (pytest.approx(0.181192, abs=1e-6), pytest.approx(0.567146, abs=1e-6))
    assert p.exact == (pytest.approx(0.153909, abs=1e-6), pytest.approx(0.592189, abs=1e-6))
    assert proportion(0, 0).value is None


# --- associations ------------------------------------------------------------------------------------------------


def test_odds_ratios_match_scipy_documentation_and_orci() -> None:
    r = two_by_two(7, 15, 58, 472)  # scipy.stats.contingency.odds_ratio's documented example
    assert r.conditional_odds_ratio == pytest.approx(3.7836687705553493)
    assert r.exact_ci == (pytest.approx(1.2514829132266785), pytest.approx(10.363493716701269))
    assert r.p_fisher == pytest.approx(0.0092087, abs=1e-6)
    w = two_by_two(2, 12, 1, 10)  # ORCI::Woolf.CI(2, 14, 1, 11)
    assert w.ci == (pytest.approx(0.1310604, abs=1e-7), pytest.approx(21.1946394, abs=1e-6))


def test_zero_cells_and_one_class_tables() -> None:
    r = two_by_two(10, 20, 0, 40)
    assert (r.odds_ratio, r.ci) == (None, (None, None))
    assert r.conditional_odds_ratio is None
    assert r.exact_ci[1] is None
    assert any("zero" in n for n in r.notes)
    with pytest.raises(InputError, match="both outcome classes"):
        two_by_two(10, 0, 5, 0)
    with pytest.raises(InputError, match="no comparison"):
        two_by_two(0, 0, 5, 5)


def test_adjusted_odds_ratio_equals_row_level_logistic_regression() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    age = rng.integers(25, 45, n)
    exposed = rng.random(n) < 0.4
    y = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.6 * exposed + 0.04 * (age - 35))))
    frame = pl.DataFrame({"y": np.where(y, "yes", "no"), "age": age, "e": exposed}).lazy()
    r = associate(
        LocalSource(frame),
        binary("--exposure", "e", frame),
        binary("--outcome", "y", frame),
        [numeric("--adjust", "age", frame)],
    )
    fit = sm.Logit(y.astype(float), sm.add_constant(np.column_stack([exposed, age]).astype(float))).fit(disp=0)
    assert r.adjusted is not None
    assert r.adjusted.odds_ratio == pytest.approx(math.exp(fit.params[1]), rel=1e-6)
    assert r.adjusted.p == pytest.approx(fit.pvalues[1], rel=1e-4)
    assert r.table == (
        (int((exposed & y).sum()), int((exposed & ~y).sum())),
        (int((~exposed & y).sum()), int((~exposed & ~y).sum())),
    )


def test_benjamini_hochberg_and_power() -> None:
    assert _bh([0.01, 0.04, 0.03, 0.005, 0.2, None]) == [
        pytest.approx(0.025), pytest.approx(0.05), pytest.approx(0.05), pytest.approx(0.025), pytest.approx(0.2), None,
    ]  # fmt: skip
    # 387 per group give 80 % power for proportions 0.5 vs 0.4 (Cohen's h 0.2014); odds ratio 1.5 at p0 0.4
    assert power_two_proportions(387, 387, 0.4, 1.5) == pytest.approx(0.80, abs=0.01)
    assert power_two_proportions(0, 10, 0.4, 2.0) is None


def test_robust_limits_of_a_skewed_marker_are_computed_on_the_box_cox_scale() -> None:
    rng = np.random.default_rng(0)
    uppers = []
    for _ in range(20):
        iv, _, _ = interval("x", *table(list(np.round(np.exp(rng.normal(math.log(13), 0.33, 60)), 1))), "none")
        uppers.append(iv.upper)
        assert "Box-Cox" in (iv.note or "")
    # log-normal, median 13, sigma 0.33: the true 97.5th percentile is 24.8 (the raw-scale biweight gave about 22)
    assert 23.5 < float(np.mean(uppers)) < 27.5


def test_auc_interval_needs_two_rows_in_each_class() -> None:
    frame = pl.DataFrame({"m": list(range(10)), "y": [1] + [0] * 9}).lazy()
    r = roc(LocalSource(frame), numeric("--marker", "m", frame), binary("--outcome", "y", frame))
    assert r.auc_ci == (None, None)
    assert any("at least two in each" in n for n in r.notes)
