"""Knowledge-base data as the outputs show it (``kb show --json``, ``/api/kb``, the knowledge-base page): pure
functions of the knowledge base, shared by every entry point."""

from __future__ import annotations

from typing import Any

from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import CountRule, RangeRule, Rule, ThresholdRule

__all__ = ["PATHWAY_GATE", "citation_data", "kb_data", "pathway_data", "rule_parameters"]


def citation_data(kb: KnowledgeBase, key: str) -> dict[str, Any]:
    c = kb.citation(key)
    return {"key": key, "text": c.to_string(), "doi": c.doi, "pmid": c.pmid, "url": c.url, "verified": c.verified}


PATHWAY_GATE = (
    "The pathway gate decides first whether the work-up applies: RPL met under the RPL definition in force, or RIF "
    "met under the RIF definition in force. Met: the steps and options meant for that pathway are listed as relevant "
    "to discuss ('indicated'), each with the guidelines' verdict (which may be against it). Neither met: they are "
    "listed apart as not indicated, with the reason, and the results are shown for information. A history that is "
    "not recorded is 'cannot tell', never 'not met'. Immunomodulatory and anticoagulant options for unexplained "
    "losses or a high NK result are held back while a finding that may explain the losses is flagged or the "
    "recommended work-up is incomplete. RPL is unexplained when none of the findings that explain losses is flagged "
    "and the investigations every woman with RPL should have are done."
)


def rule_parameters(rule: Rule) -> str:
    match rule:
        case CountRule():
            upper = f" (not met only if sum({', '.join(rule.count_max)}) < {rule.at_least})" if rule.count_max else ""
            return f"sum({', '.join(rule.count)}) >= {rule.at_least}{upper}"
        case ThresholdRule():
            sign = ">" if rule.direction == "above" else "<"
            bands = "; ".join(f"{b.label}: {sign} {b.value:g}" for b in rule.bands)
            base = f"{rule.input} {sign} {rule.value:g} {rule.unit}"
            return f"{bands}; otherwise {base}" if bands else base
        case RangeRule():
            when = f" ({rule.applies_label})" if rule.applies_label else ""
            return f"{rule.input} outside {rule.low:g}-{rule.high:g} {rule.unit}{when}"
    return "criteria on " + ", ".join(rule.inputs)


def pathway_data(kb: KnowledgeBase) -> dict[str, Any]:
    """How the pathway gate works under this knowledge base (``kb show --json``, ``/api/kb``)."""
    u = kb.unexplained_rpl
    return {
        "description": PATHWAY_GATE,
        "rpl_definition": kb.selected["rpl_definition"],
        "rif_definition": kb.selected["rif_definition"],
        "unexplained_rpl": None
        if u is None
        else {"explained_by": list(u.explained_by), "requires_assessed": list(u.requires)},
    }


def kb_data(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "kb_version": kb.kb_version,
        "overrides": list(kb.overrides),
        "pathway": pathway_data(kb),
        "choices": {
            name: {
                "label": c.label,
                "selected": kb.selected[name],
                "options": [r.id for r in kb.rules if r.choice == name],
            }
            for name, c in kb.choices.items()
        },
        "rules": [
            {
                **r.model_dump(mode="json", exclude_none=True),
                "active": r in kb.active_rules,
                "parameters": rule_parameters(r),
            }
            for r in kb.rules
        ],
        "steps": [s.model_dump(mode="json", exclude_none=True) for s in kb.steps],
        "options": [o.model_dump(mode="json", exclude_none=True) for o in kb.options],
        "prognosis": [p.model_dump(mode="json", exclude_none=True) for p in kb.prognosis],
        "citations": {k: citation_data(kb, k) for k in sorted(kb.citations)},
    }
