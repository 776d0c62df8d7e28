"""The HTML report of a research command: the figures, a plot (distribution with the limits, ROC curve, forest
plot), and the method with its citations. Deterministic for the same result (inline SVG, no timestamps)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from decidua import __version__
from decidua.adapters.report.plots import PLOT_LOCK, _style, _svg

METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "reference-interval": (
        (
            "Values were aggregated into a table of distinct values with their counts. Outliers were removed by the "
            "rule shown (Tukey's fences on the Box-Cox scale by default; Reed's D/R > 1/3 rule with 'dixon'). With at "
            "least 120 values the limits are the nonparametric 2.5th and 97.5th percentiles (rank p(n + 1), linear "
            "interpolation) with 90 % confidence intervals from order statistics (binomial ranks, which reproduce "
            "CLSI EP28-A3c Table 8); with 20 to 119 values, the robust biweight method of Horn and Pesce, its limits' "
            "90 % intervals by a percentile bootstrap of 5,000 resamples; with fewer, no interval. Two subgroups are "
            "judged by Harris and Boyd's normal deviate test (z against z* = 3 sqrt((n1 + n2)/240)) and by Lahti's "
            "criterion (share of a subgroup outside the combined limits: over 4.1 % separate intervals, 3.2 % or less "
            "one interval)."
        ),
        (
            (
                "CLSI. Defining, establishing, and verifying reference intervals in the clinical laboratory; approved "
                "guideline - third edition. CLSI document EP28-A3c. Wayne, PA: CLSI; 2010."
            ),
            (
                "Horn PS, Pesce AJ, Copeland BE. A robust approach to reference interval estimation and evaluation. "
                "Clin Chem 1998;44:622-631."
            ),
            (
                "Horn PS, Feng L, Li Y, Pesce AJ. Effect of outliers and nonhealthy individuals on reference interval "
                "estimation. Clin Chem 2001;47:2137-2145."
            ),
            (
                "Reed AH, Henry RJ, Mason WB. Influence of statistical method used on the resulting estimate of normal "
                "range. Clin Chem 1971;17:275-284."
            ),
            (
                "Harris EK, Boyd JC. On dividing reference data into subgroups to produce separate reference ranges. "
                "Clin Chem 1990;36:265-270."
            ),
            (
                "Lahti A, Hyltoft Petersen P, Boyd JC, Fraser CG, Jørgensen N. Objective criteria for partitioning "
                "Gaussian-distributed reference values into subgroups. Clin Chem 2002;48:338-352."
            ),
        ),
    ),
    "cutoff": (
        (
            "A test is positive when the marker is above the cut-off. The AUC is the probability that a row with the "
            "outcome has a higher marker than one without (ties one half); its 95 % interval uses DeLong's variance on "
            "the AUC scale, cut to [0, 1]. Sensitivity, specificity, PPV and NPV carry Wilson score 95 % intervals "
            "(exact Clopper-Pearson ones in the JSON). The Youden optimum maximises sensitivity + specificity - 1."
        ),
        (
            (
                "DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated receiver "
                "operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837-845."
            ),
            "Youden WJ. Index for rating diagnostic tests. Cancer 1950;3:32-35.",
            (
                "Wilson EB. Probable inference, the law of succession, and statistical inference. J Am Stat Assoc "
                "1927;22:209-212."
            ),
        ),
    ),
    "association": (
        (
            "The 2x2 table of exposure by outcome. The sample odds ratio ad/bc carries Woolf's interval (normal on the "
            "log scale; undefined with a zero cell); the conditional maximum-likelihood odds ratio carries the exact "
            "interval (scipy); the p value is Fisher's exact test, two-sided. With adjustment, a logistic regression "
            "(statsmodels GLM, binomial) of the outcome on the exposure and the adjustment columns gives the adjusted "
            "odds ratio with its Wald interval."
        ),
        ("Woolf B. On estimating the relation between blood group and disease. Ann Hum Genet 1955;19:251-253.",),
    ),
    "scan": (
        (
            "Each genotype exposure, derived by the batch engine from the cohort, is compared with the outcome in its "
            "own 2x2 table (odds ratio with Woolf's interval, Fisher's exact p). P values are adjusted for the number "
            "of tests by Benjamini and Hochberg's false discovery rate. Each test's power to detect the stated odds "
            "ratio at two-sided alpha 0.05 is computed from its group sizes and the outcome rate of the unexposed "
            "(normal approximation, Cohen's h). The scan is exploratory."
        ),
        (
            (
                "Hiby SE, Regan L, Lo W, et al. Association of maternal killer-cell immunoglobulin-like receptors and "
                "parental HLA-C genotypes with recurrent miscarriage. Hum Reprod 2008;23:972-976."
            ),
            (
                "Hiby SE, Apps R, Sharkey AM, et al. Maternal activating KIRs protect against human reproductive "
                "failure mediated by fetal HLA-C2. J Clin Invest 2010;120:4102-4110."
            ),
            (
                "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful approach to "
                "multiple testing. J R Stat Soc B 1995;57:289-300."
            ),
            "Cohen J. Statistical power analysis for the behavioral sciences. 2nd ed. 1988.",
        ),
    ),
}


def _distribution(result: Any) -> str:
    groups = [k for k in result.histogram if k != "all"] or ["all"]
    intervals = {iv.partition: iv for iv in (result.overall, *result.partitions)}
    with PLOT_LOCK, _style():
        fig, axes = plt.subplots(len(groups), 1, figsize=(6.2, 1.9 * len(groups)), squeeze=False)
        for ax, group in zip(axes[:, 0], groups, strict=True):
            values, counts = result.histogram[group]
            ax.bar(values, counts, width=_width(values), color="#9db4c8", linewidth=0)
            iv = intervals[group]
            for limit, ci in ((iv.lower, iv.lower_ci), (iv.upper, iv.upper_ci)):
                if limit is None:
                    continue
                if ci is not None:
                    ax.axvspan(ci[0], ci[1], color="#b3261e", alpha=0.15, linewidth=0)
                ax.axvline(limit, color="#b3261e", linewidth=1)
            ax.set_title(f"{group}: n = {iv.n:,}", loc="left", fontsize=8)
            ax.set_ylabel("count")
        axes[-1, 0].set_xlabel(result.column)
        fig.tight_layout()
        return _svg(fig)


def _width(values: tuple[float, ...]) -> float:
    if len(values) < 2:
        return 1.0
    gaps = [b - a for a, b in itertools.pairwise(values) if b > a]
    return min(gaps) * 0.9 if gaps else 1.0


def _roc(result: Any) -> str:
    with PLOT_LOCK, _style():
        fig, ax = plt.subplots(figsize=(3.6, 3.6))
        xs = [p[1] for p in result.curve] + [1.0]
        ys = [p[2] for p in result.curve] + [1.0]
        ax.plot(xs, ys, color="#1f4e79", linewidth=1.2, label=f"AUC {result.auc:.3f}")
        ax.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle="--")
        for at, marker, label in ((result.at, "o", "given cut-off"), (result.youden, "s", "Youden optimum")):
            if at is None or at.sensitivity.value is None or at.specificity.value is None:
                continue
            ax.plot(
                1 - at.specificity.value, at.sensitivity.value, marker, color="#b3261e", label=f"{label} {at.cutoff}"
            )
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        return _svg(fig)


def _forest(rows: list[tuple[str, float | None, float | None, float | None, bool]]) -> str:
    """Rows of (label, estimate, low, high, emphasised) on a log scale; undefined estimates are left blank."""
    shown = [r for r in rows if r[1] is not None and r[1] > 0 and math.isfinite(r[1])]
    with PLOT_LOCK, _style():
        fig, ax = plt.subplots(figsize=(6.2, 0.28 * max(len(rows), 3) + 0.6))
        for i, (_label, est, lo, hi, strong) in enumerate(rows):
            y = len(rows) - i
            if est is None or est <= 0 or not math.isfinite(est):
                continue
            colour = "#1f4e79" if strong else "#9a9a9a"
            if lo is not None and hi is not None and lo > 0 and math.isfinite(hi):
                ax.plot([lo, hi], [y, y], color=colour, linewidth=1)
            ax.plot(est, y, "s", color=colour, markersize=4)
        ax.axvline(1, color="#444444", linewidth=0.8)
        ax.set_yticks(range(len(rows), 0, -1), [r[0] for r in rows])
        if shown:
            ax.set_xscale("log")
        ax.set_xlabel("odds ratio (95 % CI, log scale)")
        fig.tight_layout()
        return _svg(fig)


def _plot(kind: str, result: Any) -> str:
    if kind == "reference-interval":
        return _distribution(result)
    if kind == "cutoff":
        return _roc(result)
    if kind == "association":
        rows = [
            ("sample (Woolf)", result.odds_ratio, *result.ci, True),
            ("conditional (exact)", result.conditional_odds_ratio, *result.exact_ci, True),
        ]
        if result.adjusted is not None:
            rows.append(("adjusted", result.adjusted.odds_ratio, *result.adjusted.ci, True))
        return _forest(rows)
    rows = []
    for r in result.results:
        a = r.association
        if a is None:
            rows.append((r.exposure, None, None, None, False))
            continue
        est, ci = (a.odds_ratio, a.ci) if a.odds_ratio is not None else (a.conditional_odds_ratio, a.exact_ci)
        rows.append((r.exposure, est, ci[0], ci[1], (r.power or 0) >= 0.8))
    return _forest(rows)


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("decidua.adapters.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
    )


TITLES = {
    "reference-interval": "Reference interval",
    "cutoff": "Cut-off performance",
    "association": "Association",
    "scan": "KIR/HLA-C scan",
}


def render_research(kind: str, result: Any, *, source: str) -> str:
    """The report of one research result (``kind``: reference-interval, cutoff, association, scan)."""
    method, citations = METHODS[kind]
    return (
        _env()
        .get_template("research.html.j2")
        .render(
            title=TITLES[kind],
            kind=kind,
            source=source,
            record=result.to_record(),
            plot=_plot(kind, result),
            method=method,
            citations=citations,
            version=__version__,
        )
    )


__all__ = ["METHODS", "render_research"]
