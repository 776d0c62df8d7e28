"""Accounts: failed-login lockout, password change and reset, roles; the case list's pages; unchanged edits.

Against a real database like the rest of the web tests (SQLite file; PostgreSQL when reachable).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from decidua.adapters.store import LastAdmin, Role, open_store
from decidua.adapters.store.migrate import current_revision, upgrade
from decidua.adapters.store.sql import make_engine
from decidua.app.accounts import Passwords

Web = Any  # the ``web`` fixture of this folder's conftest: client, store, clock, admin_id, clinician_id
PASSWORD = "correct horse battery staple"  # the test users' password (conftest)
NEW_PASSWORD = "a new and longer passphrase"


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert m is not None
    return m.group(1)


def try_login(client: TestClient, email: str = "clin@clinic.test", password: str = PASSWORD) -> Any:
    return client.post("/api/session", json={"email": email, "password": password})


def outcomes(web: Web, action: str) -> list[str]:
    return [e.outcome for e in reversed(web.store.list_audit()) if e.action == action]


# --- failed logins ---
def test_after_five_failed_logins_the_address_is_locked_for_fifteen_minutes(web: Web) -> None:
    for _ in range(5):
        assert try_login(web.client, password="wrong guess").status_code == 401
    # now even the right password is refused, without being checked
    locked = try_login(web.client)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == str(15 * 60)
    assert "too many failed logins for this e-mail address" in locked.json()["detail"]
    assert "09:15 UTC" in locked.json()["detail"]  # the test clock stands at 09:00
    web.clock.advance(minutes=14)
    assert try_login(web.client).status_code == 429
    assert int(try_login(web.client).headers["retry-after"]) == 60
    web.clock.advance(minutes=1, seconds=1)
    assert try_login(web.client).status_code == 200
    assert outcomes(web, "login") == ["failed"] * 5 + ["locked"] * 3 + ["ok"]
    assert {e.user_id for e in web.store.list_audit() if e.action == "login"} == {web.clinician_id}


def test_one_guesser_cannot_lock_the_user_out_everywhere(web: Web) -> None:
    """The lockout counts per e-mail address and client; a higher count from all clients stops guessing from many."""
    guesser = TestClient(web.client.app, client=("203.0.113.9", 40000))
    for _ in range(5):
        try_login(guesser, password="wrong guess")
    assert try_login(guesser).status_code == 429
    assert try_login(web.client).status_code == 200  # the user, elsewhere
    for i in range(50):  # guessing from 50 addresses: locked for everyone
        try_login(TestClient(web.client.app, client=(f"198.51.100.{i}", 40000)), password="wrong guess")
    assert try_login(TestClient(web.client.app, client=("192.0.2.1", 40000))).status_code == 429


def test_a_successful_login_clears_the_count(web: Web) -> None:
    for _ in range(4):
        try_login(web.client, password="wrong guess")
    assert try_login(web.client).status_code == 200
    for _ in range(5):
        assert try_login(web.client, password="wrong guess").status_code == 401


def test_failures_count_until_fifteen_minutes_pass_without_one(web: Web) -> None:
    """No fixed windows to slip between: four failures, then more just after fifteen minutes, do not start over."""
    for _ in range(4):
        try_login(web.client, password="wrong guess")
    web.clock.advance(minutes=14, seconds=59)
    assert try_login(web.client, password="wrong guess").status_code == 401
    web.clock.advance(minutes=14, seconds=59)
    assert try_login(web.client).status_code == 429
    web.clock.advance(minutes=15, seconds=1)  # the lockout is over, and the count with it
    for _ in range(5):
        assert try_login(web.client, password="wrong guess").status_code == 401
        web.clock.advance(minutes=15, seconds=1)  # failures far apart never add up
    assert try_login(web.client).status_code == 200


def test_attempts_at_the_same_moment_get_no_more_guesses(store: Any) -> None:
    """Each attempt is counted before its password is checked: 40 at once, on any database, let 5 through."""
    import datetime as dt
    import threading

    from decidua.adapters.store import LoginPolicy

    policy = LoginPolicy(5, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    start = threading.Barrier(40)
    results: list[object] = []

    def attempt() -> None:
        start.wait()
        results.append(store.reserve_login_attempt([("victim@clinic.test", policy)], now))

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 5
    assert set(results) - {None} == {now + dt.timedelta(minutes=15)}
    store.login_succeeded(["victim@clinic.test"], now)  # a right password cannot lift a lockout
    assert store.reserve_login_attempt([("victim@clinic.test", policy)], now) is not None


def test_an_unknown_address_is_locked_the_same_way(web: Web) -> None:
    """Locking only real accounts would tell an attacker which addresses exist."""
    answers = [try_login(web.client, "nobody@clinic.test", "wrong guess").status_code for _ in range(7)]
    assert answers == [401] * 5 + [429] * 2
    assert try_login(web.client, "  NOBODY@clinic.test ").status_code == 429  # the same name, typed otherwise
    assert try_login(web.client, "admin@clinic.test").status_code == 200  # other names are not affected


def test_the_login_page_shows_the_lockout(web: Web) -> None:
    page = web.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    form = {"email": "clin@clinic.test", "password": "wrong guess", "csrf_token": token.group(1), "next": "/cases"}
    statuses = [web.client.post("/login", data=form).status_code for _ in range(5)]
    assert statuses == [401] * 5
    r = web.client.post("/login", data={**form, "password": PASSWORD})
    assert r.status_code == 429
    assert "Too many failed logins for this e-mail address" in r.text
    assert r.headers["retry-after"] == str(15 * 60)


def test_an_admin_password_reset_lifts_the_lockout_and_ends_sessions(web: Web) -> None:
    other = TestClient(web.client.app)
    assert try_login(other).status_code == 200  # the clinician on another computer
    for _ in range(5):
        try_login(web.client, password="wrong guess")
    csrf = web.login("admin@clinic.test")
    r = web.client.put(
        f"/api/users/{web.clinician_id}/password", json={"password": NEW_PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    assert other.get("/api/cases").status_code == 401  # their session ended
    assert try_login(other, password=PASSWORD).status_code == 401
    assert try_login(other, password=NEW_PASSWORD).status_code == 200
    assert outcomes(web, "user.password_reset") == ["ok"]
    short = web.client.put(
        f"/api/users/{web.clinician_id}/password", json={"password": "short"}, headers={"X-CSRF-Token": csrf}
    )
    assert short.status_code == 422
    assert short.json()["problems"][0]["path"] == "new_password"
    missing = web.client.put("/api/users/999/password", json={"password": NEW_PASSWORD}, headers={"X-CSRF-Token": csrf})
    assert missing.status_code == 404


def test_clinicians_cannot_reset_passwords(web: Web) -> None:
    csrf = web.login()
    r = web.client.put(
        f"/api/users/{web.admin_id}/password", json={"password": NEW_PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 403


# --- password change ---
def test_changing_your_password_ends_your_other_sessions_but_not_this_one(web: Web) -> None:
    other = TestClient(web.client.app)
    assert try_login(other).status_code == 200
    csrf = web.login()
    r = web.client.put(
        "/api/session/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 204, r.text
    assert web.client.get("/api/cases").status_code == 200
    assert other.get("/api/cases").status_code == 401
    assert try_login(other).status_code == 401
    assert try_login(other, password=NEW_PASSWORD).status_code == 200
    assert outcomes(web, "user.password") == ["ok"]


def test_a_password_change_needs_the_current_password_and_a_long_new_one(web: Web) -> None:
    csrf = web.login()

    def change(current: str, new: str) -> Any:
        body = {"current_password": current, "new_password": new}
        return web.client.put("/api/session/password", json=body, headers={"X-CSRF-Token": csrf})

    wrong = change("not my password", NEW_PASSWORD)
    assert wrong.status_code == 422
    assert wrong.json()["problems"] == [
        {"path": "current_password", "value": None, "allowed": "the current password is not right"}
    ]
    short = change(PASSWORD, "short")
    assert short.status_code == 422
    assert short.json()["problems"][0]["path"] == "new_password"
    assert "at least 12 characters" in short.json()["problems"][0]["allowed"]
    assert try_login(TestClient(web.client.app)).status_code == 200  # the password is unchanged
    # wrong current passwords count as failed logins: a stolen session cannot guess on
    assert [change("not my password", NEW_PASSWORD).status_code for _ in range(5)] == [422] * 5
    assert change(PASSWORD, NEW_PASSWORD).status_code == 429
    details = " ".join(e.detail or "" for e in web.store.list_audit())
    assert PASSWORD not in details
    assert "not my password" not in details
    assert NEW_PASSWORD not in details
    assert outcomes(web, "user.password")[-1] == "locked"


def test_the_account_page_changes_the_password(web: Web) -> None:
    web.login_form()
    page = web.client.get("/account")
    assert page.status_code == 200
    assert "Change your password" in page.text
    csrf = csrf_of(page.text)
    form = {"csrf_token": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD}
    mismatch = web.client.post("/account/password", data={**form, "new_password_again": "something else entirely"})
    assert mismatch.status_code == 422
    assert "the two new passwords differ" in mismatch.text
    wrong = web.client.post(
        "/account/password", data={**form, "current_password": "nope", "new_password_again": NEW_PASSWORD}
    )
    assert wrong.status_code == 422
    assert "the current password is not right" in wrong.text
    done = web.client.post("/account/password", data={**form, "new_password_again": NEW_PASSWORD})
    assert done.status_code == 200  # followed the redirect to the account page
    assert "Your password was changed" in done.text
    assert try_login(TestClient(web.client.app), password=NEW_PASSWORD).status_code == 200


# --- roles ---
def test_an_admin_makes_a_clinician_admin_then_may_step_down(web: Web) -> None:
    csrf = web.login("admin@clinic.test")

    def patch(user_id: int, body: dict[str, Any]) -> Any:
        return web.client.patch(f"/api/users/{user_id}", json=body, headers={"X-CSRF-Token": csrf})

    assert patch(web.admin_id, {"role": "clinician"}).status_code == 409  # the only admin stays one
    r = patch(web.clinician_id, {"role": "admin"})
    assert r.status_code == 200
    assert r.json()["role"] == "admin"
    r = patch(web.admin_id, {"role": "clinician"})
    assert r.status_code == 200
    assert web.client.get("/api/users").status_code == 403  # takes effect at once
    assert [(e.outcome, e.detail) for e in reversed(web.store.list_audit()) if e.action == "user.role"] == [
        ("conflict", f"user {web.admin_id}: clinician"),
        ("ok", f"user {web.clinician_id}: admin"),
        ("ok", f"user {web.admin_id}: clinician"),
    ]


def test_role_and_activity_together_and_bad_roles(web: Web) -> None:
    csrf = web.login("admin@clinic.test")
    r = web.client.patch(
        f"/api/users/{web.clinician_id}", json={"role": "admin", "active": False}, headers={"X-CSRF-Token": csrf}
    )
    assert (r.json()["role"], r.json()["active"]) == ("admin", False)
    bad = web.client.patch(f"/api/users/{web.clinician_id}", json={"role": "root"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "role"


def test_the_users_page_changes_roles_and_sets_passwords(web: Web) -> None:
    web.login_form("admin@clinic.test")
    page = web.client.get("/admin/users")
    csrf = csrf_of(page.text)
    assert f'action="/admin/users/{web.clinician_id}/role"' in page.text
    assert f'action="/admin/users/{web.admin_id}/role"' not in page.text  # not your own
    r = web.client.post(f"/admin/users/{web.clinician_id}/role", data={"csrf_token": csrf, "role": "admin"})
    assert r.status_code == 200
    promoted = web.store.get_user(web.clinician_id)
    assert promoted is not None
    assert promoted.role is Role.ADMIN
    bad = web.client.post(f"/admin/users/{web.clinician_id}/role", data={"csrf_token": csrf, "role": "root"})
    assert bad.status_code == 422
    assert "allowed: clinician, admin" in bad.text
    form = {"csrf_token": csrf, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    r = web.client.post(f"/admin/users/{web.clinician_id}/password", data=form)
    assert r.status_code == 200
    assert "New password set for clin@clinic.test" in r.text
    assert try_login(TestClient(web.client.app), password=NEW_PASSWORD).status_code == 200
    r = web.client.post(f"/admin/users/{web.clinician_id}/password", data={**form, "password_again": "other"})
    assert r.status_code == 422
    assert "the two new passwords differ" in r.text


# --- the case list, a page at a time ---
def test_the_case_list_comes_in_pages(web: Web) -> None:
    for i in range(120):
        web.store.create_case(f"P-{i:03d}", {"case_id": f"P-{i:03d}", "woman": {}}, None, _assessment())
    csrf = web.login()
    r = web.client.get("/api/cases", params={"limit": 50, "offset": 100})
    assert r.status_code == 200
    assert r.headers["x-total-count"] == "120"
    assert [c["case_id"] for c in r.json()] == [f"P-{i:03d}" for i in range(19, -1, -1)]
    r = web.client.get("/api/cases", params={"q": "p-11", "limit": 3})
    assert (r.headers["x-total-count"], len(r.json())) == ("10", 3)
    assert web.client.get("/api/cases", params={"limit": 501}).status_code == 422
    assert web.client.get("/api/cases", params={"offset": -1}).status_code == 422
    assert csrf

    page = web.client.get("/cases")
    assert "1–50 of 120 · page 1 of 3" in page.text
    assert page.text.count('<td><a href="/cases/') == 50
    assert 'rel="next" href="/cases?q=&amp;page=2"' in page.text
    assert 'rel="prev"' not in page.text
    last = web.client.get("/cases", params={"page": 3})
    assert "101–120 of 120 · page 3 of 3" in last.text
    assert 'rel="next"' not in last.text
    assert ">P-000<" in last.text
    beyond = web.client.get("/cases", params={"page": 99})
    assert "page 3 of 3" in beyond.text
    assert web.client.get("/cases", params={"page": "x"}).status_code == 422
    found = web.client.get("/cases", params={"q": "P-11"})
    assert "Case ids containing “P-11”: 1–10 of 10" in found.text


def test_the_case_search_ignores_case_beyond_ascii(web: Web) -> None:
    for reference in ("ÜBER-1", "über-2", "Ärzte-3", "plain-4"):
        web.store.create_case(reference, {"case_id": reference, "woman": {}}, None, _assessment())
    assert {c.reference for c in web.store.list_cases("üBER")} == {"ÜBER-1", "über-2"}
    assert web.store.count_cases("äRZ") == 1


def _assessment() -> Any:
    from decidua.adapters.store import NewAssessment

    return NewAssessment("test", {})


# --- unchanged edits ---
def test_saving_an_unchanged_case_stores_no_new_version(web: Web) -> None:
    csrf = web.login()
    case = {"case_id": "U-1", "woman": {"age_years": 36}}
    assert web.client.post("/api/cases", json={"case": case}, headers={"X-CSRF-Token": csrf}).status_code == 201
    r = web.client.put("/api/cases/U-1", json={"case": case, "base_version": 1}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert (r.json()["changed"], r.json()["case"]["versions"]) == (False, [1])
    assert web.store.list_audit(1)[0].detail == "unchanged"
    r = web.client.put(
        "/api/cases/U-1", json={"case": {**case, "woman": {"age_years": 37}}}, headers={"X-CSRF-Token": csrf}
    )
    assert (r.json()["changed"], r.json()["case"]["versions"]) == (True, [1, 2])


# --- an existing database is upgraded ---
def test_a_database_of_the_first_release_is_migrated_and_its_users_log_in(database_url: str, kb: Any) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (email, password_hash, role, created_at, active) "
                "VALUES ('old@clinic.test', :h, 'admin', '2026-01-01 00:00:00', :a)"
            ),
            {"h": Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)).hash(PASSWORD), "a": True},
        )
    engine.dispose()
    store = open_store(database_url)
    try:
        assert current_revision(store.engine) == "0003"
        from decidua.entrypoints.http import Settings, create_app

        app = create_app(Settings(database_url="sqlite://"), store, kb)
        with TestClient(app) as client:
            assert try_login(client, "old@clinic.test").status_code == 200
            for _ in range(6):
                try_login(client, "old@clinic.test", "wrong guess")
            assert try_login(client, "old@clinic.test").status_code == 429
    finally:
        store.engine.dispose()


# --- review findings: races, sessions, audit ---
def test_two_admins_demoting_each_other_at_once_leave_one_admin(store: Any) -> None:
    import threading

    survivor = None
    for trial in range(10):
        a = store.add_user(f"a{trial}@clinic.test", "x", Role.ADMIN)
        b = store.add_user(f"b{trial}@clinic.test", "x", Role.ADMIN)
        if survivor is not None:  # each trial starts with exactly two active admins
            store.set_role(survivor.id, Role.CLINICIAN)
        start = threading.Barrier(2)
        results: list[str] = []
        change = store.set_role if trial % 2 else store.set_active
        demoted = Role.CLINICIAN if trial % 2 else False

        def demote(
            user_id: int,
            start: threading.Barrier = start,
            results: list[str] = results,
            change: Any = change,
            demoted: Any = demoted,
        ) -> None:
            start.wait()
            try:
                change(user_id, demoted)
                results.append("ok")
            except LastAdmin:
                results.append("refused")

        threads = [threading.Thread(target=demote, args=(u.id,)) for u in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok", "refused"]
        [survivor] = [u for u in store.list_users() if u.role is Role.ADMIN and u.active]


def test_deactivating_a_user_ends_their_sessions_for_good(web: Web) -> None:
    other = TestClient(web.client.app)
    assert try_login(other).status_code == 200
    csrf = web.login("admin@clinic.test")
    for active in (False, True):
        r = web.client.patch(f"/api/users/{web.clinician_id}", json={"active": active}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
    assert other.get("/api/session").status_code == 401  # reactivation does not bring the session back


def test_refused_admin_actions_are_audited_too(web: Web) -> None:
    csrf = web.login("admin@clinic.test")
    h = {"X-CSRF-Token": csrf}
    web.client.put(f"/api/users/{web.clinician_id}/password", json={"password": "short"}, headers=h)
    web.client.put("/api/users/999/password", json={"password": NEW_PASSWORD}, headers=h)
    web.client.patch(f"/api/users/{web.admin_id}", json={"role": "clinician"}, headers=h)
    web.client.patch(f"/api/users/{web.admin_id}", json={"active": False}, headers=h)
    web.client.patch("/api/users/999", json={"active": False}, headers=h)
    rows = [(e.action, e.outcome, e.detail) for e in reversed(web.store.list_audit()) if e.action.startswith("user.")]
    assert rows == [
        ("user.password_reset", "invalid", f"user {web.clinician_id}"),
        ("user.password_reset", "not_found", "user 999"),
        ("user.role", "conflict", f"user {web.admin_id}: clinician"),
        ("user.inactive", "conflict", f"user {web.admin_id}"),
        ("user.change", "not_found", "user 999"),
    ]


def test_an_unchanged_case_from_an_old_version_is_still_a_conflict(web: Web) -> None:
    csrf = web.login()
    h = {"X-CSRF-Token": csrf}
    case = {"case_id": "U-2", "woman": {"age_years": 36}}
    web.client.post("/api/cases", json={"case": case}, headers=h)
    web.client.put("/api/cases/U-2", json={"case": {**case, "note": "x"}}, headers=h)
    r = web.client.put("/api/cases/U-2", json={"case": {**case, "note": "x"}, "base_version": 1}, headers=h)
    assert r.status_code == 409
    r = web.client.put("/api/cases/U-2", json={"case": {**case, "note": "x"}, "base_version": 2}, headers=h)
    assert r.status_code == 200
    assert r.json()["case"]["versions"] == [1, 2]


def test_a_fhir_import_of_an_unchanged_case_is_a_200(web: Web) -> None:
    csrf = web.login()
    h = {"X-CSRF-Token": csrf}
    web.client.post("/api/cases", json={"case": {"case_id": "F-1", "woman": {"age_years": 36}}}, headers=h)
    bundle = web.client.get("/api/cases/F-1/fhir").json()
    r = web.client.post("/api/fhir/import", json=bundle, headers=h)
    assert r.status_code == 200
    assert (r.json()["created"], r.json()["case"]["versions"]) == (False, [1])


def test_head_is_answered_like_get_without_a_body(web: Web) -> None:
    for path, status in (("/api/health", 200), ("/login", 200), ("/api/cases", 401)):
        get, head = web.client.get(path, follow_redirects=False), web.client.head(path, follow_redirects=False)
        assert (head.status_code, get.status_code) == (status, status)
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    assert web.client.head("/cases", follow_redirects=False).status_code == 303  # pages still send to the login


# --- second review: one client, key collisions, inactive accounts, deadlocks ---
def test_refused_attempts_from_one_client_do_not_lock_the_address_everywhere(web: Web) -> None:
    guesser = TestClient(web.client.app, client=("203.0.113.9", 40000))
    statuses = [try_login(guesser, password="wrong guess").status_code for _ in range(60)]
    assert statuses == [401] * 5 + [429] * 55
    assert try_login(web.client).status_code == 200


def test_text_that_is_not_an_address_counts_nothing(web: Web) -> None:
    """'clin@clinic.test testclient' must not count on clin@clinic.test's counter for the client 'testclient'."""
    guesser = TestClient(web.client.app, client=("203.0.113.9", 40000))
    for _ in range(10):
        assert try_login(guesser, "clin@clinic.test testclient", "wrong guess").status_code == 401
    assert try_login(web.client).status_code == 200


def test_the_right_password_of_an_inactive_account_leaves_the_count(web: Web) -> None:
    """Otherwise the count would tell a guesser that a password is right before the account is reactivated."""
    web.store.set_active(web.clinician_id, False)
    guesses = ["wrong guess"] * 4 + [PASSWORD] + ["wrong guess"]
    assert [try_login(web.client, password=p).status_code for p in guesses] == [401] * 5 + [429]


def test_counting_and_forgetting_at_once_never_deadlock(store: Any) -> None:
    import datetime as dt
    import threading

    from decidua.adapters.store import LoginPolicy

    policy = LoginPolicy(100_000, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    counters = [("clin@clinic.test 192.0.2.1", policy), ("clin@clinic.test", policy)]
    now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    errors: list[BaseException] = []

    def logins() -> None:
        try:
            for _ in range(40):
                store.reserve_login_attempt(counters, now)
                store.login_succeeded([key for key, _ in counters], now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=logins) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_users_page_refuses_an_unknown_activity_value(web: Web) -> None:
    web.login_form("admin@clinic.test")
    csrf = csrf_of(web.client.get("/admin/users").text)
    for data in ({"csrf_token": csrf}, {"csrf_token": csrf, "active": "yes"}):
        r = web.client.post(f"/admin/users/{web.clinician_id}/active", data=data)
        assert r.status_code == 422
        assert "allowed: true, false" in r.text
    r = web.client.post(f"/admin/users/{web.clinician_id}/role", data={"csrf_token": csrf, "role": "root"})
    assert r.status_code == 422
    unchanged = web.store.get_user(web.clinician_id)
    assert unchanged is not None
    assert unchanged.active
    assert [(e.action, e.outcome) for e in web.store.list_audit()[:3]] == [
        ("user.role", "invalid"),
        ("user.active", "invalid"),
        ("user.active", "invalid"),
    ]
