"""Plots for the report, as deterministic inline SVG (matplotlib, Agg backend).

Each plot reads its thresholds from the knowledge base in force (never from literals here): the peripheral NK
plot evaluates the active rule's compiled threshold expression at each age, so a clinic override redraws it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from decidua.core.expr import evaluate
from decidua.core.findings import Status
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import RangeRule, ThresholdRule

# matplotlib keeps global state: one figure at a time per process (the case page and the report draw concurrently).
PLOT_LOCK = threading.Lock()

STATUS_COLOUR = {Status.FLAGGED: "#b3261e", Status.WITHIN_RANGE: "#1b6e3a", Status.NOT_ASSESSED: "#8a6d00"}


def _style() -> AbstractContextManager[None]:
    """Deterministic SVG (fixed hash salt, text kept as text) in the report's font."""
    return plt.rc_context(
        {
            "svg.hashsalt": "decidua",
            "svg.fonttype": "none",
            "font.size": 8,
            "font.family": "DejaVu Sans",
            "text.parse_math": False,  # labels come from data (column names): "$" is a dollar sign, not TeX
        }
    )


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.15, metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def _number(value: object) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"a threshold evaluated to {value!r}")
    return float(value)


def peripheral_nk_plot(kb: KnowledgeBase, rule_id: str, age: int | None, value: float | None, status: Status) -> str:
    """The woman's peripheral NK % against the rule's age-dependent cut-off and its context intervals."""
    rule = kb.rule(rule_id)
    if not isinstance(rule, ThresholdRule):
        raise TypeError(f"{rule_id} is not a threshold rule")
    threshold = kb.compiled[rule_id].threshold
    ages = list(range(18, 51))
    cut = [_number(evaluate(threshold, {"age_years": a})) if threshold is not None else rule.value for a in ages]
    with _style():
        fig, ax = plt.subplots(figsize=(4.4, 2.2))
        for interval in rule.context:
            ax.axhspan(interval.low, interval.high, color="#d9e7f5", zorder=0, label=interval.label)
        ax.step(ages, cut, where="post", color="#333333", lw=1.5, label=f"cut-off ({rule.title})")
        if value is not None and age is not None:
            ax.plot([age], [value], "o", ms=7, color=STATUS_COLOUR[status], label=f"this result: {value:g} %")
        elif value is not None:
            ax.axhline(
                value, color=STATUS_COLOUR[status], ls="--", lw=1, label=f"this result: {value:g} % (age unknown)"
            )
        top = max([*cut, value or 0, *(i.high for i in rule.context)]) * 1.25
        ax.set(xlim=(18, 50), ylim=(0, top), xlabel="age (completed years)", ylabel=f"CD3-CD56+ NK ({rule.unit})")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=6.5, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def uterine_nk_plot(kb: KnowledgeBase, rule_id: str, value: float, status: Status) -> str:
    """A uterine NK result on a number line with its reference range or cut-off."""
    rule = kb.rule(rule_id)
    with _style():
        fig, ax = plt.subplots(figsize=(4.2, 0.9))
        if isinstance(rule, RangeRule):
            ax.axvspan(rule.low, rule.high, color="#d9e7f5", label=f"reference {rule.low:g}-{rule.high:g} {rule.unit}")
            hi = max(rule.high, value) * 1.3
        elif isinstance(rule, ThresholdRule):
            ax.axvline(rule.value, color="#333333", lw=1.5, label=f"cut-off {rule.value:g} {rule.unit}")
            hi = max(rule.value, value) * 1.3
        else:
            raise TypeError(f"{rule_id} is not a range or threshold rule")
        ax.plot([value], [0.5], "o", ms=8, color=STATUS_COLOUR[status], label=f"this result: {value:g}")
        ax.set(xlim=(0, hi), ylim=(0, 1), yticks=[], xlabel=rule.unit)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=6.5, frameon=False)
        ax.spines[["top", "right", "left"]].set_visible(False)
        return _svg(fig)


@dataclass(frozen=True, slots=True)
class Receptor:
    """A maternal KIR and the HLA-C ligand group it binds (a row of the interaction map)."""

    name: str  # e.g. KIR2DL1
    ligand: str  # C1 or C2
    effect: str  # inhibitory / activating
    strength: str  # strong / weak
    present: bool | None  # None: the gene was not typed


@dataclass(frozen=True, slots=True)
class EmbryoLigands:
    """Probabilities of the embryo's HLA-C ligand genotypes (the columns of the interaction map).

    ``other`` holds genotypes with a non-expressed allele (``C1-``, ``C2-``, ``--``), which carry fewer ligands.

    Examples
    --------
    >>> EmbryoLigands(0.25, 0.5, 0.25).columns()
    (('C1C1', 0.25), ('C1C2', 0.5), ('C2C2', 0.25))
    >>> EmbryoLigands(0.5, 0.5, 0.5)
    Traceback (most recent call last):
    ...
    ValueError: embryo ligand genotype probabilities sum to 1.5, not 1
    """

    c1c1: float
    c1c2: float
    c2c2: float
    other: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        values = [self.c1c1, self.c1c2, self.c2c2, *(p for _, p in self.other)]
        if any(not 0.0 <= p <= 1.0 for p in values):
            raise ValueError(f"embryo ligand genotype probabilities must lie in [0, 1]; got {values}")
        if abs(sum(values) - 1.0) > 1e-9:
            raise ValueError(f"embryo ligand genotype probabilities sum to {sum(values):g}, not 1")

    @classmethod
    def from_distribution(cls, distribution: Mapping[str, float]) -> EmbryoLigands:
        """From a ``{"C1C2": 0.5, ...}`` mapping, labelled as ``compatibility.genotype_label`` labels them."""
        main = ("C1C1", "C1C2", "C2C2")
        other = tuple((k, float(v)) for k, v in sorted(distribution.items()) if k not in main)
        c11, c12, c22 = (float(distribution.get(k, 0.0)) for k in main)
        return cls(c11, c12, c22, other)

    def columns(self) -> tuple[tuple[str, float], ...]:
        """The three expressed genotypes always (a clinician compares them), others only when possible."""
        main = (("C1C1", self.c1c1), ("C1C2", self.c1c2), ("C2C2", self.c2c2))
        return main + tuple((k, p) for k, p in self.other if p > 0)


_INHIBITORY, _ACTIVATING = "#2f6db3", "#d9822b"


def interaction_map(receptors: Sequence[Receptor], embryo: EmbryoLigands) -> str:
    """Maternal receptors (rows) against embryo HLA-C ligand genotypes (columns, with their probabilities).

    A cell is filled where the receptor is present and the genotype carries its ligand: inhibitory in blue,
    activating in orange, weak pairs paler; absent receptors are grey, untyped ones hatched, and genotypes an
    embryo of this couple cannot have (probability 0) are faded.
    """
    columns = embryo.columns()
    with _style():
        fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(columns), 0.6 + 0.42 * len(receptors)))
        for i, r in enumerate(receptors):
            for j, (g, p) in enumerate(columns):
                meets = r.ligand in g
                if r.present is None:
                    colour, hatch, text = "white", "///", "not typed"
                elif not r.present:
                    colour, hatch, text = "#eeeeee", "", "absent"
                elif meets:
                    base = _INHIBITORY if r.effect == "inhibitory" else _ACTIVATING
                    colour, hatch, text = base, "", r.effect + (" (weak)" if r.strength == "weak" else "")
                else:
                    colour, hatch, text = "#f7f7f7", "", "no ligand"
                alpha = 0.45 if r.strength == "weak" and r.present and meets else 1.0
                if p == 0:
                    alpha = 0.25
                ax.add_patch(Rectangle((j, i), 0.96, 0.9, color=colour, alpha=alpha, hatch=hatch, ec="#999999", lw=0.5))
                dark = r.present and meets and alpha == 1.0
                ax.text(
                    j + 0.48, i + 0.45, text, ha="center", va="center", fontsize=6, color="white" if dark else "#222222"
                )
        ax.set_xlim(0, len(columns))
        ax.set_ylim(len(receptors), 0)
        ax.set_xticks([j + 0.48 for j in range(len(columns))])
        ax.set_xticklabels([f"{g}\n{p:.0%}" + ("\n(not possible)" if p == 0 else "") for g, p in columns])
        ax.set_yticks([i + 0.45 for i in range(len(receptors))])
        ax.set_yticklabels([f"{r.name}–{r.ligand}" for r in receptors])
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("embryo HLA-C ligand genotype (probability)", fontsize=7, pad=30)
        return _svg(fig)
