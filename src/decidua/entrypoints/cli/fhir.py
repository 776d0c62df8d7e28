"""``decidua fhir``: export a case and its assessment as an HL7 FHIR R4 Bundle, and import a case from one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import err_console, input_errors

# fhir.resources (~50 ms), Polars and pydantic are imported by the command that runs (start-up time).

app = typer.Typer(no_args_is_help=True)


@app.command("export")
def export_command(
    case: Annotated[Path, typer.Argument(help="Case file (JSON or YAML).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Bundle file to write (JSON).", show_default=False)],
    kb_override: KbOverride = None,
) -> None:
    """Write a Bundle: Patient, Conditions, Observations (lab results, genotypes) and the assessment."""
    from decidua.adapters.batchio import atomic_path
    from decidua.adapters.fhir import export_bundle
    from decidua.app.casefile import read_case
    from decidua.engines.assess import assess
    from decidua.knowledge.loader import load_kb

    with input_errors():
        kb = load_kb(kb_override)
        the_case = read_case(case)
        bundle = export_bundle(the_case, assess(the_case, kb), kb)
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", "utf-8")
    err_console.print(f"bundle written: {output} ({len(bundle['entry'])} resources)")


@app.command("import")
def import_command(
    bundle: Annotated[Path, typer.Argument(help="Bundle file (JSON).", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Case file to write (YAML or JSON).")] = None,
) -> None:
    """Build a case file from a Bundle written by ``decidua fhir export``."""
    import yaml

    from decidua.adapters.batchio import atomic_path
    from decidua.adapters.fhir import import_bundle
    from decidua.app.casefile import case_to_data, load_data

    with input_errors():
        case = import_bundle(load_data(bundle))
        data = case_to_data(case)
        text = (
            json.dumps(data, indent=2, ensure_ascii=False) + "\n"
            if output is not None and output.suffix.lower() == ".json"
            else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        )
        if output is None:
            sys.stdout.write(text)
            return
        with atomic_path(output) as tmp:
            tmp.write_text(text, "utf-8")
    err_console.print(f"case written: {output}")
