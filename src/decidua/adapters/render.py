"""Render an assessment as text for a terminal (rich), in the order and with the words of
:mod:`decidua.app.presenters`, which every output shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.text import Text

from decidua.app.presenters import (
    BEARING_LABELS,
    GROUP_TITLES,
    NOT_A_DIRECTIVE,
    SCOPE,
    SOURCE_LABELS,
    WORDS,
    cited_keys,
    display_group,
    not_indicated_heading,
    options_by_verdict,
    shown_stances,
    status_word,
    verification_notes,
)
from decidua.core.findings import (
    Assessment,
    Finding,
    NextStep,
    Option,
    Prognosis,
    Stance,
    Statement,
    Status,
)
from decidua.knowledge.loader import KnowledgeBase

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
                row = Text(" " * (indent + (hang if n else 0))) + line
                if options.justify is None and row.cell_len <= options.max_width:
                    # as segments: a Text yielded here would be wrapped once more (a tenth of `decidua assess`)
                    yield from row.render(console)
                    yield Segment.line()
                else:  # wider than the console (the indent leaves under 20 columns), or justified: Rich wraps it
                    yield row


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
    head.append(f"   knowledge base {a.kb_version}")
    if a.reference_data:
        head.append(f"\nreference data {', '.join(a.reference_data)}", style="dim")
    head.append("\n")
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
