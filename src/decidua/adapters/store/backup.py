"""Backups a clinic can trust: every user, case version, assessment and audit row in one portable file.

The file is gzip-compressed JSON Lines: a header (format, schema revision, when, row counts), then one line per
row, table by table in the order the foreign keys need. It is read in one snapshot of the database (SQLite: one
read transaction, which write-ahead logging keeps consistent while the server writes; PostgreSQL: one
``REPEATABLE READ`` transaction), so a backup taken during work holds each case with its versions, assessments,
summary and audit rows, or not at all. The same file restores into SQLite or PostgreSQL (so it also moves a clinic
from the embedded SQLite file to PostgreSQL). Sessions and failed-login counters are not kept: after a restore
everyone logs in again.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, inspect, select, text

from decidua.adapters.store.migrate import current_revision, upgrade
from decidua.adapters.store.models import (
    AssessmentRow,
    AuditRow,
    Base,
    CaseRow,
    CaseSummaryRow,
    CaseVersionRow,
    UserRow,
    UtcDateTime,
)
from decidua.core.errors import InputError

FORMAT = "decidua-backup"
FORMAT_VERSION = 1
TABLES: tuple[Table, ...] = tuple(
    Base.metadata.tables[m.__tablename__]
    for m in (UserRow, CaseRow, CaseVersionRow, AssessmentRow, CaseSummaryRow, AuditRow)
)  # in foreign-key order; sessions and login_throttle are left out on purpose (see the module docstring)


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds: the schema revision it was taken at, when, and the rows of each table."""

    revision: str
    taken_at: dt.datetime
    rows: dict[str, int]

    def describe(self) -> str:
        counts = ", ".join(f"{n:,} {name}" for name, n in self.rows.items())
        return f"schema {self.revision}, taken {self.taken_at:%Y-%m-%d %H:%M:%S} UTC: {counts}"


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _python(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """A row read back: datetimes from their ISO text, the rest as JSON gave them."""
    out = dict(row)
    for column in table.columns:
        value = out.get(column.name)
        if isinstance(value, str) and isinstance(column.type, UtcDateTime):
            out[column.name] = dt.datetime.fromisoformat(value)
    return out


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one state of the database."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite starts no transaction for reads by itself
            try:
                yield conn
            finally:
                conn.exec_driver_sql("COMMIT")
        else:
            snapshot = conn.execution_options(isolation_level="REPEATABLE READ")
            with snapshot.begin():
                yield snapshot


def backup(engine: Engine, out: Path, clock: Any = None) -> BackupSummary:
    """Write every table's rows to ``out`` (replaced as a whole: a failed backup leaves no partial file)."""
    revision = current_revision(engine)
    if revision is None:
        raise InputError("the database has no decidua tables: nothing to back up")
    taken_at = (clock or (lambda: dt.datetime.now(dt.UTC)))()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    rows: dict[str, int] = {}
    try:
        with _snapshot(engine) as conn, gzip.open(temporary, "wt", encoding="utf-8") as f:
            counts = {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}
            header = {"format": FORMAT, "version": FORMAT_VERSION, "revision": revision, "taken_at": taken_at}
            f.write(json.dumps({**header, "rows": counts}, default=_jsonable) + "\n")
            for table in TABLES:
                order = list(table.primary_key.columns)
                n = 0
                for row in conn.execute(select(table).order_by(*order)).mappings():
                    f.write(json.dumps({"table": table.name, "row": dict(row)}, default=_jsonable) + "\n")
                    n += 1
                rows[table.name] = n
        os.chmod(temporary, 0o600)  # patient data: readable by the clinic's backup account only
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return BackupSummary(revision, taken_at, rows)


def _lines(source: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(source, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{source}, line {n}: not a decidua backup line ({exc.msg})") from None
                if not isinstance(item, dict):
                    raise InputError(f"{source}, line {n}: not a decidua backup line")
                yield item
    except (OSError, EOFError) as exc:  # not gzip, truncated, unreadable
        raise InputError(f"{source}: not a readable decidua backup ({exc})") from None


def read_header(source: Path) -> BackupSummary:
    first = next(_lines(source), None)
    if first is None or first.get("format") != FORMAT:
        raise InputError(f"{source}: not a decidua backup (no {FORMAT} header)")
    if first.get("version") != FORMAT_VERSION:
        raise InputError(f"{source}: backup format {first.get('version')!r}; this decidua reads {FORMAT_VERSION}")
    return BackupSummary(str(first["revision"]), dt.datetime.fromisoformat(first["taken_at"]), dict(first["rows"]))


def _holds_data(engine: Engine) -> dict[str, int]:
    names = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t.name: n
            for t in TABLES
            if t.name in names and (n := conn.scalar(select(func.count()).select_from(t)) or 0)
        }


def restore(engine: Engine, source: Path) -> BackupSummary:
    """Restore ``source`` into the empty database behind ``engine``, then migrate it to this decidua's schema.

    The rows go in one transaction: a backup that turns out to be damaged half-way leaves the database empty.
    The numbers of cases, versions and users are kept (the audit trail refers to them).
    """
    header = read_header(source)
    full = _holds_data(engine)
    if full:
        held = ", ".join(f"{n:,} {name}" for name, n in full.items())
        raise InputError(
            f"the database holds {held}: restore into an empty database (a new SQLite file, or a new PostgreSQL "
            "database), then point decidua serve at it"
        )
    at = current_revision(engine)
    if at not in (None, header.revision):
        raise InputError(
            f"the empty database is at schema {at} and the backup at {header.revision}: restore into a new database"
        )
    upgrade(engine, header.revision)  # the backup's own schema, which its rows fit; then up to head below
    by_name = {t.name: t for t in TABLES}
    seen: dict[str, int] = dict.fromkeys(by_name, 0)
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        current: Table | None = None
        for item in list(_lines(source))[1:]:
            table = by_name.get(str(item.get("table")))
            if table is None or not isinstance(item.get("row"), dict):
                raise InputError(f"{source}: a line of an unknown table {item.get('table')!r}")
            if table is not current and batch and current is not None:
                conn.execute(insert(current), batch)
                batch = []
            current = table
            batch.append(_python(table, item["row"]))
            seen[table.name] += 1
            if len(batch) >= 1000:
                conn.execute(insert(table), batch)
                batch = []
        if batch and current is not None:
            conn.execute(insert(current), batch)
        if seen != {name: header.rows.get(name, 0) for name in by_name}:
            raise InputError(f"{source}: the rows do not match the header's counts (a cut or edited file)")
        if engine.dialect.name == "postgresql":  # the next new row must not reuse a restored number
            for t in TABLES:
                if "id" in t.columns and seen[t.name]:
                    conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), MAX(id)) FROM {t.name}")
                    )
    upgrade(engine, "head")
    return header


__all__ = ["BackupSummary", "backup", "read_header", "restore"]
