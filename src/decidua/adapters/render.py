"""Render an assessment as JSON-ready data or as text for a terminal.

Every output (this text, the JSON, the web page, the report) shows the same things in the same order: the pathway
(does the RPL / RIF work-up apply to this patient?), the findings with the guidelines' stances, the evidence for
and against and how common a flagged genotype is, the next steps and the options indicated (options grouped by the
guidelines' verdict), the prognosis, then apart what is not indicated, under a heading that says why, and the
references. What could not be checked against a source is marked, and said once.

The words shared by the outputs (status and pathway words, headings) are defined here once; the templates read them
from :data:`WORDS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.text import Text

from decidua.app.presenters import citation_data
from decidua.core.findings import (
    Assessment,
    Finding,
    Frequency,
    Interpretation,
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
    "Statements marked † could not be checked against a copy of the guideline or source: they are decidua's "
    "paraphrase, or were seen only in a secondary source (the note says which). Read the source before relying on "
    "them."
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
OPTIONS_FOR = "Options the guidelines recommend, suggest or allow"
OPTIONS_AGAINST = (
    "Options the guidelines advise against, find the evidence insufficient for, or reserve for research (listed "
    "because the findings or the clinic protocol raise them)"
)
OPTIONS_NONE = (
    "Options the guidelines give no verdict on (their stances shown concern a related test; listed because the "
    "findings raise them)"
)
VERDICT_GROUPS = (("for", OPTIONS_FOR), ("against", OPTIONS_AGAINST), ("none", OPTIONS_NONE))
NOT_A_DIRECTIVE = "None is a directive: the treating clinician decides."
# The words every output uses for the pathway and its values (the templates read them from here).
WORDS: dict[str, Any] = {
    "definition": {True: "met", False: "not met", None: "cannot tell"},
    "yes_no": {True: "yes", False: "no", None: "cannot tell"},
    "workup": {True: "applies", False: "does not apply", None: "cannot tell"},
    "status_class": {True: "flagged", False: "within_range", None: "not_assessed"},
    "bearing": BEARING_LABELS,
    "source": SOURCE_LABELS,
    "options_for": OPTIONS_FOR,
    "options_against": OPTIONS_AGAINST,
    "options_none": OPTIONS_NONE,
    "verdict_groups": VERDICT_GROUPS,
    "not_a_directive": NOT_A_DIRECTIVE,
}


def display_group(f: Finding, alternative: bool) -> str:
    return "alternative" if alternative and f.status is Status.FLAGGED else f.group


def not_indicated_heading(workup_indicated: bool | None) -> str:
    """The heading under which items not indicated for this patient are shown apart."""
    if workup_indicated is False:
        return (
            "Not indicated: the patient meets neither the RPL nor the RIF definition in force (shown for information)"
        )
    if workup_indicated is None:
        return "Cannot tell whether indicated: the history needed to apply the RPL/RIF definitions is not recorded"
    return (
        "Not indicated for this patient now: meant for a pathway she does not meet, or held back "
        "(shown for information)"
    )


def status_word(f: Finding) -> str:
    """The status label, with high or low where a range was left."""
    if f.interpretation in (Interpretation.HIGH, Interpretation.LOW) and f.status_label.startswith("outside"):
        return f"{f.status_label} ({'high' if f.interpretation is Interpretation.HIGH else 'low'})"
    return f.status_label


def shown_stances(f: Finding) -> tuple[Stance, ...]:
    """The stances an output prints with a finding: all of them once it is assessed, the principal guideline's
    while it is not (the JSON always carries all)."""
    return f.stances if f.status is not Status.NOT_ASSESSED else f.stances[:1]


def options_by_verdict(options: Sequence[Option]) -> list[tuple[str, list[Option]]]:
    """(heading, options) for each verdict group that has options, in :data:`VERDICT_GROUPS` order."""
    grouped = [(heading, [o for o in options if o.verdict_group == group]) for group, heading in VERDICT_GROUPS]
    return [(heading, group) for heading, group in grouped if group]


def stance_data(s: Stance) -> dict[str, Any]:
    return {
        "source": s.source,
        "text": s.text,
        "verdict": s.verdict,
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
        "verified": s.verified,
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
        "status_label": status_word(f),
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
        "gate": s.gate,
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
        "relevant": o.relevant,
        "gate": o.gate,
        "indication": o.indication,
        "guideline_verdict": o.stance.verdict,
        "verdict_group": o.verdict_group,
        "stances_concern": o.stances_concern,
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
        "bracket": [{"age": age, "percent": percent} for age, percent in p.bracket],
        "age": p.age,
        "losses": p.losses,
        "explanation": p.explanation,
        "validity": p.validity,
        "overall": [statement_data(s) for s in p.overall],
        "citations": list(p.citations),
    }


def finding_keys(f: Finding) -> list[str]:
    """The citation keys a finding shows: its own, its stances', and (when assessed) its evidence's."""
    keys = [*f.citations, *(k for s in shown_stances(f) for k in s.citations)]
    if f.status is not Status.NOT_ASSESSED:
        keys += [k for s in f.statements for k in s.citations]
        keys += [k for p in f.population for k in p.citations]
    return keys


def step_keys(step: NextStep) -> list[str]:
    return [*step.citations, *(k for s in step.stances for k in s.citations)]


def option_keys(o: Option) -> list[str]:
    return [*(k for s in o.stances for k in s.citations), *(k for s in o.statements for k in s.citations)]


def prognosis_keys(p: Prognosis) -> list[str]:
    return [*p.citations, *(k for s in p.overall for k in s.citations)]


def cited_keys(a: Assessment) -> list[str]:
    """Every citation key the outputs show, in order of first appearance (findings, steps, options, prognosis)."""
    keys = [k for f in a.findings for k in finding_keys(f)]
    keys += [k for s in a.next_steps for k in step_keys(s)]
    keys += [k for o in a.options for k in option_keys(o)]
    keys += [k for p in a.prognosis for k in prognosis_keys(p)]
    return list(dict.fromkeys(keys))


def _shown_unverified(a: Assessment) -> bool:
    statements: list[Statement] = [s for f in a.findings for s in f.statements]
    statements += [s for o in a.options for s in o.statements] + [s for p in a.prognosis for s in p.overall]
    stances = [s for f in a.findings for s in shown_stances(f)] + [s for step in a.next_steps for s in step.stances]
    stances += [s for o in a.options for s in o.stances]
    return any(not s.verified for s in stances) or any(not s.verified for s in statements)


def verification_notes(a: Assessment, kb: KnowledgeBase) -> list[str]:
    """The sentences saying, once, that some references or statements could not be checked."""
    out = []
    if any(not kb.citation(k).verified for k in cited_keys(a)):
        out.append(UNVERIFIED_CITATION)
    if _shown_unverified(a):
        out.append(UNVERIFIED_STANCE)
    return out


def pathway_data(p: Pathway) -> dict[str, Any]:
    return {
        "rpl": p.rpl,
        "rif": p.rif,
        "workup_indicated": p.workup_indicated,
        "unexplained_rpl": p.unexplained_rpl,
        "explained": p.explained,
        "reason": p.reason,
        "verdict": p.verdict,
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
                "losses_counted_max": c.losses_counted_max,
                "losses_shown": c.losses_shown,
                "counts": c.losses_label,
                "definition": c.rpl_definition,
            },
            "rif": {
                "status": c.rif.value,
                "status_label": findings[c.rif_definition].status_label,
                "failed_transfers": c.failed_transfers,
                "counts": c.transfers_label,
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
_VALUE_STYLE = {True: "bold red", False: "green", None: "yellow"}


def _pct(x: float) -> str:
    return f"{x:g} %"


class Block:
    """Paragraphs whose wrapped lines keep their indent (Rich wraps a Text to column 0), without padding lines
    with trailing spaces: each entry is (indent, hanging indent of its continuation lines, text)."""

    def __init__(self, entries: Sequence[tuple[int, int, Text]] = ()) -> None:
        self.entries = list(entries)

    def add(self, text: Text, indent: int = 0, hang: int = 0) -> Block:
        self.entries.append((indent, hang, text))
        return self

    def nest(self, other: Block, indent: int) -> Block:
        self.entries += [(i + indent, h, t) for i, h, t in other.entries]
        return self

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for indent, hang, text in self.entries:
            width = max(options.max_width - indent - hang, 20)
            for n, line in enumerate(text.wrap(console, width)):
                line.rstrip()
                yield Text(" " * (indent + (hang if n else 0))) + line


class _TextWriter:
    """Builds the terminal text: one flowing column (no table cells), so that ids and text never get cut."""

    def __init__(self, a: Assessment, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.refs = {k: i + 1 for i, k in enumerate(cited_keys(a))}

    def cite(self, keys: Iterable[str]) -> str:
        numbers = [str(self.refs[k]) for k in dict.fromkeys(keys) if k in self.refs]
        return f" [{','.join(numbers)}]" if numbers else ""

    def stance(self, s: Stance) -> Text:
        out = Text()
        out.append(f"{s.source}{'' if s.verified else '†'} ({s.strength}; {s.verdict}): ", style="italic")
        out.append(f"{s.text}{self.cite(s.citations)}")
        if s.note:
            out.append(f" Note: {s.note}", style="dim")
        return out

    def statement(self, s: Statement) -> Text:
        label = "clinic protocol" if s.source == "clinic_protocol" else None
        label = label or BEARING_LABELS.get(s.bearing or "") or SOURCE_LABELS.get(s.source, s.source)
        out = Text()
        out.append(f"{label}{'' if s.verified else '†'}: ", style="bold" if s.bearing == "against" else "")
        out.append(f"{s.text}{self.cite(s.citations)}")
        return out

    def finding(self, f: Finding) -> Block:
        head = Text()
        head.append(f"[{status_word(f)}] ", style=_STATUS_STYLE[f.status])
        head.append(f.title, style="bold")
        out = Block().add(head)
        body: list[Text] = [Text(f.summary)]
        if f.status is Status.NOT_ASSESSED and f.missing_labels:
            body.append(Text(f"missing: {'; '.join(f.missing_labels)}", style="yellow"))
        body += [Text(f"context: {ctx}", style="dim") for ctx in f.context]
        body += [self.stance(s) for s in shown_stances(f)]
        if f.status is not Status.NOT_ASSESSED:
            body += [self.statement(s) for s in f.statements]
            for p in f.population:
                n = f", n = {p.n:,}" if p.n else ""
                derived = f" ({p.derived})" if p.derived else ""
                cited = self.cite(p.citations)
                body.append(Text(f"how common: {p.genotype}: {_pct(p.percent)} of {p.population}{n}{derived}{cited}"))
        body.append(Text(f"rule {f.rule_id} · {f.evidence_level}{self.cite(f.citations)}", style="dim"))
        for text in body:
            out.add(text, indent=2)
        return out.add(Text(""))

    def step(self, s: NextStep) -> Block:
        out = Block().add(Text(f"- {s.text}{self.cite(s.citations)}"), hang=2)
        if s.indication:
            out.add(Text(f"({s.indication})", style="dim"), indent=2)
        for x in s.stances:
            out.add(self.stance(x), indent=2)
        return out

    def option(self, o: Option) -> Block:
        out = Block().add(Text(f"- {o.title}", style="bold"), hang=2)
        if o.indication:
            out.add(Text(f"({o.indication})", style="dim"), indent=2)
        if o.stances_concern:
            out.add(Text(f"The guidelines' stances below concern {o.stances_concern}.", style="dim"), indent=2)
        for s in o.stances:
            out.add(self.stance(s), indent=2)
        for st in o.statements:
            out.add(self.statement(st), indent=2)
        return out

    def items(self, title: str, steps: Sequence[NextStep], options: Sequence[Option]) -> list[RenderableType]:
        out: list[RenderableType] = []
        if not steps and not options:
            return out
        if title:
            out.append(Block().add(Text(f"\n{title}", style="bold underline")))
        if steps:
            out.append(Text("\nNext steps", style="bold"))
            out += [Block().nest(self.step(s), 2) for s in steps]
        for heading, group in options_by_verdict(options):
            out.append(Block().add(Text(f"\n{heading}. {NOT_A_DIRECTIVE}", style="bold")))
            out += [Block().nest(self.option(o), 2) for o in group]
        return out


def _count(n: int | str | None, label: str, after: str) -> str:
    """``losses counted: 1`` (never "1 losses"), ``failed transfers: 3``."""
    if n is None:
        return ""
    return f"{label}{f' {after}' if after else ''}: {n}"


def _pathway_text(a: Assessment) -> Text:
    c, p = a.classification, a.pathway
    findings = {f.rule_id: f for f in a.findings}
    out = Text()
    for name, value, rule_id, count in (
        ("RPL", p.rpl, c.rpl_definition, _count(c.losses_shown, c.losses_label, "counted")),
        ("RIF", p.rif, c.rif_definition, _count(c.failed_transfers, c.transfers_label, "")),
    ):
        out.append(f"{name}: ")
        out.append(WORDS["definition"][value], style=_VALUE_STYLE[value])
        detail = "; ".join(x for x in (count, findings[rule_id].title) if x)
        out.append(f" ({detail})\n")
    out.append("Work-up: ", style="bold")
    out.append(WORDS["workup"][p.workup_indicated], style=_VALUE_STYLE[p.workup_indicated])
    out.append(f" - {p.verdict}\n")
    if p.rpl:
        out.append(f"Unexplained RPL: {WORDS['yes_no'][p.unexplained_rpl]}\n")
    return out


def _prognosis_text(w: _TextWriter, p: Prognosis) -> list[RenderableType]:
    out = Block().add(Text(f"\n{p.title}", style="bold underline"))
    if p.percent is not None:
        out.add(Text(f"{p.measure}: {_pct(p.percent)}", style="bold"), indent=2)
    out.add(Text(f"{p.explanation}{w.cite(p.citations)}"), indent=2)
    for s in p.overall:
        out.add(w.statement(s), indent=2)
    out.add(Text(f"valid for: {p.validity}", style="dim"), indent=2)
    return [out]


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
        if items:
            parts.append(Text(f"\n{title}\n", style="bold underline"))
            parts.extend(w.finding(f) for f in items)

    parts += w.items("", [s for s in a.next_steps if s.indicated], [o for o in a.options if o.relevant])
    for p in a.prognosis:
        parts += _prognosis_text(w, p)
    parts += w.items(
        not_indicated_heading(a.pathway.workup_indicated),
        [s for s in a.next_steps if not s.indicated],
        [o for o in a.options if not o.relevant],
    )

    refs = Text("\nReferences\n", style="bold")
    for key, n in w.refs.items():
        c = kb.citation(key)
        refs.append(f"  [{n}]{'' if c.verified else '*'} {c.to_string()}\n")
    for note in verification_notes(a, kb):
        refs.append(f"  {note}\n", style="dim")
    parts.append(refs)
    parts.append(Panel(SCOPE, style="dim"))
    return Group(*parts)
