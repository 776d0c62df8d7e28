"""Golden tests: the findings of every example case are pinned in ``expected/<name>.json``.

After a deliberate change of the knowledge base or of an example, regenerate with
``DECIDUA_REGENERATE_GOLDEN=1 pytest tests/golden`` and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from decidua.app.casefile import read_case
from decidua.app.presenters import assessment_data
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase, load_kb

from conftest import EXAMPLES

EXPECTED = Path(__file__).parent / "expected"
CASES = sorted(EXAMPLES.glob("*.yaml"))
OVERRIDES = sorted((EXAMPLES / "overrides").glob("*.yaml"))
DEFINITIONS_CASE = EXAMPLES / "18-definitions.yaml"


def pinned(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of an assessment a clinician relies on (wording and reference text left out)."""
    return {
        "case_id": data["case_id"],
        "kb_version": data["kb_version"],
        "pathway": {k: v for k, v in data["pathway"].items() if k != "reason"},
        "warnings": len(data["warnings"]),
        "classification": data["classification"],
        "findings": {
            f["rule_id"]: {
                "status": f["status"],
                "measure": f["measure"],
                "threshold_applied": f["threshold_applied"],
                "interpretation": f["interpretation"],
                "missing_inputs": f["missing_inputs"],
                "citations": [c["key"] for c in f["citations"]],
                "stances": [s["source"] for s in f["stances"]],
            }
            for f in data["findings"]
        },
        "next_steps": {s["id"]: {"because": s["because"], "indicated": s["indicated"]} for s in data["next_steps"]},
        "options": {o["id"]: {"because": o["because"], "relevant": o["relevant"]} for o in data["options"]},
        "prognosis": [
            {"id": p["id"], "percent": p["percent"], "table_age": p["table_age"], "table_losses": p["table_losses"]}
            for p in data["prognosis"]
        ],
    }


def test_there_are_at_least_six_examples() -> None:
    assert len(CASES) >= 6


def _check_or_write(got: dict[str, Any], expected_path: Path) -> None:
    if os.environ.get("DECIDUA_REGENERATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_example_findings_are_pinned(path: Path, kb: KnowledgeBase) -> None:
    got = pinned(assessment_data(assess(read_case(path), kb), kb))
    _check_or_write(got, EXPECTED / f"{path.stem}.json")


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda p: p.stem)
def test_each_definition_choice_is_pinned(override: Path) -> None:
    """One history under each RPL and RIF definition a clinic may choose (examples/overrides)."""
    local = load_kb(override)
    got = pinned(assessment_data(assess(read_case(DEFINITIONS_CASE), local), local))
    _check_or_write(got, EXPECTED / f"{DEFINITIONS_CASE.stem}@{override.stem}.json")
