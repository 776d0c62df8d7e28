"""``decidua db backup`` / ``restore``: a round trip on SQLite and PostgreSQL, taken while cases are being written."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decidua.adapters.store import Role, SqlCaseStore, open_store
from decidua.adapters.store.backup import backup, restore
from decidua.adapters.store.sql import make_engine
from decidua.app.cases import CaseService
from decidua.core.errors import InputError
from decidua.entrypoints.cli.main import app
from decidua.knowledge.loader import KnowledgeBase
from integration.api.conftest import POSTGRES

from conftest import postgres_schema

runner = CliRunner()


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    with postgres_schema("decidua_restore") as schema:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"


def case(case_id: str, nk: float) -> dict[str, object]:
    return {
        "case_id": case_id,
        "woman": {"age_years": 36},
        "pregnancies": [{"outcome": "miscarriage"}, {"outcome": "miscarriage"}],
        "nk": {"peripheral": {"nk_percent": {"value": nk, "unit": "%"}}},
    }


def rows(path: Path) -> dict[str, list[dict[str, object]]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    out: dict[str, list[dict[str, object]]] = {}
    for item in lines[1:]:
        out.setdefault(item["table"], []).append(item["row"])
    return out


def test_a_backup_taken_while_cases_are_written_restores_whole(
    store: SqlCaseStore, empty_url: str, kb: KnowledgeBase, tmp_path: Path
) -> None:
    service = CaseService(store, kb)
    user = store.add_user("b@clinic.test", "$argon2id$not-checked-here", Role.CLINICIAN)
    for i in range(5):
        service.create(case(f"B-{i}", 20), by=user.id)
    stop, started = threading.Event(), threading.Event()

    def write() -> None:  # the server at work: new cases and new versions
        n = 0
        while not stop.is_set():
            service.create(case(f"W-{n}", 25), by=user.id)
            service.update(f"B-{n % 5}", case(f"B-{n % 5}", 10 + n % 30), by=user.id)
            n += 1
            started.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert started.wait(30)
        first = backup(store.engine, tmp_path / "one.jsonl.gz")
        second = backup(store.engine, tmp_path / "two.jsonl.gz")
    finally:
        stop.set()
        writer.join()
    assert second.rows["case_versions"] >= first.rows["case_versions"] > 5

    saved = rows(tmp_path / "two.jsonl.gz")
    cases = {r["id"] for r in saved["cases"]}
    # one snapshot: every case has its versions, its summary and its audit rows, and nothing points outside
    assert {r["case_id"] for r in saved["case_summaries"]} == cases
    assert {r["case_id"] for r in saved["case_versions"]} == cases
    versions = {r["id"] for r in saved["case_versions"]}
    assert {r["version_id"] for r in saved["case_summaries"]} <= versions
    assert {r["case_version_id"] for r in saved["assessments"]} == versions
    writes = [(r["case_id"], r["action"]) for r in saved["audit"] if r["action"] in ("case.create", "case.update")]
    assert len(writes) == len(versions)  # one audit row per stored version (issue 18: none missing)
    assert {c for c, _ in writes} == cases

    engine = make_engine(empty_url)
    assert restore(engine, tmp_path / "two.jsonl.gz").rows == second.rows
    engine.dispose()
    restored = open_store(empty_url)
    try:
        assert rows(tmp_path / "two.jsonl.gz") == saved
        for summary in restored.list_cases(limit=1000):
            original = [v.data for v in store.list_versions(summary.id)][: summary.latest_version]
            assert [v.data for v in restored.list_versions(summary.id)] == original
        assert [u.email for u in restored.list_users()] == ["b@clinic.test"]
        assert len(restored.list_audit(limit=100_000)) == second.rows["audit"]
        again = CaseService(restored, kb).create(case("AFTER-1", 30), by=user.id)  # numbering goes on after them
        assert again.version.case_id > max(cases)
    finally:
        restored.engine.dispose()


def test_restore_refuses_a_database_with_data_and_a_damaged_file(
    store: SqlCaseStore, empty_url: str, kb: KnowledgeBase, tmp_path: Path
) -> None:
    CaseService(store, kb).create(case("R-1", 20), by=None)
    backup(store.engine, tmp_path / "b.jsonl.gz")
    with pytest.raises(InputError, match="the database holds 1 cases"):
        restore(store.engine, tmp_path / "b.jsonl.gz")
    with gzip.open(tmp_path / "b.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = f.readlines()
    with gzip.open(tmp_path / "cut.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(lines[:-1])  # the last audit row lost
    engine = make_engine(empty_url)
    with pytest.raises(InputError, match="do not match the header"):
        restore(engine, tmp_path / "cut.jsonl.gz")
    from sqlalchemy import text

    with engine.connect() as conn:  # nothing half-written: the rows went in one transaction
        assert conn.execute(text("SELECT COUNT(*) FROM cases")).scalar() == 0
    (tmp_path / "text.jsonl.gz").write_text("not gzip")
    with pytest.raises(InputError, match="not a readable decidua backup"):
        restore(engine, tmp_path / "text.jsonl.gz")
    engine.dispose()


def test_the_db_commands(database_url: str, empty_url: str, tmp_path: Path) -> None:
    store = open_store(database_url)
    store.add_user("c@clinic.test", "$argon2id$not-checked-here", Role.ADMIN)
    store.engine.dispose()
    file = tmp_path / "backups" / "decidua.jsonl.gz"
    result = runner.invoke(app, ["db", "backup", str(file), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "1 users" in result.stdout
    assert file.stat().st_mode & 0o777 == 0o600
    result = runner.invoke(app, ["db", "restore", str(file), "--database-url", empty_url])
    assert result.exit_code == 0, result.output
    assert "restored" in result.stdout
    result = runner.invoke(app, ["db", "restore", str(file), "--database-url", empty_url])
    assert result.exit_code == 2
    assert "the database holds 1 users" in result.stderr
    assert runner.invoke(app, ["db", "restore", str(tmp_path / "none.gz"), "--database-url", empty_url]).exit_code == 2


def test_a_backup_never_reads_a_database_made_by_mistake(tmp_path: Path) -> None:
    """A nightly job without the server's URL must fail loudly, not back up a new empty database every night."""
    missing = tmp_path / "nowhere" / "decidua.sqlite3"
    result = runner.invoke(app, ["db", "backup", str(tmp_path / "b.gz"), "--database-url", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    assert "no database at" in result.stderr
    assert "DECIDUA_DATABASE_URL" in result.stderr
    assert not missing.exists()
    assert not (tmp_path / "b.gz").exists()


def test_new_database_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'decidua.sqlite3'}"
    store = open_store(url)
    store.add_user("p@clinic.test", "$argon2id$not-checked-here", Role.ADMIN)  # writes: the -wal file exists
    for name in ("decidua.sqlite3", "decidua.sqlite3-wal"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0, name
    store.engine.dispose()
