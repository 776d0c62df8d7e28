"""``decidua batch``: assess a cohort file (one row per case) with the column-wise engine."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from decidua.core.findings import Status
from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import err_console, fail, input_errors, print_json, print_table

# Polars, Dask, rich's widgets, the engine and the file adapters are imported when the command runs, so that
# ``decidua --help`` and the other commands do not load them; the key column's default is written out here for
# the same reason.
DEFAULT_KEY = "case_id"  # decidua.engines.batch.DEFAULT_KEY (a test checks that they agree)
PROGRESS_FROM_ROWS = 500_000  # inputs longer than this get a progress bar

# Signals that end a run through its cleanup (the work folder removed, the earlier outputs left as they were).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM, SIGINT and SIGHUP into ``SystemExit(128 + signal)`` raised in the main thread, so that a
    stopped run leaves through its ``finally`` blocks (without a handler, SIGTERM ends the process on the spot and
    leaves the work folder behind). Further signals are ignored while the cleanup runs; SIGKILL cannot be caught,
    and the next run removes what it leaves."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Engine(StrEnum):
    POLARS = "polars"
    DASK = "dask"


def row_schema(key: str = DEFAULT_KEY) -> dict[str, Any]:
    """JSON Schema of one input row of the flat layout."""
    from decidua.core.cells import CELL_HELP_SHORT, GENE_CELL_HELP_SHORT
    from decidua.engines.batch import HLA_COLUMNS, INPUT_FEATURES, KIR_COLUMNS

    types = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
    props: dict[str, Any] = {key: {"type": "string", "description": "case key, copied to the output"}}
    for name, description in HLA_COLUMNS.items():
        props[name] = {"type": ["string", "null"], "description": description}
    for f in INPUT_FEATURES:
        prop: dict[str, Any] = {"type": [types[f.dtype], "null"], "description": f.description}
        if f.unit:
            prop["description"] += f" [{f.unit}]"
        if f.dtype == "bool":
            words = GENE_CELL_HELP_SHORT if f.name in KIR_COLUMNS else CELL_HELP_SHORT
            prop["description"] += f"; in a text file (CSV, Excel text cells): {words}"
        if f.categories:
            prop["enum"] = [*f.categories, None]
        if f.low is not None:
            prop["minimum"] = f.low
        if f.high is not None:
            prop["maximum"] = f.high
        props[f.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "decidua batch input row",
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": props,
    }


def _print_columns() -> None:
    from rich.table import Table

    from decidua.core.cells import CELL_HELP_SHORT, GENE_CELL_HELP_SHORT
    from decidua.engines.batch import HLA_COLUMNS, INPUT_FEATURES, KIR_COLUMNS

    table = Table(title="decidua batch input layout (one row per case; null/empty = not recorded)", expand=True)
    # the column names are what a user types: printed whole (never cut), the other cells folded
    names = [DEFAULT_KEY, *HLA_COLUMNS, *(f.name for f in INPUT_FEATURES)]
    table.add_column("column", no_wrap=True, min_width=max(map(len, names)))
    for col in ("type", "unit", "allowed", "meaning"):
        table.add_column(col, overflow="fold")
    table.add_row(DEFAULT_KEY, "text", "", "required, unique per case", "case key (--key to use another column)")
    for name, description in HLA_COLUMNS.items():
        table.add_row(name, "text", "", "GL String", description)
    for f in INPUT_FEATURES:
        if f.categories:
            allowed = ", ".join(f.categories)
        elif f.low is not None:
            allowed = f"{f.low:g} to {f.high:g}"
        else:
            words = GENE_CELL_HELP_SHORT if f.name in KIR_COLUMNS else CELL_HELP_SHORT
            allowed = words if f.dtype == "bool" else ""
        table.add_row(f.name, f.dtype, f.unit or "", allowed, f.description)
    print_table(table)


def batch_command(
    input_path: Annotated[
        Path | None, typer.Argument(help="Cohort file: CSV, Parquet or Excel.", show_default=False)
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Result file: .parquet or .csv.")] = None,
    engine: Annotated[Engine, typer.Option(help="Polars on this machine, or Dask on a cluster.")] = Engine.POLARS,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:8786); default: a local cluster.")
    ] = None,
    key: Annotated[str, typer.Option(help="Name of the key column.")] = DEFAULT_KEY,
    allow_extra: Annotated[bool, typer.Option("--allow-extra", help="Ignore columns outside the layout.")] = False,
    kb_override: KbOverride = None,
    columns: Annotated[bool, typer.Option("--columns", help="Print the input column layout and exit.")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of an input row and exit.")] = False,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1000, help="Rows per morsel of the local engine's streaming (default: 75000).", show_default=False
        ),
    ] = None,
) -> None:
    """Assess a cohort: one status column per finding, a rejects file for invalid rows, a summary.

    The results and the rejects file (NAME.rejects.SUFFIX, always written, empty when no row is rejected) are
    replaced together, results last; a run that is stopped (Ctrl+C, SIGTERM) leaves the earlier outputs as they
    were and removes its hidden work folder, and a run that is killed leaves a work folder that the next run
    removes.
    """
    if columns:
        _print_columns()
        return
    if schema:
        print_json(row_schema(key))
        return
    if input_path is None or output is None:
        fail("give INPUT and -o OUTPUT (or --columns / --schema)")
    with input_errors(), stopped_by_signals():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from decidua.adapters.batchio import output_kind, row_count, run_to_files, scan_input
        from decidua.knowledge.loader import load_kb

        output_kind(output)
        kb = load_kb(kb_override)
        started = time.perf_counter()
        if engine is Engine.DASK:
            from decidua.adapters.cluster import run_dask_to_files

            run = run_dask_to_files(input_path, kb, output, scheduler, key, allow_extra, inputs=[input_path])
        else:
            frame = scan_input(input_path)
            total = row_count(frame)
            with Progress(
                TextColumn("assessing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                # rich's live display enters its console as a context: the console itself, not a stand-in for it
                console=err_console if isinstance(err_console, Console) else Console(stderr=True),
                disable=total <= PROGRESS_FROM_ROWS,
            ) as progress:
                task = progress.add_task("rows", total=total)
                run = run_to_files(
                    frame,
                    kb,
                    output,
                    key,
                    allow_extra,
                    chunk_rows,
                    lambda done: progress.update(task, completed=done),
                    inputs=[input_path],
                )
        seconds = time.perf_counter() - started
    from rich.markup import escape
    from rich.table import Table

    from decidua.adapters.batchio import rejects_path

    table = Table(
        title=f"{run.assessed + run.rejected} rows in, {run.assessed} assessed, {run.rejected} rejected "
        f"({seconds:.2f} s; knowledge base {kb.kb_version})",
        title_justify="left",
    )
    for col, style in (("finding", ""), ("flagged", "red"), ("within_range", "green"), ("not_assessed", "yellow")):
        table.add_column(col, style=style, justify="left" if col == "finding" else "right")
    for finding, statuses in run.counts.items():
        table.add_row(finding, *(str(statuses.get(s.value, 0)) for s in Status))
    print_table(table, err_console)
    if run.layout.absent:
        absent = escape(", ".join(run.layout.absent))
        err_console.print(f"[yellow]columns not in the input (read as not recorded):[/] {absent}", markup=True)
    err_console.print(f"results: {output}\nrejects: {rejects_path(output)} ({run.rejected} rows)")
