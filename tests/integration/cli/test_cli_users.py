"""``decidua users`` and the database URL of ``decidua serve``: accounts on a SQLite file, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decidua.adapters.store import Role, open_store
from decidua.entrypoints.cli.main import app
from decidua.entrypoints.cli.serve import database_url_or_default

from conftest import EXAMPLES

runner = CliRunner()
PASSWORD = "a long enough password"


def users(*args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    result = runner.invoke(app, ["users", *args], input=password + "\n")
    return result.exit_code, result.stdout, result.stderr


def test_add_the_first_admin_then_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'decidua.sqlite3'}"
    code, out, err = users("add", "Admin@Clinic.test", "--role", "admin", "--password-stdin", "--database-url", url)
    assert code == 0, err
    assert "admin@clinic.test (admin) added to SQLite file" in out
    store = open_store(url)
    [user] = store.list_users()
    assert (user.email, user.role, user.active) == ("admin@clinic.test", Role.ADMIN, True)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    [entry] = store.list_audit()
    assert (entry.action, entry.outcome) == ("user.add", "ok")
    code, out, _ = users("list", "--database-url", url)
    assert code == 0
    [row] = [line.split() for line in out.splitlines() if "@" in line]
    assert row[:4] == ["1", "admin@clinic.test", "admin", "active"]
    as_json = json.loads(users("list", "--json", "--database-url", url)[1])
    assert [(u["id"], u["email"], u["role"], u["active"]) for u in as_json] == [(1, "admin@clinic.test", "admin", True)]
    result = runner.invoke(app, ["--plain", "users", "list", "--database-url", url])
    assert result.stdout.splitlines() == [
        "id\te-mail\trole\tstatus\tcreated (UTC)",
        f"1\tadmin@clinic.test\tadmin\tactive\t{user.created_at:%Y-%m-%d %H:%M}",
    ]


def test_tables_fold_identifiers_instead_of_cutting_them() -> None:
    """At 40 columns a rich table would cut 'HLA-B*57:01:01:01' to 'HLA-B*57:0…'; every character stays."""
    wide = "HLA-B*57:01:01:01/HLA-B*57:01:01:02/HLA-B*57:01:01:03"
    result = runner.invoke(app, ["hla", "ligand", wide], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    first_column = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(first_column) > 1  # folded onto several lines ...
    assert "".join(first_column) == wide  # ... and nothing lost
    plain = runner.invoke(app, ["--plain", "hla", "ligand", wide]).stdout.splitlines()
    assert plain[2].split("\t")[0] == wide


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (("add", "not-an-address"), PASSWORD, "email: got 'not-an-address'"),
        (("add", "a@clinic.test"), "short", "password: a password needs at least 12 characters"),
    ],
)
def test_bad_input_exits_2_and_adds_nobody(tmp_path: Path, args: tuple[str, ...], password: str, message: str) -> None:
    url = f"sqlite:///{tmp_path / 'decidua.sqlite3'}"
    code, _, err = users(*args, "--password-stdin", "--database-url", url, password=password)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "decidua.sqlite3").exists() or not open_store(url).list_users()


def test_a_user_twice_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decidua.sqlite3'}"
    assert users("add", "a@clinic.test", "--password-stdin", "--database-url", url)[0] == 0
    code, _, err = users("add", "A@clinic.test", "--password-stdin", "--database-url", url)
    assert code == 2
    assert "exists already" in err


def test_an_unreachable_database_exits_2_without_its_password() -> None:
    url = "postgresql://clinic:s3cret@127.0.0.1:1/decidua"
    code, _, err = users("list", "--database-url", url)
    assert code == 2
    assert "--database-url: cannot open postgresql+psycopg://clinic:***@127.0.0.1:1/decidua" in err
    assert "s3cret" not in err


def test_postgresql_urls_use_psycopg_3() -> None:
    assert database_url_or_default("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url_or_default("sqlite:///x.db") == "sqlite:///x.db"
    assert database_url_or_default(None).startswith("sqlite:///")


def test_users_on_postgresql(postgres_schema_url: str) -> None:
    """The same commands on PostgreSQL (the 'postgres' extra), given a plain postgresql:// URL."""
    code, out, err = users(
        "add", "pg@clinic.test", "--role", "admin", "--password-stdin", "--database-url", postgres_schema_url
    )
    assert code == 0, err
    assert "added to postgresql+psycopg://postgres@127.0.0.1:5432/test" in out
    store = open_store(database_url_or_default(postgres_schema_url))
    try:
        assert [(u.email, u.role) for u in store.list_users()] == [("pg@clinic.test", Role.ADMIN)]
    finally:
        store.engine.dispose()


def test_a_new_password_from_the_command_line_lifts_a_lockout_and_ends_sessions(tmp_path: Path) -> None:
    """The way back in for the only admin who forgot the password or got locked out."""
    import datetime as dt

    from decidua.adapters.store import LoginPolicy, Session

    url = f"sqlite:///{tmp_path / 'decidua.sqlite3'}"
    assert users("add", "admin@clinic.test", "--role", "admin", "--password-stdin", "--database-url", url)[0] == 0
    store = open_store(url)
    [admin] = store.list_users()
    now = dt.datetime.now(dt.UTC)
    policy = LoginPolicy(1, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    counters = [("admin@clinic.test", policy), ("admin@clinic.test 192.0.2.1", policy)]
    store.reserve_login_attempt(counters, now)
    assert store.reserve_login_attempt(counters, now) is not None  # locked from everywhere
    store.add_session(Session("h" * 64, admin.id, "csrf", now, now))
    code, out, err = users(
        "password", "Admin@clinic.test", "--password-stdin", "--database-url", url, password="a brand new password"
    )
    assert code == 0, err
    assert "new password set for admin@clinic.test; their sessions have ended" in out
    assert store.reserve_login_attempt(counters, now) is None
    assert store.get_session("h" * 64) is None
    changed = store.get_user(admin.id)
    assert changed is not None
    assert changed.password_hash != admin.password_hash
    assert store.list_audit()[0].action == "user.password_reset"
    code, _, err = users("password", "nobody@clinic.test", "--password-stdin", "--database-url", url)
    assert code == 2
    assert "no user nobody@clinic.test" in err
    code, _, err = users("password", "admin@clinic.test", "--password-stdin", "--database-url", url, password="short")
    assert code == 2
    assert "password: a password needs at least 12 characters" in err
    store.engine.dispose()


def test_a_mistyped_sqlite_path_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo.sqlite3'}"
    for args in (("list",), ("password", "admin@clinic.test", "--password-stdin")):
        code, _, err = users(*args, "--database-url", url)
        assert code == 2
        assert "--database-url: no database at" in err
    assert not (tmp_path / "typo.sqlite3").exists()


def test_roles_and_activity_from_the_command_line_keep_one_active_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'decidua.sqlite3'}"
    assert users("add", "admin@clinic.test", "--role", "admin", "--password-stdin", "--database-url", url)[0] == 0
    assert users("add", "clin@clinic.test", "--password-stdin", "--database-url", url)[0] == 0
    code, _, err = users("change", "admin@clinic.test", "--role", "clinician", "--database-url", url)
    assert code == 2
    assert "only active admin" in err
    code, out, _ = users("change", "clin@clinic.test", "--role", "admin", "--database-url", url)
    assert (code, out.strip()) == (0, "clin@clinic.test: admin, active")
    code, out, _ = users("change", "admin@clinic.test", "--inactive", "--database-url", url)
    assert (code, out.strip()) == (0, "admin@clinic.test: admin, inactive")
    code, _, err = users("change", "clin@clinic.test", "--database-url", url)
    assert code == 2
    assert "give --role and/or --active/--inactive" in err
    store = open_store(url)
    assert [e.action for e in store.list_audit()][:2] == ["user.inactive", "user.role"]
    store.engine.dispose()


def test_a_password_without_a_terminal_or_stdin_flag_is_a_usage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    result = runner.invoke(app, ["users", "add", "a@clinic.test", "--database-url", url], input="")
    assert result.exit_code == 2
    assert "--password-stdin" in result.stderr


def test_a_postgresql_url_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import decidua.adapters.store as store

    def missing(url: str) -> None:
        raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

    monkeypatch.setattr(store, "open_store", missing)
    result = runner.invoke(app, ["users", "list", "--database-url", "postgresql://u@db.example/decidua"])
    assert result.exit_code == 2
    assert "needs the psycopg driver; install decidua with the 'postgres' extra" in result.stderr


def test_version_names_the_knowledge_base_and_reference_data() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert "knowledge base 2026.11.3, reference data IPD-IMGT/HLA 3.58.0, IPD-KIR 2.13.0" in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://a@host/db", "got mysql://...; allowed: a SQLite file"),
        ("sqlite://tmp/x", "names a host; a SQLite URL is sqlite:/// and the path"),
        ("::nonsense::", "no database at"),  # a path (no "://"): the SQLite file there, which does not exist
    ],
)
def test_a_database_url_that_cannot_work_is_a_usage_error_saying_what_is_allowed(url: str, message: str) -> None:
    result = runner.invoke(app, ["users", "list", "--database-url", url])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_plain_path_is_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "clinic.sqlite3"
    code, _, err = users("add", "p@clinic.test", "--password-stdin", "--database-url", str(path))
    assert code == 0, err
    assert [u.email for u in open_store(f"sqlite:///{path}").list_users()] == ["p@clinic.test"]


def test_a_command_needing_an_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "scipy", None)  # as if the 'research' extra were not installed
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    result = runner.invoke(
        app, ["cohort", "reference-interval", str(EXAMPLES / "cohort" / "cohort.csv"), "--column", "pb_nk_percent"]
    )
    assert result.exit_code == 2, result.output
    assert "in decidua's 'research' extra: .venv/bin/pip install -e '.[research]'" in result.stderr


def test_serve_on_a_port_in_use_exits_2_before_saying_it_runs(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app, ["serve", "--port", str(port), "--database-url", str(tmp_path / "db.sqlite3"), "--pdf-workers", "1"]
        )
    assert result.exit_code == 2, result.output
    assert f"--port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "running at" not in result.stdout
    assert f"--database-url sqlite:///{tmp_path / 'db.sqlite3'}" in result.stdout  # the setup hint names it
