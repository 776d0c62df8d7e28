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

from decidua.adapters.casefile import read_case
from decidua.adapters.render import assessment_data
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

EXPECTED = Path(__file__).parent / "expected"
CASES = sorted(EXAMPLES.glob("*.yaml"))


def pinned(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of an assessment a clinician relies on (wording and reference text left out)."""
    return {
        "case_id": data["case_id"],
        "kb_version": data["kb_version"],
        "classification": data["classification"],
        "findings": {
            f["rule_id"]: {
                "status": f["status"],
                "measure": f["measure"],
                "threshold_applied": f["threshold_applied"],
                "interpretation": f["interpretation"],
                "missing_inputs": f["missing_inputs"],
                "citations": [c["key"] for c in f["citations"]],
            }
            for f in data["findings"]
        },
        "next_steps": [s["because"] for s in data["next_steps"]],
        "options": {o["id"]: o["because"] for o in data["options"]},
    }


def test_there_are_at_least_six_examples() -> None:
    assert len(CASES) >= 6


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_example_findings_are_pinned(path: Path, kb: KnowledgeBase) -> None:
    got = pinned(assessment_data(assess(read_case(path), kb), kb))
    expected_path = EXPECTED / f"{path.stem}.json"
    if os.environ.get("DECIDUA_REGENERATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_path.read_text())
