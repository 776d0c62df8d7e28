"""``decidua kb``: review the knowledge base in force."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import input_errors, out_console, print_json

if TYPE_CHECKING:  # imported by the functions that use them (start-up time)
    from rich.console import RenderableType

    from decidua.adapters.render import Block
    from decidua.knowledge.loader import KnowledgeBase
    from decidua.knowledge.schema import StanceSpec, StatementSpec

app = typer.Typer(no_args_is_help=True)


def _stances(out: Block, stances: tuple[StanceSpec, ...]) -> None:
    from rich.text import Text

    for s in stances:
        text = Text()
        text.append(f"stance, {s.source}{'' if s.verified else '†'} ({s.strength}; {s.verdict}): ", style="italic")
        text.append(f"{s.text} [{', '.join(s.cites)}]")
        if s.note:
            text.append(f" Note: {s.note}", style="dim")
        out.add(text, indent=2)


def _statements(out: Block, statements: tuple[StatementSpec, ...]) -> None:
    from rich.text import Text

    from decidua.app.presenters import BEARING_LABELS, SOURCE_LABELS

    for s in statements:
        label = BEARING_LABELS.get(s.bearing or "") or SOURCE_LABELS.get(s.source, s.source)
        out.add(Text(f"{label}{'' if s.verified else '†'}: {s.text} [{', '.join(s.cites)}]"), indent=2)


def kb_text(kb: KnowledgeBase) -> list[RenderableType]:
    """The knowledge base as flowing text: every id on a line of its own, so that nothing is cut at any width."""
    from rich.text import Text

    from decidua.adapters.render import Block
    from decidua.app.presenters import PATHWAY_GATE, UNVERIFIED_CITATION, UNVERIFIED_STANCE, rule_parameters
    from decidua.knowledge.compile import describe_trigger

    head = Block()
    head.add(Text(f"{kb.title} version {kb.kb_version}", style="bold"))
    for line in kb.overrides:
        head.add(Text(f"local override: {line}", style="magenta"))
    head.add(Text("\nPathway gate", style="bold underline"))
    head.add(Text(PATHWAY_GATE))
    head.add(Text(f"RPL definition in force: {kb.selected['rpl_definition']}"))
    head.add(Text(f"RIF definition in force: {kb.selected['rif_definition']}"))
    if kb.unexplained_rpl is not None:
        head.add(Text(f"explained by a flag of: {', '.join(kb.unexplained_rpl.explained_by)}"), hang=2)
        head.add(Text(f"needs assessed: {', '.join(kb.unexplained_rpl.requires)}"), hang=2)
    head.add(Text("\nChoices (select another with an override file: choices: {name: rule_id})", style="bold"))
    for name, c in kb.choices.items():
        head.add(Text(f"{name}: {kb.selected[name]}"))
        others = ", ".join(r.id for r in kb.rules if r.choice == name and r.id != kb.selected[name])
        head.add(Text(f"{c.label}; alternatives: {others}"), indent=2)
    blocks: list[RenderableType] = [head]

    rules = Block().add(Text("\nRules", style="bold underline"))
    for r in kb.rules:
        active = "active" if r in kb.active_rules else f"alternative of choice {r.choice}"
        rules.add(Text(f"\n{r.id}", style="bold"))
        rules.add(Text(f"{r.title} ({active})"), indent=2)
        rules.add(Text(f"parameters: {rule_parameters(r)}{'' if r.verified else ' [value not verified]'}"), indent=2)
        rules.add(Text(f"evidence: {r.evidence_level}; cites: {', '.join(r.cites)}"), indent=2)
        if r.note:
            rules.add(Text(f"note: {r.note}", style="dim"), indent=2)
        _stances(rules, r.stances)
        _statements(rules, r.statements)
        for p in r.population:
            rules.add(
                Text(f"how common: {p.genotype}: {p.percent:g} % of {p.population} [{', '.join(p.cites)}]"), indent=2
            )
    blocks.append(rules)

    steps = Block().add(Text("\nNext steps", style="bold underline"))
    for step in kb.steps:
        gate = f"; for patients who meet {' or '.join(p.upper() for p in step.pathways)}" if step.pathways else ""
        steps.add(Text(f"\n{step.id}", style="bold"))
        steps.add(Text(f"{step.kind}{gate}: {step.text} [{', '.join(step.cites)}]"), indent=2)
        steps.add(Text(f"when: {describe_trigger(step.when)}", style="dim"), indent=2)
        for h in step.held_back:
            steps.add(Text(f"held back when: {describe_trigger(h.when)}", style="dim"), indent=2)
            steps.add(Text(f"because: {h.reason}", style="dim"), indent=2)
        _stances(steps, step.stances)
    blocks.append(steps)

    options = Block().add(
        Text("\nOptions (shown with the guidelines' stances; never a directive)", style="bold underline")
    )
    for o in kb.options:
        gate = f"; for patients who meet {' or '.join(p.upper() for p in o.pathways)}" if o.pathways else ""
        options.add(Text(f"\n{o.id}", style="bold"))
        options.add(Text(f"{o.title} ({o.kind}{gate})"), indent=2)
        options.add(Text(f"when: {describe_trigger(o.when)}", style="dim"), indent=2)
        for h in o.held_back:
            options.add(Text(f"held back when: {describe_trigger(h.when)}", style="dim"), indent=2)
            options.add(Text(f"because: {h.reason}", style="dim"), indent=2)
        if o.stances_concern is not None:
            options.add(Text(f"the guidelines' stances concern {o.stances_concern}", style="dim"), indent=2)
        _stances(options, o.stances)
        _statements(options, o.statements)
    blocks.append(options)

    if kb.prognosis:
        prognosis = Block().add(Text("\nPrognosis", style="bold underline"))
        for spec in kb.prognosis:
            prognosis.add(Text(f"\n{spec.id}", style="bold"))
            shipped = f"{len(spec.cells)} cells shipped [{', '.join(spec.cites)}]"
            prognosis.add(Text(f"{spec.title}: {spec.measure}; {shipped}"), indent=2)
            prognosis.add(Text(f"valid for: {spec.validity}", style="dim"), indent=2)
            for e in spec.excluded:
                prognosis.add(Text(f"no value when: {describe_trigger(e.when)}", style="dim"), indent=2)
                prognosis.add(Text(f"because: {e.reason}", style="dim"), indent=2)
        blocks.append(prognosis)

    refs = Block().add(Text("\nCitations", style="bold underline"))
    for key in sorted(kb.citations):
        cited = kb.citation(key)
        refs.add(Text(f"{key}{'' if cited.verified else ' *'}", style="bold"))
        refs.add(Text(cited.to_string()), indent=2)
        if cited.note:
            refs.add(Text(f"checked: {cited.note}", style="dim"), indent=2)
    refs.add(Text(UNVERIFIED_CITATION, style="dim"))
    refs.add(Text(UNVERIFIED_STANCE, style="dim"))
    blocks.append(refs)
    return blocks


@app.command("show")
def show(
    kb_override: KbOverride = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole knowledge base as JSON.")] = False,
) -> None:
    """Show the pathway gate, rules, stances, steps, options and citations in force."""
    from decidua.knowledge.loader import load_kb

    with input_errors():
        kb = load_kb(kb_override)
    if as_json:
        from decidua.app.presenters import kb_data

        print_json(kb_data(kb))
        return
    for block in kb_text(kb):
        out_console.print(block)
