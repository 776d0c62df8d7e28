"""``decidua kb``: review the knowledge base in force."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from decidua.adapters.cli.assess import KbOverride
from decidua.adapters.cli.common import input_errors, out_console, print_json
from decidua.adapters.render import UNVERIFIED_CITATION, UNVERIFIED_STANCE, citation_data
from decidua.knowledge.loader import KnowledgeBase, load_kb
from decidua.knowledge.schema import CountRule, RangeRule, Rule, StanceSpec, StatementSpec, ThresholdRule

app = typer.Typer(no_args_is_help=True)

PATHWAY_GATE = (
    "The pathway gate decides first whether the work-up applies: RPL met under the RPL definition in force, or RIF "
    "met under the RIF definition in force. Met: the RPL (or RIF) steps and the immunomodulatory options are "
    "indicated. Neither met: they are listed apart as not indicated, with the reason, and the results are shown for "
    "information. A history that is not recorded is 'cannot tell', never 'not met'. RPL is unexplained when none of "
    "the findings that explain losses is flagged and the investigations every woman with RPL should have are done."
)


def _parameters(rule: Rule) -> str:
    match rule:
        case CountRule():
            return f"sum({', '.join(rule.count)}) >= {rule.at_least}"
        case ThresholdRule():
            sign = ">" if rule.direction == "above" else "<"
            bands = "; ".join(f"{b.label}: {sign} {b.value:g}" for b in rule.bands)
            base = f"{rule.input} {sign} {rule.value:g} {rule.unit}"
            return f"{bands}; otherwise {base}" if bands else base
        case RangeRule():
            when = f" ({rule.applies_label})" if rule.applies_label else ""
            return f"{rule.input} outside {rule.low:g}-{rule.high:g} {rule.unit}{when}"
    return "criteria on " + ", ".join(rule.inputs)


_STATUS_WORDS = {"flagged": "flagged (met)", "within_range": "not flagged (not met)", "not_assessed": "not assessed"}


def describe_trigger(cond: Any) -> str:
    """A trigger in words: ``{any: [{flagged: group:nk}, ...]}`` -> ``group:nk flagged (met) or ...``."""
    if not isinstance(cond, dict):
        return str(cond)
    if "any" in cond or "all" in cond:
        key = "any" if "any" in cond else "all"
        parts = [describe_trigger(c) for c in cond[key]]
        return "(" + (" or " if key == "any" else " and ").join(parts) + ")" if len(parts) > 1 else parts[0]
    if "not" in cond:
        return f"not {describe_trigger(cond['not'])}"
    ((key, ref),) = cond.items()
    return f"{ref} {_STATUS_WORDS.get(key, key)}"


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
                "parameters": _parameters(r),
            }
            for r in kb.rules
        ],
        "steps": [s.model_dump(mode="json", exclude_none=True) for s in kb.steps],
        "options": [o.model_dump(mode="json", exclude_none=True) for o in kb.options],
        "prognosis": [p.model_dump(mode="json", exclude_none=True) for p in kb.prognosis],
        "citations": {k: citation_data(kb, k) for k in sorted(kb.citations)},
    }


def _stance_lines(out: Text, stances: tuple[StanceSpec, ...], indent: str) -> None:
    for s in stances:
        mark = "" if s.verified else "†"
        out.append(f"{indent}stance, {s.source}{mark} ({s.strength}): ", style="italic")
        out.append(f"{s.text} [{', '.join(s.cites)}]\n")


def _statement_lines(out: Text, statements: tuple[StatementSpec, ...], indent: str) -> None:
    for s in statements:
        label = {"supports": "evidence for", "against": "evidence against", "neutral": "evidence"}.get(
            s.bearing or "", s.source.replace("_", " ")
        )
        out.append(f"{indent}{label}: {s.text} [{', '.join(s.cites)}]\n")


def kb_text(kb: KnowledgeBase) -> list[Text]:
    """The knowledge base as flowing text: every id on a line of its own, so that nothing is cut at any width."""
    blocks: list[Text] = []
    head = Text()
    head.append(f"{kb.title} version {kb.kb_version}\n", style="bold")
    for line in kb.overrides:
        head.append(f"local override: {line}\n", style="magenta")
    head.append("\nPathway gate\n", style="bold underline")
    head.append(f"{PATHWAY_GATE}\n")
    head.append(f"RPL definition in force: {kb.selected['rpl_definition']}\n")
    head.append(f"RIF definition in force: {kb.selected['rif_definition']}\n")
    if kb.unexplained_rpl is not None:
        head.append(f"explained by a flag of: {', '.join(kb.unexplained_rpl.explained_by)}\n")
        head.append(f"needs assessed: {', '.join(kb.unexplained_rpl.requires)}\n")
    head.append("\nChoices", style="bold underline")
    head.append(" (select another with an override file: choices: {name: rule_id})\n")
    for name, c in kb.choices.items():
        head.append(f"{name}: {kb.selected[name]}\n  {c.label}; alternatives: ")
        head.append(", ".join(r.id for r in kb.rules if r.choice == name and r.id != kb.selected[name]) + "\n")
    blocks.append(head)

    rules = Text("\nRules\n", style="bold underline")
    for r in kb.rules:
        active = "active" if r in kb.active_rules else f"alternative of choice {r.choice}"
        rules.append(f"\n{r.id}\n", style="bold")
        rules.append(f"  {r.title} ({active})\n")
        rules.append(f"  parameters: {_parameters(r)}{'' if r.verified else ' [value not verified]'}\n")
        rules.append(f"  evidence: {r.evidence_level}; cites: {', '.join(r.cites)}\n")
        if r.note:
            rules.append(f"  note: {r.note}\n", style="dim")
        _stance_lines(rules, r.stances, "  ")
        _statement_lines(rules, r.statements, "  ")
        for p in r.population:
            rules.append(f"  how common: {p.genotype}: {p.percent:g} % of {p.population} [{', '.join(p.cites)}]\n")
    blocks.append(rules)

    steps = Text("\nNext steps\n", style="bold underline")
    for s in kb.steps:
        gate = f"; for patients who meet {' or '.join(p.upper() for p in s.pathways)}" if s.pathways else ""
        steps.append(f"\n{s.id}\n", style="bold")
        steps.append(f"  {s.kind}{gate}: {s.text} [{', '.join(s.cites)}]\n")
        steps.append(f"  when: {describe_trigger(s.when)}\n", style="dim")
        _stance_lines(steps, s.stances, "  ")
    blocks.append(steps)

    options = Text("\nOptions (shown with the guidelines' stances; never a directive)\n", style="bold underline")
    for o in kb.options:
        gate = f"; for patients who meet {' or '.join(p.upper() for p in o.pathways)}" if o.pathways else ""
        options.append(f"\n{o.id}\n", style="bold")
        options.append(f"  {o.title} ({o.kind}{gate})\n")
        options.append(f"  when: {describe_trigger(o.when)}\n", style="dim")
        _stance_lines(options, o.stances, "  ")
        _statement_lines(options, o.statements, "  ")
    blocks.append(options)

    if kb.prognosis:
        prognosis = Text("\nPrognosis\n", style="bold underline")
        for spec in kb.prognosis:
            prognosis.append(f"\n{spec.id}\n", style="bold")
            prognosis.append(
                f"  {spec.title}: {spec.measure}; {len(spec.cells)} cells shipped [{', '.join(spec.cites)}]\n"
            )
            prognosis.append(f"  valid for: {spec.validity}\n", style="dim")
        blocks.append(prognosis)

    refs = Text("\nCitations\n", style="bold underline")
    for key in sorted(kb.citations):
        cited = kb.citation(key)
        refs.append(f"{key}{'' if cited.verified else ' *'}\n", style="bold")
        refs.append(f"  {cited.to_string()}\n")
    refs.append(f"{UNVERIFIED_CITATION}\n{UNVERIFIED_STANCE}\n", style="dim")
    blocks.append(refs)
    return blocks


@app.command("show")
def show(
    kb_override: KbOverride = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole knowledge base as JSON.")] = False,
) -> None:
    """Show the pathway gate, rules, stances, steps, options and citations in force."""
    with input_errors():
        kb = load_kb(kb_override)
    if as_json:
        print_json(kb_data(kb))
        return
    for block in kb_text(kb):
        out_console.print(block)
