"""Render an assessment as JSON-ready data or as text for a terminal.

Both show the same things in the same order: the pathway (does the RPL / RIF work-up apply to this patient?),
the findings with the guidelines' stances, the evidence for and against and how common a flagged genotype is,
the next steps and the options (those not indicated for this patient apart, under a heading that says why), the
prognosis, and the references. What could not be checked against a source is marked, and said once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from decidua.core.findings import (
    Assessment,
    Finding,
    Frequency,
    NextStep,
    Option,
    Pathway,
    Prognosis,
    Stance,
    Statement,
    Status,
)
from decidua.knowledge.loader import KnowledgeBase

SCOPE = (
    "Decision support for clinicians, not a diagnosis or a prescription. Options are shown with the clinic "
    "protocol and the guidelines' stances; the treating clinician decides."
)
UNVERIFIED_CITATION = "References marked * could not be checked against a record of the source."
UNVERIFIED_STANCE = (
    "Guideline statements marked † could not be checked against a copy of the guideline: the wording is decidua's "
    "paraphrase of the guideline cited; read the guideline before relying on it."
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
BEARING_LABELS = {"supports": "evidence for", "against": "evidence against", "neutral": "evidence"}
SOURCE_LABELS = {
    "clinic_protocol": "clinic protocol",
    "guideline": "guideline text",
    "study": "study",
    "caveat": "caveat",
}


def display_group(f: Finding, alternative: bool) -> str:
    return "alternative" if alternative and f.status is Status.FLAGGED else f.group


def yes_no(value: bool | None, yes: str = "met", no: str = "not met") -> str:
    return "cannot tell" if value is None else yes if value else no


def not_indicated_heading(workup_indicated: bool | None) -> str:
    """The heading under which items not indicated for this patient are shown apart."""
    if workup_indicated is False:
        return (
            "Not indicated: the patient meets neither the RPL nor the RIF definition in force (shown for information)"
        )
    if workup_indicated is None:
        return "Cannot tell whether indicated: the history needed to apply the RPL/RIF definitions is not recorded"
    return "Not indicated for this patient: meant for a pathway she does not meet (shown for information)"


def citation_data(kb: KnowledgeBase, key: str) -> dict[str, Any]:
    c = kb.citation(key)
    return {"key": key, "text": c.to_string(), "doi": c.doi, "pmid": c.pmid, "url": c.url, "verified": c.verified}


def stance_data(s: Stance) -> dict[str, Any]:
    return {
        "source": s.source,
        "text": s.text,
        "strength": s.strength,
        "wording": s.wording,
        "verified": s.verified,
        "citations": list(s.citations),
        "note": s.note,
    }


def statement_data(s: Statement) -> dict[str, Any]:
    return {
        "source": s.source,
        "text": s.text,
        "strength": s.strength,
        "wording": s.wording,
        "bearing": s.bearing,
        "citations": list(s.citations),
    }


def frequency_data(p: Frequency) -> dict[str, Any]:
    return {
        "genotype": p.genotype,
        "population": p.population,
        "percent": p.percent,
        "n": p.n,
        "derived": p.derived,
        "citations": list(p.citations),
    }


def finding_data(f: Finding, kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "group": f.group,
        "title": f.title,
        "status": f.status.value,
        "status_label": f.status_label,
        "summary": f.summary,
        "measure": f.measure,
        "threshold_applied": f.threshold_applied,
        "interpretation": f.interpretation.value if f.interpretation else None,
        "inputs": [{"name": i.name, "label": i.label, "value": i.value, "unit": i.unit} for i in f.inputs],
        "missing_inputs": list(f.missing),
        "missing": list(f.missing_labels),
        "thresholds": [
            {"name": t.name, "value": t.value, "unit": t.unit, "applies_when": t.applies_when} for t in f.thresholds
        ],
        "evidence_level": f.evidence_level,
        "citations": [citation_data(kb, k) for k in f.citations],
        "context": list(f.context),
        "stance": stance_data(f.stance) if f.stance else None,
        "stances": [stance_data(s) for s in f.stances],
        "statements": [statement_data(s) for s in f.statements],
        "population": [frequency_data(p) for p in f.population],
        "kb_version": f.kb_version,
    }


def step_data(s: NextStep) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "text": s.text,
        "because": list(s.because),
        "indicated": s.indicated,
        "indication": s.indication,
        "citations": list(s.citations),
        "stances": [stance_data(x) for x in s.stances],
    }


def option_data(o: Option) -> dict[str, Any]:
    return {
        "id": o.id,
        "title": o.title,
        "kind": o.kind,
        "because": list(o.because),
        "indicated": o.indicated,
        "indication": o.indication,
        "stance": stance_data(o.stance),
        "stances": [stance_data(s) for s in o.stances],
        "statements": [statement_data(s) for s in o.statements],
    }


def prognosis_data(p: Prognosis) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "measure": p.measure,
        "percent": p.percent,
        "table_age": p.table_age,
        "table_losses": p.table_losses,
        "age": p.age,
        "losses": p.losses,
        "explanation": p.explanation,
        "validity": p.validity,
        "overall": [statement_data(s) for s in p.overall],
        "citations": list(p.citations),
    }


def cited_keys(a: Assessment) -> list[str]:
    """Every citation key an assessment uses, in order of first appearance (findings, steps, options, prognosis)."""
    keys: list[str] = []
    for f in a.findings:
        keys += f.citations
        keys += [k for s in f.stances for k in s.citations]
        keys += [k for s in f.statements for k in s.citations]
        keys += [k for p in f.population for k in p.citations]
    for step in a.next_steps:
        keys += step.citations
        keys += [k for s in step.stances for k in s.citations]
    for o in a.options:
        keys += [k for s in o.stances for k in s.citations]
        keys += [k for s in o.statements for k in s.citations]
    for p in a.prognosis:
        keys += p.citations
        keys += [k for s in p.overall for k in s.citations]
    return list(dict.fromkeys(keys))


def _stances(a: Assessment) -> Iterable[Stance]:
    for f in a.findings:
        yield from f.stances
    for s in a.next_steps:
        yield from s.stances
    for o in a.options:
        yield from o.stances


def verification_notes(a: Assessment, kb: KnowledgeBase) -> list[str]:
    """The sentences saying, once, that some references or guideline statements could not be checked."""
    out = []
    if any(not kb.citation(k).verified for k in cited_keys(a)):
        out.append(UNVERIFIED_CITATION)
    if any(not s.verified for s in _stances(a)):
        out.append(UNVERIFIED_STANCE)
    return out


def pathway_data(p: Pathway) -> dict[str, Any]:
    return {
        "rpl": p.rpl,
        "rif": p.rif,
        "workup_indicated": p.workup_indicated,
        "unexplained_rpl": p.unexplained_rpl,
        "reason": p.reason,
    }


def assessment_data(a: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The assessment as JSON-ready data (the ``--format json`` output)."""
    c = a.classification
    findings = {f.rule_id: f for f in a.findings}
    return {
        "case_id": a.case_id,
        "kb_version": a.kb_version,
        "kb_overrides": list(a.kb_overrides),
        "scope": SCOPE,
        "pathway": pathway_data(a.pathway),
        "classification": {
            "rpl": {
                "status": c.rpl.value,
                "status_label": findings[c.rpl_definition].status_label,
                "losses_counted": c.losses_counted,
                "definition": c.rpl_definition,
            },
            "rif": {
                "status": c.rif.value,
                "status_label": findings[c.rif_definition].status_label,
                "failed_transfers": c.failed_transfers,
                "definition": c.rif_definition,
            },
        },
        "findings": [finding_data(f, kb) for f in a.findings],
        "next_steps": [step_data(s) for s in a.next_steps],
        "options": [option_data(o) for o in a.options],
        "prognosis": [prognosis_data(p) for p in a.prognosis],
        "warnings": list(a.warnings),
        "references": [citation_data(kb, k) for k in cited_keys(a)],
        "verification": verification_notes(a, kb),
    }


_STATUS_STYLE = {Status.FLAGGED: "bold red", Status.WITHIN_RANGE: "green", Status.NOT_ASSESSED: "yellow"}


def _pct(x: float) -> str:
    return f"{x:g} %"


class _TextWriter:
    """Builds the terminal text: one flowing column (no table cells), so that ids and text never get cut."""

    def __init__(self, a: Assessment, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.refs = {k: i + 1 for i, k in enumerate(cited_keys(a))}

    def cite(self, keys: Iterable[str]) -> str:
        numbers = [str(self.refs[k]) for k in keys if k in self.refs]
        return f" [{','.join(numbers)}]" if numbers else ""

    def stance(self, out: Text, s: Stance, indent: str) -> None:
        mark = "" if s.verified else "†"
        out.append(f"{indent}{s.source}{mark} ({s.strength}): ", style="italic")
        out.append(f"{s.text}{self.cite(s.citations)}\n")

    def statement(self, out: Text, s: Statement, indent: str) -> None:
        label = BEARING_LABELS.get(s.bearing or "", SOURCE_LABELS.get(s.source, s.source))
        if s.source == "clinic_protocol":
            label = "clinic protocol"
        out.append(f"{indent}{label}: ", style="bold" if s.bearing == "against" else "")
        out.append(f"{s.text}{self.cite(s.citations)}\n")

    def finding(self, f: Finding) -> Text:
        out = Text()
        out.append(f"[{f.status_label}] ", style=_STATUS_STYLE[f.status])
        out.append(f"{f.title}\n", style="bold")
        out.append(f"  {f.summary}\n")
        if f.status is Status.NOT_ASSESSED and f.missing_labels:
            out.append(f"  missing: {'; '.join(f.missing_labels)}\n", style="yellow")
        for ctx in f.context:
            out.append(f"  context: {ctx}\n", style="dim")
        for s in f.stances:
            self.stance(out, s, "  guideline: ")
        if f.status is not Status.NOT_ASSESSED:
            for st in f.statements:
                self.statement(out, st, "  ")
            for p in f.population:
                n = f", n = {p.n:,}" if p.n else ""
                out.append(
                    f"  how common: {p.genotype} in {_pct(p.percent)} of {p.population}{n}{self.cite(p.citations)}\n"
                )
        out.append(f"  rule {f.rule_id} · {f.evidence_level}{self.cite(f.citations)}\n", style="dim")
        return out

    def step(self, out: Text, s: NextStep) -> None:
        out.append(f"  - {s.text}{self.cite(s.citations)}\n")
        if s.indication:
            out.append(f"    ({s.indication})\n", style="dim")
        for st in s.stances:
            self.stance(out, st, "    ")

    def option(self, out: Text, o: Option) -> None:
        out.append(f"  {o.title}\n", style="bold")
        if o.indication:
            out.append(f"    ({o.indication})\n", style="dim")
        for s in o.stances:
            self.stance(out, s, "    ")
        for st in o.statements:
            self.statement(out, st, "    ")


def _count(n: int | None, one: str, many: str, after: str) -> str:
    if n is None:
        return ""
    return f"{n} {one if n == 1 else many}" + (f" {after}" if after else "")


def _pathway_text(a: Assessment) -> Text:
    c, p = a.classification, a.pathway
    findings = {f.rule_id: f for f in a.findings}
    out = Text()
    for name, value, rule_id, count in (
        ("RPL", p.rpl, c.rpl_definition, _count(c.losses_counted, "loss", "losses", "counted")),
        ("RIF", p.rif, c.rif_definition, _count(c.failed_transfers, "failed transfer", "failed transfers", "")),
    ):
        out.append(f"{name}: ")
        out.append(yes_no(value), style={True: "bold red", False: "green", None: "yellow"}[value])
        detail = "; ".join(x for x in (count, findings[rule_id].title) if x)
        out.append(f" ({detail})\n")
    out.append("Work-up: ", style="bold")
    out.append(
        {True: "applies", False: "does not apply", None: "cannot tell"}[p.workup_indicated],
        style={True: "bold", False: "bold green", None: "bold yellow"}[p.workup_indicated],
    )
    out.append(f" - {p.verdict}\n")
    if p.unexplained_rpl is not None or p.rpl:
        out.append(f"Unexplained RPL: {yes_no(p.unexplained_rpl, 'yes', 'no')}\n")
    return out


def assessment_text(a: Assessment, kb: KnowledgeBase) -> RenderableType:
    """A terminal rendering: pathway, grouped findings, next steps, options, prognosis, references."""
    w = _TextWriter(a, kb)
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"Case {a.case_id}", style="bold")
    head.append(f"   knowledge base {a.kb_version}\n")
    for line in a.kb_overrides:
        head.append(f"local override: {line}\n", style="magenta")
    parts.append(head)
    parts.append(_pathway_text(a))
    for warning in a.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))

    alternative = {r.id for r in kb.rules if r.alternative_explanation}
    for group, title in GROUP_TITLES.items():
        items = [f for f in a.findings if display_group(f, f.rule_id in alternative) == group]
        if not items:
            continue
        parts.append(Text(f"\n{title}", style="bold underline"))
        parts.extend(w.finding(f) for f in items)

    apart_heading = not_indicated_heading(a.pathway.workup_indicated)
    for indicated, heading in ((True, ""), (False, f": {apart_heading}")):
        steps = [s for s in a.next_steps if s.indicated is indicated]
        if steps:
            out = Text(f"\nNext steps{heading}\n", style="bold underline")
            for step in steps:
                w.step(out, step)
            parts.append(out)
        options = [o for o in a.options if o.indicated is indicated]
        if options:
            out = Text(f"\nOptions with evidence (not a prescription){heading}\n", style="bold underline")
            for option in options:
                w.option(out, option)
            parts.append(out)
    for p in a.prognosis:
        out = Text(f"\n{p.title}\n", style="bold underline")
        if p.percent is not None:
            out.append(f"  {p.measure}: {_pct(p.percent)} ", style="bold")
        out.append(f"  {p.explanation}{w.cite(p.citations)}\n")
        for s in p.overall:
            w.statement(out, s, "  ")
        out.append(f"  valid for: {p.validity}\n", style="dim")
        parts.append(out)

    refs = Text("\nReferences\n", style="bold")
    for key, n in w.refs.items():
        c = kb.citation(key)
        refs.append(f"  [{n}]{'' if c.verified else '*'} {c.to_string()}\n")
    for note in verification_notes(a, kb):
        refs.append(f"  {note}\n", style="dim")
    parts.append(refs)
    parts.append(Panel(SCOPE, style="dim"))
    return Group(*parts)
