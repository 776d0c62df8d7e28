from __future__ import annotations

import pytest

from decidua.adapters.report.plots import (
    EmbryoLigands,
    Receptor,
    interaction_map,
    peripheral_nk_plot,
    uterine_nk_plot,
)
from decidua.core.findings import Status
from decidua.knowledge.loader import KnowledgeBase, apply_override, parse_override

RECEPTORS = [
    Receptor("KIR2DL1", "C2", "inhibitory", "strong", True),
    Receptor("KIR2DS1", "C2", "activating", "weak", None),
    Receptor("KIR2DL2", "C1", "inhibitory", "strong", False),
    Receptor("KIR2DL3", "C1", "inhibitory", "weak", True),
]


def test_peripheral_plot_follows_the_knowledge_base(kb: KnowledgeBase) -> None:
    svg = peripheral_nk_plot(kb, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED)
    assert svg.startswith("<svg")
    assert svg == peripheral_nk_plot(kb, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED)  # deterministic
    assert "this result: 20 %" in svg
    assert "ARUP adult reference interval" in svg  # the rule's context interval, from the knowledge base
    local = apply_override(
        kb,
        parse_override(
            "override_schema_version: 1\nname: X\nversion: '1'\nsource: s\n"
            "rules: {nk.peripheral.clinic: {value: 30}}\n",
            "t",
        ),
    )
    assert peripheral_nk_plot(local, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED) != svg


def test_peripheral_plot_without_age_draws_the_value_as_a_line(kb: KnowledgeBase) -> None:
    assert "(age unknown)" in peripheral_nk_plot(kb, "nk.peripheral.clinic", None, 20.0, Status.NOT_ASSESSED)


def test_uterine_plot_for_range_and_cutoff_rules(kb: KnowledgeBase) -> None:
    assert "reference 1.2-4.5" in uterine_nk_plot(kb, "nk.uterine.chen2017", 5.2, Status.FLAGGED)
    assert "cut-off 300" in uterine_nk_plot(kb, "nk.uterine.kuon2017", 410.0, Status.FLAGGED)


def test_plots_refuse_rules_of_the_wrong_kind(kb: KnowledgeBase) -> None:
    with pytest.raises(TypeError):
        peripheral_nk_plot(kb, "nk.uterine.chen2017", 30, 5.0, Status.FLAGGED)
    with pytest.raises(TypeError):
        uterine_nk_plot(kb, "classification.rpl.eshre2022", 5.0, Status.FLAGGED)


def test_interaction_map_marks_present_absent_and_untyped_receptors() -> None:
    svg = interaction_map(RECEPTORS, EmbryoLigands(0.25, 0.5, 0.25))
    for text in ("KIR2DL1–C2", "inhibitory", "not typed", "absent", "no ligand", "C1C2", "50%", "(weak)"):
        assert text in svg
    assert "not possible" not in svg
    assert svg == interaction_map(RECEPTORS, EmbryoLigands(0.25, 0.5, 0.25))


def test_interaction_map_always_shows_the_three_genotypes() -> None:
    # a C1C1 mother and a C1C1 father: only C1C1 embryos, the C2 columns are shown as not possible
    svg = interaction_map(RECEPTORS, EmbryoLigands(1.0, 0.0, 0.0))
    for label in ("C1C1", "C1C2", "C2C2", "not possible"):
        assert label in svg


def test_embryo_ligands_from_a_distribution_with_a_null_allele() -> None:
    embryo = EmbryoLigands.from_distribution({"C1C2": 0.25, "C1-": 0.25, "C1C1": 0.25, "C2-": 0.25})
    assert embryo.columns() == (("C1C1", 0.25), ("C1C2", 0.25), ("C2C2", 0.0), ("C1-", 0.25), ("C2-", 0.25))
    assert "C2-" in interaction_map(RECEPTORS, embryo)


@pytest.mark.parametrize(("probabilities", "message"), [((0.5, 0.5, 0.5), "sum to 1.5"), ((-0.5, 1.0, 0.5), "[0, 1]")])
def test_embryo_ligands_reject_impossible_probabilities(
    probabilities: tuple[float, float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        EmbryoLigands(*probabilities)
