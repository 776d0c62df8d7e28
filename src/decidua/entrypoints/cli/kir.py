"""``decidua kir``: interpret a woman's KIR gene-content typing."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from decidua.entrypoints.cli.common import fail, input_errors, out_console, print_json, split_csv
from decidua.immunogenetics.kir import KirProfile, calls_from_lists, classify

app = typer.Typer(no_args_is_help=True)

_GENES_HELP = "Comma-separated KIR genes, with or without 'KIR' (e.g. 2DL1,KIR2DL3)"


def _text(profile: KirProfile) -> Table:
    def show(value: object) -> str:
        if value is None:
            return "[yellow]undetermined[/]"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    table = Table(title="KIR gene content", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    record = profile.to_record()
    rows = [
        ("genotype", "genotype (AA / Bx)"),
        ("cen", "centromeric motif"),
        ("tel", "telomeric motif"),
        ("b_content", "B-content score (0-4)"),
        ("b_content_group", "B-content group"),
        ("activating_count", "activating KIR"),
        ("has_2ds1", "KIR2DS1"),
        ("has_c1_receptor", "C1 receptor (2DL2/2DL3)"),
        ("has_c2_receptor", "C2 receptor (2DL1)"),
    ]
    for key, label in rows:
        table.add_row(label, show(record[key]))
    for key in ("present", "absent", "untested", "kir2ds4_variants"):
        if record[key]:
            table.add_row(key.replace("_", " "), ", ".join(record[key]))
    if profile.ipd_kir_release:
        table.add_row("alleles checked against", profile.ipd_kir_release)
    return table


@app.command("classify")
def classify_command(
    present: Annotated[
        str | None, typer.Option("--present", help=f"{_GENES_HELP}; IPD-KIR allele names also accepted.")
    ] = None,
    absent: Annotated[str | None, typer.Option("--absent", help=f"{_GENES_HELP} typed absent.")] = None,
    untested: Annotated[str | None, typer.Option("--untested", help=f"{_GENES_HELP} not tested.")] = None,
    gl: Annotated[
        str | None, typer.Option("--gl", help="A GL String in the 'kir' namespace, e.g. 'kir#2.13.0#KIR2DL1*001+...'.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Classify a KIR genotype: AA/Bx, Cen/Tel motifs, B-content group (Cooley et al. Blood 2010).

    Genes listed in no option count as absent (the kit typed all 16 loci); list the others with --untested.
    Values the rules cannot decide are reported as undetermined with the reason.
    """
    if not (present or absent or untested or gl):
        fail("give the typing: --present (and --absent / --untested) or --gl")
    with input_errors():
        calls = calls_from_lists(split_csv(present), split_csv(absent), split_csv(untested), gl_string=gl)
        profile = classify(calls)
    if as_json:
        print_json(profile.to_record())
        return
    out_console.print(_text(profile))
    for warning in profile.warnings:
        out_console.print(f"[yellow]warning:[/] {warning}", markup=True, highlight=False)
