"""Shared fixtures and the Hypothesis profiles (``HYPOTHESIS_PROFILE=ci`` runs more examples)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A ``postgresql://`` URL whose search path is a fresh schema (dropped afterwards); skips without a server."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (extra 'postgres')")
    try:
        conn = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=2)
    except psycopg.Error as exc:
        skip_without_postgres(f"PostgreSQL at 127.0.0.1:5432/test is not reachable: {type(exc).__name__}")
    schema = f"decidua_test_{secrets.token_hex(6)}"
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
