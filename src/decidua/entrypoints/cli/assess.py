"""``decidua assess`` and ``decidua schema``: one case in, an evidence-cited assessment out."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from decidua.entrypoints.cli.common import input_errors, out_console, print_json

# The modules a command needs are imported when it runs (start-up time: ``decidua --help`` imports every command
# module, and ``decidua assess -f json`` needs no terminal rendering).


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


KbOverride = Annotated[
    Path | None,
    typer.Option(
        "--kb-override", help="A clinic's override file of local thresholds and choices (YAML).", show_default=False
    ),
]


def assess_command(
    case: Annotated[Path, typer.Argument(help="Case file (JSON or YAML).", show_default=False)],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.TEXT,
    kb_override: KbOverride = None,
) -> None:
    """Assess one case: classification, findings with evidence, next investigations, options."""
    from decidua.app.casefile import read_case
    from decidua.engines.assess import assess
    from decidua.knowledge.loader import load_kb

    with input_errors():
        kb = load_kb(kb_override)
        result = assess(read_case(case), kb)
    if output_format is OutputFormat.JSON:
        from decidua.app.presenters import assessment_data

        print_json(assessment_data(result, kb))
    else:
        from decidua.adapters.render import assessment_text

        out_console.print(assessment_text(result, kb))


def schema_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Print the JSON Schema of a case file."""
    from decidua.app.casefile import case_schema

    schema = case_schema()
    if output is None:
        print_json(schema)
    else:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(json.dumps(schema, indent=2) + "\n", "utf-8")
        tmp.replace(output)
