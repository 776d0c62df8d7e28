"""``decidua kb``: review the knowledge base in force."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from decidua.adapters.cli.assess import KbOverride
from decidua.adapters.cli.common import input_errors, out_console, print_json
from decidua.adapters.render import citation_data
from decidua.knowledge.loader import KnowledgeBase, load_kb
from decidua.knowledge.schema import CountRule, RangeRule, Rule, ThresholdRule

app = typer.Typer(no_args_is_help=True)


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


def kb_data(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "kb_version": kb.kb_version,
        "overrides": list(kb.overrides),
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
        "options": [o.model_dump(mode="json", exclude_none=True) for o in kb.options],
        "citations": {k: citation_data(kb, k) for k in sorted(kb.citations)},
    }


@app.command("show")
def show(
    kb_override: KbOverride = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole knowledge base as JSON.")] = False,
) -> None:
    """Show the rules, thresholds, choices and citations in force."""
    with input_errors():
        kb = load_kb(kb_override)
    if as_json:
        print_json(kb_data(kb))
        return
    out_console.print(f"[bold]{kb.title}[/] version [bold]{kb.kb_version}[/]")
    for line in kb.overrides:
        out_console.print(f"[magenta]local override:[/] {line}")
    table = Table(expand=True, show_lines=True)
    for col in ("rule", "active", "parameters", "evidence", "cites"):
        table.add_column(col)
    for r in kb.rules:
        active = "yes" if r in kb.active_rules else f"alternative ({r.choice})"
        flag = "" if r.verified else " [value not verified]"
        table.add_row(f"{r.id}\n{r.title}", active, _parameters(r) + flag, r.evidence_level, ", ".join(r.cites))
    out_console.print(table)
    out_console.print("[bold]Choices[/] (select another with an override file: choices: {name: rule_id})")
    for name, c in kb.choices.items():
        out_console.print(f"  {name}: {kb.selected[name]}  ({c.label})")
    out_console.print("[bold]Citations[/]")
    for key in sorted(kb.citations):
        out_console.print(f"  {key}: {kb.citation(key).to_string()}", markup=False)
