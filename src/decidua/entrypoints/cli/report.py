"""``decidua report``: the assessment as a laboratory-style HTML or PDF report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import EXIT_INTERNAL, err_console, escape, fail, input_errors

FORMATS = (".html", ".pdf")


def report_command(
    case: Annotated[Path, typer.Argument(help="Case file (JSON or YAML).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Report file: .html or .pdf.", show_default=False)],
    kb_override: KbOverride = None,
    report_date: Annotated[
        str | None, typer.Option(help="Date printed on the report (YYYY-MM-DD); default: the case's test date.")
    ] = None,
) -> None:
    """Write a report a clinician can sign off: results, findings with evidence, plots, references."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        fail(f"{output}: unknown report format {output.suffix!r}; allowed: {', '.join(FORMATS)}")
    try:
        date = dt.date.fromisoformat(report_date) if report_date else None
    except ValueError:
        fail(f"--report-date: got {report_date!r}; allowed: a date as YYYY-MM-DD")
    from decidua.adapters.batchio import atomic_path
    from decidua.app.casefile import read_case
    from decidua.engines.assess import assess
    from decidua.knowledge.loader import load_kb

    with input_errors():
        kb = load_kb(kb_override)
        the_case = read_case(case)
        result = assess(the_case, kb)
        from decidua.adapters.report import PdfUnavailable, render_html, render_pdf

        try:
            with atomic_path(output) as tmp:
                if suffix == ".pdf":
                    tmp.write_bytes(render_pdf(the_case, result, kb, date))
                else:
                    tmp.write_text(render_html(the_case, result, kb, date), "utf-8")
        except PdfUnavailable as exc:
            fail(escape(str(exc)), EXIT_INTERNAL)  # the machine, not the input: nothing is written
    err_console.print(f"report written: {output}")
