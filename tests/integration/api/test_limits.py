"""Request bodies over their limit are refused (413) before anything reads or parses them (issue 18: a 50 MB login
body held ~190 MB for seconds; a 200 MB upload was read in full before its 413)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi.testclient import TestClient

from decidua.adapters.store import SqlCaseStore
from decidua.entrypoints.http import Settings, create_app
from decidua.knowledge.loader import KnowledgeBase
from integration.api.conftest import FAST_PASSWORDS

SMALL = 64 * 1024  # the smallest limit the settings allow


def client(store: SqlCaseStore, kb: KnowledgeBase) -> TestClient:
    settings = Settings(database_url="sqlite://", max_body_bytes=SMALL, max_fhir_bytes=2 * SMALL)
    return TestClient(create_app(settings, store, kb, passwords=FAST_PASSWORDS), base_url="http://testserver")


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (chunked), counted by the server as it arrives."""
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_a_json_body_over_its_limit_is_a_413_unread(store: SqlCaseStore, kb: KnowledgeBase) -> None:
    with client(store, kb) as c:
        big = json.dumps({"email": "a@b.c", "password": "x" * (SMALL + 1)}).encode()
        r = c.post("/api/session", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["detail"] == f"the request body is over the limit of {SMALL:,} bytes for this address"
        r = c.post("/api/session", content=chunks(SMALL * 4), headers={"content-type": "application/json"})
        assert r.status_code == 413  # no Content-Length: stopped once the bytes received pass the limit
        small = c.post("/api/session", json={"email": "a@b.c", "password": "wrong password!!"})
        assert small.status_code == 401  # under the limit: read and answered as before


def test_a_fhir_bundle_has_its_own_larger_limit(store: SqlCaseStore, kb: KnowledgeBase) -> None:
    with client(store, kb) as c:
        between = b'{"resourceType": "Bundle", "type": "collection", "entry": []' + b" " * (SMALL + 10) + b"}"
        r = c.post("/api/fhir/import", content=between, headers={"content-type": "application/json"})
        assert r.status_code == 401  # not logged in: the body was allowed in (over the JSON limit, under FHIR's)
        over = b" " * (2 * SMALL + 1)
        r = c.post("/api/fhir/import", content=over, headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_a_page_upload_over_its_limit_is_refused_as_a_page_before_it_is_read(web) -> None:
    csrf = web.login_form()
    files = {"file": ("case.yaml", b"x" * (6 * 1024 * 1024), "application/yaml")}  # the limit: 5 MB and the form
    r = web.client.post("/cases/import", files=files, data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "over the limit" in r.text
    files = {"file": ("case.yaml", b"x" * (5 * 1024 * 1024 + 10), "application/yaml")}
    r = web.client.post("/cases/import", files=files, data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 413
    assert "The file is over 5 MB." in r.text  # just over: the page's own message, with its form
    assert web.store.list_cases() == []
