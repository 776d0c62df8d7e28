"""``decidua lab``: laboratory results from HL7 v2 messages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from decidua.core.errors import CaseInvalid, InputError
from decidua.entrypoints.cli.common import (
    err_console,
    fail,
    input_errors,
    print_json,
    print_table,
    write_case_file,
)

app = typer.Typer(no_args_is_help=True)


@app.command("import")
def import_command(
    message_file: Annotated[Path, typer.Argument(help="An HL7 v2 ORU^R01 message (segments ending in CR or LF).")],
    case_file: Annotated[Path | None, typer.Option("--case", help="A case file to merge the results into.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the merged case file (YAML).")] = None,
    skip_unread: Annotated[
        bool,
        typer.Option("--skip-unread", help="Merge what was read even when some OBX segments were not (listed)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: the message, OBX by OBX.")] = False,
) -> None:
    """Read the LOINC-coded results of an ORU^R01 message (NK cells, anti-beta2GP1, lupus anticoagulant, TSH,
    TPO antibodies), OBX by OBX, and with --case/--out merge them into a case file.

    Each OBX segment says the case field it sets or why it was not read (a code, unit, flag or status decidua
    does not read); nothing is guessed. Merging refuses a message with unread segments unless --skip-unread.
    """
    if (case_file is None) != (out is None):
        fail("--case and --out go together: the case file to merge into and where to write it")
    from decidua.adapters.hl7 import decode_message, read_oru  # hl7apy only for this command (start-up time)
    from decidua.app.casefile import load_data
    from decidua.app.labs import merge_lab_values

    with input_errors():
        try:
            raw = message_file.read_bytes()
        except OSError as exc:
            raise InputError(f"{message_file}: cannot read: {exc.strerror}") from None
        text = decode_message(raw, str(message_file))
        message = read_oru(text, str(message_file))
        if case_file is not None and out is not None:
            if message.problems and not skip_unread:
                listed = "; ".join(f"OBX {r.segment} {r.code}: {r.problem}" for r in message.problems)
                raise InputError(
                    f"{message_file}: {len(message.problems)} segment(s) not read ({listed}); "
                    "fix them, or merge the rest with --skip-unread"
                )
            values = message.to_import().values
            data = load_data(case_file)
            if not isinstance(data, dict):
                raise InputError(f"{case_file}: not a case file (a mapping was expected)")
            merged = merge_lab_values(data, values)
            try:
                write_case_file(out, merged, [message_file, case_file], str(case_file))
            except CaseInvalid as exc:
                sources = "; ".join(f"OBX {v.segment} set {v.path}" for v in values)
                raise InputError(
                    f"{case_file} with the results of {message_file} is not valid ({sources}): {exc}"
                ) from None
    if as_json:
        print_json(message.to_record())
    else:
        ids = ", ".join(message.patient_ids) or "none"
        from rich.table import Table

        table = Table(
            title=f"{message_file.name}: message {message.control_id}, patient ids {ids}", title_justify="left"
        )
        for col in ("OBX", "code", "case field", "value", "note"):
            table.add_column(col, overflow="fold")
        for r in message.results:
            value = r.value if not isinstance(r.value, dict) else f"{r.value['value']:g} {r.value['unit']}"
            note = r.problem or (f"laboratory's reading: {r.reading}" if r.reading else "")
            table.add_row(str(r.segment), f"{r.code} {r.text}".strip(), r.path or "", str(value or ""), note)
        print_table(table)
    if out is not None:
        err_console.print(f"{out}: {case_file} with {len(message.read)} result(s) of message {message.control_id}")
