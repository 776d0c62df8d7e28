"""PDF reports are rendered by a bounded pool of worker processes: beyond its queue, a 503 with Retry-After,
audited as a refused read (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from fastapi.testclient import TestClient

from decidua.adapters.report import PdfUnavailable
from decidua.adapters.report.pool import PdfBusy, PdfPool, PdfTimedOut, pdf_pool
from decidua.adapters.store import Role, SqlCaseStore
from decidua.entrypoints.http import Settings, create_app
from decidua.knowledge.loader import KnowledgeBase
from pdf_tasks import failing, quick, slow

PASSWORD = "correct horse battery staple"
CASE = {
    "case_id": "PDF-1",
    "woman": {"age_years": 36},
    "pregnancies": [{"outcome": "miscarriage", "gestational_week": 8}, {"outcome": "miscarriage"}],
    "nk": {"peripheral": {"nk_percent": {"value": 30, "unit": "%"}}},
}


@pytest.fixture
def client(store: SqlCaseStore, kb: KnowledgeBase) -> TestClient:
    """A clinician logged in, with one case, on an app whose PDF pool is one worker and no queue."""
    from argon2 import PasswordHasher

    from decidua.app.accounts import Passwords

    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    store.add_user("clin@clinic.test", passwords.hash(PASSWORD), Role.CLINICIAN)
    settings = Settings(database_url="sqlite://", pdf_workers=1, pdf_queue=0)
    client = TestClient(create_app(settings, store, kb, passwords=passwords), base_url="http://testserver")
    r = client.post("/api/session", json={"email": "clin@clinic.test", "password": PASSWORD})
    csrf = r.json()["csrf_token"]
    assert client.post("/api/cases", json={"case": CASE}, headers={"X-CSRF-Token": csrf}).status_code == 201
    return client


def test_a_report_beyond_the_queue_is_a_503_with_retry_after_and_audited_busy(
    client: TestClient, store: SqlCaseStore
) -> None:
    (number,) = [c.id for c in store.list_cases()]
    with pdf_pool(1, 0).slot():  # the only place is taken: a report being rendered
        r = client.get("/api/cases/PDF-1/report.pdf")
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["detail"]
        entry = store.list_audit()[0]
        assert (entry.action, entry.case_id, entry.outcome) == ("case.report_pdf", number, "busy")
        page = client.get(f"/cases/{number}/report.pdf")  # the pages answer the same, as a page
        assert page.status_code == 503
        assert "retry-after" in page.headers
        assert page.headers["content-type"].startswith("text/html")
    r = client.get("/api/cases/PDF-1/report.pdf")  # the place is free again
    assert r.status_code == 200
    assert r.content.startswith(b"%PDF")
    assert store.list_audit()[0].outcome == "ok"


def test_the_pool_refuses_beyond_workers_and_queue_and_frees_its_places() -> None:
    pool = PdfPool(workers=1, queue=1)
    started = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.slot():
            started.set()
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
        assert started.wait(10)
        started.clear()
    try:
        t0 = time.monotonic()
        with pytest.raises(PdfBusy) as refused:
            pool.render(lambda: "<p>never rendered</p>")
        assert time.monotonic() - t0 < 1  # refused at once, not queued
        assert refused.value.retry_after >= 1
        assert refused.value.audit_outcome == "busy"
    finally:
        release.set()
        for t in holders:
            t.join()
    with pool.slot():  # both places free again
        pass
    pool.shutdown()


def test_settings_keep_pdf_requests_below_the_server_threads() -> None:
    with pytest.raises(ValueError, match="pdf_workers \\+ pdf_queue: at most 24"):
        Settings(pdf_workers=4, pdf_queue=21)


def _ends(pid: int | None, within: float) -> bool:
    """Whether process ``pid`` is gone (ended and reaped by the pool's own thread) within ``within`` seconds."""
    assert pid is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_rendering_past_the_timeout_is_given_up_and_its_worker_stopped() -> None:
    pool = PdfPool(workers=1, queue=0, timeout=1.5)
    try:
        pool.start()  # the worker is up (spawned, WeasyPrint loaded: not counted against the timeout here)
        assert pool.run(quick, "warm") == b"warm"
        executor = pool._executor
        assert executor is not None
        (worker,) = executor._processes.values()  # the test looks inside the pool for its worker
        t0 = time.monotonic()
        with pytest.raises(PdfTimedOut) as late:
            pool.run(slow, "60")
        assert 1.5 <= time.monotonic() - t0 < 5
        assert late.value.audit_outcome == "error"
        assert "1.5 s" in str(late.value)
        assert _ends(worker.pid, within=5)  # killed, not left rendering for a minute
        pool.start()  # a new pool, its worker spawned
        assert pool.run(quick, "next") == b"next"
    finally:
        pool.shutdown()


def test_a_report_given_up_is_a_503_audited_as_an_error(
    client: TestClient, store: SqlCaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def late(self: PdfPool, task: object, document: str) -> bytes:
        raise PdfTimedOut(self.timeout)

    monkeypatch.setattr(PdfPool, "run", late)
    r = client.get("/api/cases/PDF-1/report.pdf")
    assert r.status_code == 503
    assert "could not be rendered within 120 s" in r.json()["detail"]
    assert store.list_audit()[0].outcome == "error"


def test_a_rendering_that_fails_fails_once_in_the_same_pool() -> None:
    pool = PdfPool(workers=1, queue=0, timeout=30)
    try:
        pool.start()
        executor = pool._executor
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="failed on this"):
            pool.run(failing, "this")
        assert time.monotonic() - t0 < 1  # not tried again in a new pool
        assert pool._executor is executor
    finally:
        pool.shutdown()


def test_a_pool_shut_down_starts_no_new_workers() -> None:
    pool = PdfPool(workers=1, queue=1, timeout=30)
    pool.start()
    done: list[BaseException | bytes] = []

    def render() -> None:
        try:
            done.append(pool.run(slow, "5"))
        except BaseException as exc:
            done.append(exc)

    threads = [threading.Thread(target=render) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    pool.shutdown()
    for t in threads:
        t.join(15)
    assert len(done) == 2
    assert pool._executor is None
    with pytest.raises(PdfUnavailable):
        pool.run(quick, "after")
