"""Render an assessment as JSON-ready data or as text for a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from decidua.core.findings import Assessment, Finding, Status
from decidua.knowledge.loader import KnowledgeBase

SCOPE = (
    "Decision support for clinicians, not a diagnosis or a prescription. Options are shown with the clinic "
    "protocol and the guideline stance; the treating clinician decides."
)

# Display order of finding groups; investigations that flag are shown as alternative explanations.
GROUP_TITLES = {
    "classification": "Classification",
    "alternative": "Alternative explanations to consider first",
    "investigation": "Investigations",
    "nk": "NK cells",
    "autoimmune": "Autoimmunity",
    "immunogenetics": "KIR / HLA-C compatibility",
}


def display_group(f: Finding, alternative: bool) -> str:
    return "alternative" if alternative and f.status is Status.FLAGGED else f.group


def citation_data(kb: KnowledgeBase, key: str) -> dict[str, Any]:
    c = kb.citation(key)
    return {"key": key, "text": c.to_string(), "doi": c.doi, "pmid": c.pmid, "url": c.url, "verified": c.verified}


def finding_data(f: Finding, kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "group": f.group,
        "title": f.title,
        "status": f.status.value,
        "summary": f.summary,
        "measure": f.measure,
        "threshold_applied": f.threshold_applied,
        "interpretation": f.interpretation.value if f.interpretation else None,
        "inputs": [{"name": i.name, "value": i.value, "unit": i.unit} for i in f.inputs],
        "missing_inputs": list(f.missing),
        "thresholds": [
            {"name": t.name, "value": t.value, "unit": t.unit, "applies_when": t.applies_when} for t in f.thresholds
        ],
        "evidence_level": f.evidence_level,
        "citations": [citation_data(kb, k) for k in f.citations],
        "context": list(f.context),
        "stance": f.stance,
        "kb_version": f.kb_version,
    }


def assessment_data(a: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The assessment as JSON-ready data (the ``--format json`` output)."""
    c = a.classification
    cited = sorted(
        {k for f in a.findings for k in f.citations}
        | {k for o in a.options for s in o.statements for k in s.citations}
        | {k for s in a.next_steps for k in s.citations}
    )
    return {
        "case_id": a.case_id,
        "kb_version": a.kb_version,
        "kb_overrides": list(a.kb_overrides),
        "scope": SCOPE,
        "classification": {
            "rpl": {"status": c.rpl.value, "losses_counted": c.losses_counted, "definition": c.rpl_definition},
            "rif": {"status": c.rif.value, "failed_transfers": c.failed_transfers, "definition": c.rif_definition},
        },
        "findings": [finding_data(f, kb) for f in a.findings],
        "next_steps": [
            {"id": s.id, "text": s.text, "because": s.because, "citations": list(s.citations)} for s in a.next_steps
        ],
        "options": [
            {
                "id": o.id,
                "title": o.title,
                "because": list(o.because),
                "statements": [
                    {
                        "source": s.source,
                        "text": s.text,
                        "strength": s.strength,
                        "wording": s.wording,
                        "citations": list(s.citations),
                    }
                    for s in o.statements
                ],
            }
            for o in a.options
        ],
        "warnings": list(a.warnings),
        "references": [citation_data(kb, k) for k in cited],
    }


_STATUS_STYLE = {Status.FLAGGED: "bold red", Status.WITHIN_RANGE: "green", Status.NOT_ASSESSED: "yellow"}
_STATUS_LABEL = {Status.FLAGGED: "FLAGGED", Status.WITHIN_RANGE: "within range", Status.NOT_ASSESSED: "not assessed"}


def assessment_text(a: Assessment, kb: KnowledgeBase) -> RenderableType:
    """A terminal rendering: classification, grouped findings, next steps, options, references."""
    refs = {
        k: i + 1
        for i, k in enumerate(
            sorted(
                {k for f in a.findings for k in f.citations}
                | {k for o in a.options for s in o.statements for k in s.citations}
            )
        )
    }

    def cite(keys: tuple[str, ...]) -> str:
        return "[" + ",".join(str(refs[k]) for k in keys) + "]"

    parts: list[RenderableType] = []
    head = Text()
    head.append(f"Case {a.case_id}", style="bold")
    head.append(f"   knowledge base {a.kb_version}\n")
    c = a.classification
    head.append(f"RPL: {_STATUS_LABEL[c.rpl]}", style=_STATUS_STYLE[c.rpl])
    head.append(
        f" ({c.losses_counted if c.losses_counted is not None else 'n/a'} losses counted; {c.rpl_definition})\n"
    )
    head.append(f"RIF: {_STATUS_LABEL[c.rif]}", style=_STATUS_STYLE[c.rif])
    head.append(
        f" ({c.failed_transfers if c.failed_transfers is not None else 'n/a'} failed transfers; {c.rif_definition})"
    )
    for line in a.kb_overrides:
        head.append(f"\nlocal override: {line}", style="magenta")
    parts.append(head)

    alternative = {r.id for r in kb.rules if r.alternative_explanation}
    for group, title in GROUP_TITLES.items():
        items = [f for f in a.findings if display_group(f, f.rule_id in alternative) == group]
        if not items:
            continue
        table = Table(title=title, title_justify="left", show_lines=False, expand=True)
        table.add_column("status", no_wrap=True)
        table.add_column("finding")
        table.add_column("rule", style="dim")
        for f in items:
            body = Text(f.summary)
            if f.status is Status.NOT_ASSESSED and f.missing:
                body.append(f"\nmissing: {', '.join(f.missing)}", style="yellow")
            for ctx in f.context:
                body.append(f"\ncontext: {ctx}", style="dim")
            if f.stance and f.status is Status.FLAGGED:
                body.append(f"\nguideline: {f.stance}", style="italic")
            table.add_row(
                Text(_STATUS_LABEL[f.status], style=_STATUS_STYLE[f.status]), body, f"{f.rule_id} {cite(f.citations)}"
            )
        parts.append(table)

    if a.next_steps:
        steps = Text("Next investigations\n", style="bold")
        for step in a.next_steps:
            steps.append(f"  - {step.text} ({step.because})\n")
        parts.append(steps)
    if a.options:
        opts = Text("Options with evidence (not a prescription)\n", style="bold")
        for o in a.options:
            opts.append(f"  {o.title}", style="bold")
            opts.append(f"  (relevant because: {', '.join(o.because)})\n")
            for st in o.statements:
                label = "clinic protocol" if st.source == "clinic_protocol" else st.source
                strength = f", {st.strength}" if st.strength else ""
                opts.append(f"    {label}{strength}: {st.text} {cite(st.citations)}\n")
        parts.append(opts)
    ref_text = Text("References\n", style="bold")
    for key, n in refs.items():
        ref_text.append(f"  [{n}] {kb.citation(key).to_string()}\n")
    parts.append(ref_text)
    parts.append(Panel(SCOPE, style="dim"))
    return Group(*parts)
