"""What the case page shows besides the stored assessment: grouped findings and the plots."""

from __future__ import annotations

from typing import Any

from decidua.adapters.report import plots_for
from decidua.app.presenters import GROUP_TITLES
from decidua.core.case import Case
from decidua.core.findings import Assessment
from decidua.engines.matching import match
from decidua.knowledge.loader import KnowledgeBase

STATUS_LABELS = {"flagged": "flagged", "within_range": "within range", "not_assessed": "not assessed"}


def grouped_findings(result: dict[str, Any], kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Findings of a stored assessment by display group; flagged alternative explanations first."""
    alternative = {r.id for r in kb.rules if r.alternative_explanation}
    groups: list[dict[str, Any]] = []
    for group, title in GROUP_TITLES.items():
        items = [
            f
            for f in result.get("findings", [])
            if ("alternative" if f["rule_id"] in alternative and f["status"] == "flagged" else f["group"]) == group
        ]
        if items:
            groups.append({"id": group, "title": title, "findings": items})
    return groups


PLOT_TITLES = {
    "peripheral": "Peripheral NK cells against the cut-off in force",
    "uterine": "Uterine NK cells",
    "interaction": "KIR / HLA-C interactions",
}


def plots(case: Case, assessment: Assessment, kb: KnowledgeBase) -> dict[str, str]:
    """Inline SVG plots, as in the report: peripheral NK against the age cut-off, uterine NK, KIR-HLA-C map."""
    has_genotypes = case.genotypes.woman_kir is not None or case.genotypes.woman_hla_c is not None
    found = plots_for(case, assessment, kb, match(case, kb) if has_genotypes else None)
    return {PLOT_TITLES.get(key, key): svg for key, svg in found.items()}
