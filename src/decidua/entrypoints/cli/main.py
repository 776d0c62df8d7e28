"""The ``decidua`` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from decidua.entrypoints.cli import assess as assess_cli
from decidua.entrypoints.cli import batch as batch_cli
from decidua.entrypoints.cli import cohort, fhir, hla, kir, lab
from decidua.entrypoints.cli import db as db_cli
from decidua.entrypoints.cli import kb as kb_cli
from decidua.entrypoints.cli import match as match_cli
from decidua.entrypoints.cli import report as report_cli
from decidua.entrypoints.cli import serve as serve_cli
from decidua.entrypoints.cli import users as users_cli
from decidua.entrypoints.cli.common import set_plain

app = typer.Typer(
    name="decidua",
    help="Decision support for NK-cell and alloimmune causes of recurrent pregnancy loss (RPL) and "
    "implantation failure (RIF). Not a diagnosis, not a prescription.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(show: bool) -> None:
    if show:
        from decidua import __version__
        from decidua.immunogenetics.releases import releases
        from decidua.knowledge.loader import load_kb

        data = ", ".join(r.label for r in releases())
        typer.echo(f"decidua {__version__}, knowledge base {load_kb().kb_version}, reference data {data}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and the data in use."),
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            envvar="DECIDUA_PLAIN",
            help="Tables as tab-separated lines (header, one line per row, nothing cut): for grep, cut, spreadsheets.",
        ),
    ] = False,
) -> None:
    """Decision support for NK-cell and alloimmune causes of recurrent pregnancy loss (RPL) and implantation failure
    (RIF). Not a diagnosis, not a prescription."""
    set_plain(plain)


app.command("assess")(assess_cli.assess_command)
app.command("schema")(assess_cli.schema_command)
app.command("batch")(batch_cli.batch_command)
app.command("match")(match_cli.match_command)
app.command("report")(report_cli.report_command)
app.command("serve")(serve_cli.serve_command)

# --- sub-command groups (one module each) ---
app.add_typer(kb_cli.app, name="kb", help="Review the knowledge base in force.")
app.add_typer(kir.app, name="kir", help="Interpret a KIR gene-content typing (AA/Bx, Cen/Tel, B content).")
app.add_typer(fhir.app, name="fhir", help="HL7 FHIR R4: export a case and its assessment, import a case.")
app.add_typer(
    hla.app, name="hla", help="HLA class I typings: KIR ligands, leader -21, resolution levels (IPD-IMGT/HLA); HML in."
)
app.add_typer(lab.app, name="lab", help="Laboratory results from HL7 v2 ORU^R01 messages (LOINC-coded).")
app.add_typer(
    cohort.app,
    name="cohort",
    help="Research on a cohort: reference intervals, cut-off performance, associations, the KIR/HLA-C scan.",
)
app.add_typer(db_cli.app, name="db", help="Back up the web application's database to one file, and restore it.")
app.add_typer(
    users_cli.app,
    name="users",
    help="Accounts of the web application: add (the first admin), list, change role or activity, set a password.",
)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # python -m decidua.entrypoints.cli.main
    main()
