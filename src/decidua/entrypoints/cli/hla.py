"""``decidua hla``: KIR-ligand groups of HLA class I typings, and rebuilding the table from a release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from decidua.adapters.batchio import atomic_path
from decidua.entrypoints.cli.common import err_console, input_errors, out_console, print_json
from decidua.immunogenetics.ligand_table import derive, render
from decidua.immunogenetics.ligands import TABLE_FILE, ligand_of

app = typer.Typer(no_args_is_help=True)


@app.command("ligand")
def ligand_command(
    alleles: Annotated[
        list[str], typer.Argument(help="HLA class I names or allele lists (C*07:02, Cw7, C*07:01/C*06:02).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: a list of {allele, ligand, ...}.")] = False,
) -> None:
    """KIR-ligand group of each typing: C1, C2, Bw4-80I, Bw4-80T, Bw6, none, unclassified, ambiguous, unknown."""
    with input_errors():
        calls = [ligand_of(a) for a in alleles]
    if as_json:
        print_json(
            [
                {
                    "allele": c.input,
                    "ligand": c.ligand.value,
                    "candidates": [x.value for x in c.candidates],
                    "reason": c.reason,
                    "release": c.release,
                }
                for c in calls
            ]
        )
        return
    table = Table(title=f"KIR-ligand groups ({calls[0].release})", title_justify="left")
    for col in ("typing", "ligand", "note"):
        table.add_column(col)
    for c in calls:
        table.add_row(c.input, c.ligand.value, c.reason or "")
    out_console.print(table)


@app.command("build-table")
def build_table_command(
    imgt: Annotated[Path, typer.Option("--imgt", help="Directory of an IPD-IMGT/HLA release.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=f"Where to write (default: the package's {TABLE_FILE}).")
    ] = None,
) -> None:
    """Rebuild the KIR-ligand table from an IPD-IMGT/HLA release (facts derived; the release is not copied)."""
    target = output or Path(__file__).resolve().parents[2] / "immunogenetics" / "data" / TABLE_FILE
    with input_errors():
        version, date, rows = derive(imgt)
        with atomic_path(target) as tmp:
            tmp.write_bytes(render(version, date, rows, "decidua hla build-table"))
    err_console.print(f"{target}: {len(rows)} rows from {version} ({date})")
