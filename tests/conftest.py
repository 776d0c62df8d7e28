"""Shared fixtures and the Hypothesis profiles (``HYPOTHESIS_PROFILE=ci`` runs more examples)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import decidua.app.cases as cases_module
from decidua.knowledge.loader import KnowledgeBase, load_kb

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_kb()


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def skip_without_postgres(reason: str) -> None:
    """Skip a PostgreSQL test on a machine without the server; under CI (which has it) fail instead, so that the
    store is never silently tested on SQLite alone."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextmanager
def postgres_schema(prefix: str = "decidua_test") -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards: its name, for a URL's search path."""
    import psycopg

    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A ``postgresql://`` URL whose search path is a fresh schema (dropped afterwards); skips without a server."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (extra 'postgres')")
    try:
        psycopg.connect(POSTGRES, autocommit=True, connect_timeout=2).close()
    except psycopg.Error as exc:
        skip_without_postgres(f"PostgreSQL at 127.0.0.1:5432/test is not reachable: {type(exc).__name__}")
    with postgres_schema() as schema:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"


@pytest.fixture
def assessed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each call of the engine's ``assess`` from the case use cases, by knowledge base version."""
    calls: list[str] = []
    real = cases_module.assess  # the name the use cases call

    def counted(case: Any, kb: KnowledgeBase) -> Any:
        calls.append(kb.kb_version)
        return real(case, kb)

    monkeypatch.setattr(cases_module, "assess", counted)
    return calls
