from __future__ import annotations

from decidua.adapters.report.plots import Receptor, interaction_map, peripheral_nk_plot, uterine_nk_plot
from decidua.core.findings import Status
from decidua.knowledge.loader import KnowledgeBase, apply_override, parse_override


def test_peripheral_plot_follows_the_knowledge_base(kb: KnowledgeBase) -> None:
    svg = peripheral_nk_plot(kb, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED)
    assert svg.startswith("<svg")
    assert svg == peripheral_nk_plot(kb, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED)  # deterministic
    local = apply_override(
        kb,
        parse_override(
            "override_schema_version: 1\nname: X\nversion: '1'\nsource: s\n"
            "rules: {nk.peripheral.clinic: {value: 30}}\n",
            "t",
        ),
    )
    assert peripheral_nk_plot(local, "nk.peripheral.clinic", 36, 20.0, Status.FLAGGED) != svg


def test_uterine_plot_for_range_and_cutoff_rules(kb: KnowledgeBase) -> None:
    assert "reference 1.2-4.5" in uterine_nk_plot(kb, "nk.uterine.chen2017", 5.2, Status.FLAGGED)
    assert "cut-off 300" in uterine_nk_plot(kb, "nk.uterine.kuon2017", 410.0, Status.FLAGGED)


def test_interaction_map_marks_present_absent_and_untyped_receptors() -> None:
    svg = interaction_map(
        [
            Receptor("KIR2DL1", "C2", "inhibitory", "strong", True),
            Receptor("KIR2DS1", "C2", "activating", "weak", None),
            Receptor("KIR2DL2", "C1", "inhibitory", "strong", False),
        ],
        {"C1C1": 0.25, "C1C2": 0.5, "C2C2": 0.25},
    )
    for text in ("KIR2DL1–C2", "inhibitory", "not typed", "absent", "no ligand", "C1C2", "50%"):
        assert text in svg
