"""Fixtures of the web application tests: the same tests run on SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from decidua.adapters.store import Role, SqlCaseStore, open_store
from decidua.app.accounts import Passwords
from decidua.entrypoints.http import Settings, create_app
from decidua.knowledge.loader import KnowledgeBase

from conftest import postgres_schema, skip_without_postgres

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters: the tests log in often; production uses the library's defaults.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _postgres_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (extra 'postgres')"
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at 127.0.0.1:5432/test is not reachable: {type(exc).__name__}"


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    return _postgres_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decidua.sqlite3'}"
        return
    reason = request.getfixturevalue("postgres_reason")
    if reason:
        skip_without_postgres(reason)
    with postgres_schema() as schema:  # a fresh schema per test; dropped afterwards
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"


@pytest.fixture
def store(database_url: str) -> Iterator[SqlCaseStore]:
    s = open_store(database_url)
    yield s
    s.engine.dispose()


class Clock:
    """A settable clock: the idle-timeout tests move it forward."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


@dataclass
class Web:
    client: TestClient
    store: SqlCaseStore
    clock: Clock
    admin_id: int
    clinician_id: int

    def login(self, email: str = "clin@clinic.test", password: str = PASSWORD) -> str:
        """Log in through the API; returns the CSRF token."""
        r = self.client.post("/api/session", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        token = r.json()["csrf_token"]
        assert isinstance(token, str)
        return token

    def login_form(self, email: str = "clin@clinic.test", password: str = PASSWORD) -> str:
        """Log in through the page; returns the CSRF token of the session (from a page's meta tag)."""
        page = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        r = self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token.group(1), "next": "/cases"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return csrf_of(self.client.get("/cases").text)


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert m is not None
    return m.group(1)


@pytest.fixture
def web(store: SqlCaseStore, kb: KnowledgeBase) -> Iterator[Web]:
    clock = Clock()
    admin = store.add_user("admin@clinic.test", FAST_PASSWORDS.hash(PASSWORD), Role.ADMIN)
    clinician = store.add_user("clin@clinic.test", FAST_PASSWORDS.hash(PASSWORD), Role.CLINICIAN)
    settings = Settings(database_url="sqlite://", session_idle_minutes=30)
    app = create_app(settings, store, kb, clock=clock, database=store.engine.dialect.name, passwords=FAST_PASSWORDS)
    with TestClient(app, base_url="http://testserver") as client:
        yield Web(client, store, clock, admin.id, clinician.id)


@pytest.fixture
def empty_client(store: SqlCaseStore, kb: KnowledgeBase) -> Callable[[str | None], TestClient]:
    """A client of an app on a database with no users yet, with the first start's setup token given."""

    def make(setup_token: str | None) -> TestClient:
        settings = Settings(database_url="sqlite://")
        app = create_app(settings, store, kb, passwords=FAST_PASSWORDS, setup_token=setup_token)
        return TestClient(app, base_url="http://testserver")

    return make
