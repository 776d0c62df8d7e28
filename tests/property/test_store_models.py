"""The in-memory store is a faithful model of the SQL store: the same random sequence of operations (cases and
versions, users and the only-admin rule, failed logins and their lockouts) gives the same results and the same
refusals on both. The application's unit tests run on the memory store, so this is what makes them mean
something for the store in production; the failed-login arithmetic in particular is written twice (one atomic SQL
statement, and :func:`decidua.app.throttle.count_attempt`) and must not drift.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from decidua.adapters.store import open_store
from decidua.adapters.store.memory import MemoryCaseStore
from decidua.adapters.store.sql import SqlCaseStore
from decidua.app.ports import AuditRecord, CaseFilter, LoginPolicy, NewAssessment, Role, Session, StoreError
from decidua.core.findings import Status

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PER_CLIENT = LoginPolicy(3, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
ALL_CLIENTS = LoginPolicy(5, dt.timedelta(minutes=30), dt.timedelta(minutes=10))
NAMES = ["a@x.org", "b@x.org"]
CLIENTS = ["10.0.0.1", "10.0.0.2"]


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each example (migrating each time would dominate the test)."""
    path = tmp_path_factory.mktemp("store") / "template.sqlite3"
    open_store(f"sqlite:///{path}").engine.dispose()
    return path


minutes = st.integers(min_value=0, max_value=40)


def _result(rpl: Status, rif: Status, blood: Status, uterine: tuple[Status, Status]) -> dict[str, Any]:
    """A stored assessment as far as the case list reads it (statuses and their words)."""

    def item(status: Status, **more: str) -> dict[str, Any]:
        return {"status": status.value, "status_label": f"word for {status.value}", **more}

    findings = [item(blood, rule_id="nk.peripheral.clinic"), item(Status.FLAGGED, rule_id="investigation.thyroid")]
    findings += [item(s, rule_id=f"nk.uterine.rule{i}") for i, s in enumerate(uterine)]
    return {"classification": {"rpl": item(rpl), "rif": item(rif)}, "findings": findings}


statuses = st.sampled_from(Status)
results = st.one_of(
    st.just({"n": 1}),  # nothing the list reads: every status not assessed
    st.builds(_result, statuses, statuses, statuses, st.tuples(statuses, statuses)),
)
kb_versions = st.sampled_from(["kb", "kb2"])
FILTERS = [
    CaseFilter(rpl=Status.FLAGGED),
    CaseFilter(rif=Status.NOT_ASSESSED, blood_nk=Status.WITHIN_RANGE),
    CaseFilter(uterine_nk=Status.FLAGGED),
    CaseFilter(any_nk_flagged=True),
    CaseFilter(rpl=Status.WITHIN_RANGE, any_nk_flagged=True),
]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), minutes),
        st.tuples(st.just("attempt"), st.sampled_from(NAMES), st.sampled_from([None, *CLIENTS])),
        st.tuples(st.just("success"), st.sampled_from(NAMES), st.sampled_from([None, *CLIENTS])),
        st.tuples(st.just("lift"), st.sampled_from(NAMES)),
        st.tuples(st.just("case"), st.sampled_from(["R1", "R2"]), results),
        st.tuples(st.just("version"), st.integers(1, 3), st.one_of(st.none(), st.integers(1, 4)), results),
        # another assessment of a stored version (the latest or an earlier one), e.g. under a new knowledge base
        st.tuples(st.just("assess"), st.integers(1, 3), st.integers(0, 3), kb_versions, results),
        st.tuples(st.just("user"), st.sampled_from(["u1@x.org", "U1@X.org ", "u2@x.org"]), st.sampled_from(Role)),
        st.tuples(st.just("role"), st.integers(1, 3), st.sampled_from(Role)),
        st.tuples(st.just("active"), st.integers(1, 3), st.booleans()),
        st.tuples(st.just("session"), st.integers(1, 3)),
        st.tuples(st.just("end_sessions"), st.integers(1, 3)),
        # a read as the API makes it: a case by number or reference, a version, its assessment under a kb
        st.tuples(
            st.just("read"),
            st.sampled_from([1, 2, 3, "R1", "R2", "R3"]),
            st.one_of(st.none(), st.integers(1, 4)),
            st.one_of(st.none(), kb_versions),
        ),
        # a request's session and user, by the token a "session" operation made (at operation ``index``)
        st.tuples(st.just("resume"), st.integers(0, 40)),
    ),
    max_size=40,
)


def apply(store: Any, clock: Clock, index: int, op: tuple[Any, ...]) -> Any:
    """One operation; its result reduced to what both stores must agree on (never an id's storage detail)."""
    kind, *args = op
    try:
        match kind:
            case "wait":
                clock.now += dt.timedelta(minutes=args[0])
                return None
            case "attempt":
                name, client = args
                counters = [(f"{name} {client}", PER_CLIENT)] if client else []
                return store.reserve_login_attempt([*counters, (name, ALL_CLIENTS)], clock.now)
            case "success":
                name, client = args
                store.login_succeeded([f"{name} {client}", name] if client else [name], clock.now)
                return None
            case "lift":
                store.lift_login_lockout(args[0])
                return None
            case "case":
                v = store.create_case(args[0], {"case_id": args[0]}, None, NewAssessment("kb", args[1]))
                return (v.case_id, v.version, v.reference)
            case "version":
                new = NewAssessment("kb", args[2])
                v = store.add_version(args[0], {"edit": clock.now.isoformat()}, None, new, args[1])
                return (v.case_id, v.version, [x.version for x in store.list_versions(args[0])])
            case "assess":
                case_id, index, kb_version, result = args
                versions = store.list_versions(case_id)
                a = store.add_assessment(versions[min(index, len(versions) - 1)].id, NewAssessment(kb_version, result))
                return (a.kb_version, a.result, store.get_case(case_id).triage)
            case "user":
                u = store.add_user(args[0], "hash", args[1])
                return (u.id, u.email, u.role, u.active)
            case "role":
                u = store.set_role(args[0], args[1])
                return (u.id, u.role, u.active)
            case "active":  # deactivating ends the user's sessions: "end_sessions" then finds none
                u = store.set_active(args[0], args[1])
                return (u.id, u.role, u.active)
            case "session":
                if store.get_user(args[0]) is None:
                    return "no user"
                token = f"s{args[0]}-{index}"
                store.add_session(Session(token, args[0], "csrf", clock.now, clock.now))
                return store.get_session(token) is not None
            case "end_sessions":
                return store.delete_user_sessions(args[0])
            case "read":
                read = store.read_case(*args, AuditRecord(7, "case.read", "detail"))
                trail = [(e.user_id, e.action, e.case_id, e.outcome, e.detail) for e in store.list_audit()]
                if read is None:
                    return None, trail
                v, a = read.version, read.assessment
                shown = None if v is None else (v.version, v.reference, v.data, v.created_at)
                versions = [x.version for x in read.versions]
                return read.case_id, shown, versions, a and (a.kb_version, a.result), read.audited, trail
            case "resume":
                found = [store.get_session_user(f"s{user}-{args[0]}") for user in (1, 2, 3)]
                return [f and (f[0], f[1] and (f[1].id, f[1].email, f[1].role, f[1].active)) for f in found]
    except StoreError as exc:
        return type(exc).__name__
    raise AssertionError(kind)


def summary(store: Any) -> Any:
    """What both stores must agree on: the case list with its statuses (filtered too), the users."""
    cases = [(c.id, c.reference, c.latest_version, c.updated_at, c.triage) for c in store.list_cases()]
    users = [(u.id, u.email, u.role, u.active) for u in store.list_users()]
    filtered = [([c.id for c in store.list_cases("r", where=f)], store.count_cases(None, f)) for f in FILTERS]
    return cases, users, store.count_cases("r"), store.find_case("R1") is not None, filtered


LOCK_THEN_WAIT = [("attempt", "a@x.org", "10.0.0.1")] * 4 + [("wait", 15), ("attempt", "a@x.org", "10.0.0.1")]


@settings(max_examples=60)
@given(ops=operations)
# the cases that matter most, always run: a lockout reached, outlived and counted afresh; the only admin demoted
# or deactivated; an edit from a stale version; a duplicate address in another case
@example(ops=[*LOCK_THEN_WAIT, ("wait", 1), ("attempt", "a@x.org", None), ("success", "a@x.org", "10.0.0.1")])
@example(ops=[("user", "u1@x.org", Role.ADMIN), ("role", 1, Role.CLINICIAN), ("active", 1, False)])
@example(ops=[("user", "u1@x.org", Role.ADMIN), ("user", "u2@x.org", Role.ADMIN), ("role", 1, Role.CLINICIAN)])
@example(
    ops=[("case", "R1", {}), ("version", 1, 1, {}), ("version", 1, 1, {}), ("version", 1, None, {}), ("case", "R1", {})]
)
# the list shows the newest assessment of the latest version: a new version replaces its statuses, another
# assessment of the latest version too, one of an earlier version does not
@example(
    ops=[
        ("case", "R1", _result(Status.FLAGGED, Status.WITHIN_RANGE, Status.NOT_ASSESSED, (Status.FLAGGED,) * 2)),
        ("case", "R2", {"n": 1}),
        ("wait", 5),
        ("version", 1, 1, _result(Status.WITHIN_RANGE, Status.FLAGGED, Status.FLAGGED, (Status.NOT_ASSESSED,) * 2)),
        ("assess", 1, 0, "kb2", _result(Status.FLAGGED, Status.FLAGGED, Status.FLAGGED, (Status.FLAGGED,) * 2)),
        ("wait", 5),
        (
            "assess",
            1,
            1,
            "kb2",
            _result(Status.NOT_ASSESSED, Status.FLAGGED, Status.WITHIN_RANGE, (Status.WITHIN_RANGE, Status.FLAGGED)),
        ),
    ]
)
@example(ops=[("user", "u1@x.org", Role.CLINICIAN), ("user", "U1@X.org ", Role.ADMIN)])
@example(
    ops=[
        ("user", "u1@x.org", Role.ADMIN),
        ("user", "u2@x.org", Role.ADMIN),
        ("session", 2),
        ("active", 2, False),
        ("end_sessions", 2),
    ]
)
# a read of each kind (by number and reference, a version, a knowledge base with and without an assessment) and a
# session resumed before and after its user was deactivated
@example(
    ops=[
        ("user", "u1@x.org", Role.CLINICIAN),
        ("session", 1),
        ("resume", 1),
        ("case", "R1", {"n": 1}),
        ("version", 1, None, {"n": 2}),
        ("assess", 1, 0, "kb2", {"n": 3}),
        ("assess", 1, 0, "kb2", {"n": 4}),
        ("read", "R1", None, None),
        ("read", 1, 1, "kb2"),
        ("read", "R1", 2, "kb"),
        ("read", "R1", 3, "kb"),
        ("read", "R9", None, "kb"),
        ("active", 1, False),
        ("resume", 1),
    ]
)
def test_the_memory_store_behaves_like_the_sql_store(
    ops: list[tuple[Any, ...]], template: Path, tmp_path_factory
) -> None:
    path = tmp_path_factory.mktemp("example") / "db.sqlite3"
    shutil.copy(template, path)
    sql_clock, memory_clock = Clock(), Clock()
    sql = SqlCaseStore(open_store(f"sqlite:///{path}").engine, clock=sql_clock)
    memory = MemoryCaseStore(clock=memory_clock)
    try:
        for i, op in enumerate(ops):
            assert apply(sql, sql_clock, i, op) == apply(memory, memory_clock, i, op), op
        assert summary(sql) == summary(memory)
    finally:
        sql.engine.dispose()


def test_a_lockout_is_reached_lasts_and_is_forgotten_alike() -> None:
    """The arithmetic spelled out once: four attempts on a per-client limit of three lock the name for 15
    minutes; an attempt meanwhile changes nothing; after the lockout the count starts again."""
    clock = Clock()
    store = MemoryCaseStore(clock=clock)
    counters = [("a@x.org 10.0.0.1", PER_CLIENT), ("a@x.org", ALL_CLIENTS)]
    assert [store.reserve_login_attempt(counters, clock.now) for _ in range(3)] == [None, None, None]
    until = store.reserve_login_attempt(counters, clock.now)
    assert until == START + PER_CLIENT.lockout
    clock.now += dt.timedelta(minutes=14)
    assert store.reserve_login_attempt(counters, clock.now) == until  # still locked, not extended
    clock.now += dt.timedelta(minutes=2)
    assert store.reserve_login_attempt(counters, clock.now) is None  # a fresh count
