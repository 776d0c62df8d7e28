"""Accounts and sessions: argon2 password hashes, server-side sessions with idle timeout, CSRF tokens, the
failed-login throttle, and the account use cases (log in and out, change one's password, set up the first admin),
each audited here once for the API, the pages and the command line.

The session cookie holds a random token; the database holds only its SHA-256, so a copy of the database
cannot be replayed as a login. Each session has a CSRF token (synchronizer pattern) that every unsafe request
must send back, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header.

Errors, drawn once::

    DeciduaError
    + AccessError
      - NotAuthenticated        no valid session (HTTP 401, or a redirect to the login page)
      - LoginThrottled          too many failed logins for this login name (HTTP 429 with Retry-After)
      - Forbidden               logged in, but the role does not allow it (HTTP 403)
        - CsrfRejected          an unsafe request without the session's CSRF token (HTTP 403)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from decidua.app.audit import AuditAction, Outcome, audited, record
from decidua.app.ports import AccountStore, LoginPolicy, Role, Session, User
from decidua.core.errors import DeciduaError, InputInvalid, Problem, shown

MIN_PASSWORD_LENGTH = 12
TOUCH_INTERVAL = dt.timedelta(seconds=30)
"""A request refreshes its session's ``last_seen`` only when the stored one is at least this old (one write per
session per interval, not one per request). The idle timeout counts from the stored ``last_seen``, so it is
kept to this precision: a session ends after ``idle`` without a request at the latest, and no earlier than
``idle`` minus this interval after the last one."""
MAX_EMAIL_LENGTH = 320
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+")


def check_email(email: str) -> str:
    """The login name as stored: trimmed and lower-cased. One rule for the pages, the API and the command line.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.
    """
    address = email.strip().lower()
    if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(address):
        raise ValueError(f"email: got {shown(email)}; allowed: an e-mail address such as name@clinic.org")
    return address


class AccessError(DeciduaError):
    """A request that may not go ahead."""


class NotAuthenticated(AccessError):
    """No valid session: never logged in, logged out, or timed out."""

    audit_outcome = "unauthenticated"


class LoginThrottled(AccessError):
    """Too many failed logins for a login name: refused, without checking the password, until ``until``."""

    audit_outcome = "locked"

    def __init__(self, until: dt.datetime, now: dt.datetime) -> None:
        self.until = until
        self.retry_after = max(1, int((until - now).total_seconds() + 0.999))
        minutes = -(-self.retry_after // 60)
        super().__init__(
            f"too many failed logins for this e-mail address; try again after "
            f"{until.astimezone(dt.UTC):%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''}), "
            "or ask an admin to set a new password"
        )


class Forbidden(AccessError):
    """The user's role does not allow this."""

    audit_outcome = "denied"


class CsrfRejected(Forbidden):
    """An unsafe request that did not carry the session's CSRF token."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (``None`` never matches)."""
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


class Passwords:
    """argon2id hashing with the library's current parameters; old hashes are upgraded at login."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            # Unknown users are checked against a dummy hash, so the time taken does not reveal who exists.
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class Login:
    """A logged-in user with the session's CSRF token."""

    user: User
    csrf_token: str
    token_hash: str


class Sessions:
    """Creates, looks up and ends sessions; enforces the idle and absolute timeouts; throttles failed logins."""

    def __init__(
        self,
        store: AccountStore,
        clock: Callable[[], dt.datetime],
        idle: dt.timedelta,
        max_age: dt.timedelta,
        passwords: Passwords,
        per_client: LoginPolicy,
        all_clients: LoginPolicy,
    ) -> None:
        self.store = store
        self.clock = clock
        self.idle = idle
        self.max_age = max_age
        self.passwords = passwords
        self.per_client = per_client
        self.all_clients = all_clients

    def _counters(self, name: str, client: str | None) -> list[tuple[str, LoginPolicy]]:
        """The failure counters of a login attempt on a login name (a valid e-mail address, so it holds no
        space): the name from this client first (a low limit, so one guesser cannot lock the user out
        everywhere), then the name from all clients (a higher one, against guessing from many)."""
        counters = [(f"{name} {client[:64]}", self.per_client)] if client else []
        return [*counters, (name, self.all_clients)]

    def _check_password(self, name: str | None, client: str | None, user: User | None, password: str) -> bool:
        """Whether ``password`` is the active ``user``'s, counting the attempt against ``name`` first; raises
        :class:`LoginThrottled` when the name is locked.

        The attempt is counted before the password is checked, so requests sent all at once cannot get more
        guesses through than one after the other; a locked name is refused without its password being looked
        at. Only a successful login forgets the counts (the right password of an inactive account does not, so
        the counts cannot tell it). ``name`` is ``None`` for text that is not an e-mail address: no account
        can have it, so nothing is counted.
        """
        now = self.clock()
        counters = self._counters(name, client) if name is not None else []
        until = self.store.reserve_login_attempt(counters, now) if counters else None
        if until is not None:
            raise LoginThrottled(until, now)
        ok = self.passwords.verify(user.password_hash if user else None, password)
        if ok and user is not None and user.active:
            if counters:
                self.store.login_succeeded([key for key, _ in counters], now)
            return True
        return False

    def authenticate(self, email: str, password: str, client: str | None = None) -> User | None:
        """The active user with this e-mail address and password, or ``None``.

        ``client`` (the client's address) keeps one client's failures from locking the user out everywhere.

        Raises
        ------
        LoginThrottled
            After too many failures for this e-mail address (whether or not such a user exists).
        """
        try:
            name: str | None = check_email(email)
        except ValueError:
            name = None  # still checked against the dummy hash below: the same time as for a wrong password
        user = self.store.find_user(name) if name is not None else None
        if not self._check_password(name, client, user, password) or user is None:
            return None
        if self.passwords.needs_rehash(user.password_hash):
            self.store.set_password_hash(user.id, self.passwords.hash(password))
        return user

    def change_password(self, login: Login, current: str, new: str, again: str, client: str | None = None) -> None:
        """A user's own password change: the current password is checked (and throttled like a login); every
        other session of the user ends, this one stays.

        Raises
        ------
        InputInvalid
            With one problem per field (``current_password``, ``new_password``).
        """
        user = self.store.get_user(login.user.id)
        if user is None or not self._check_password(user.email, client, user, current):
            raise InputInvalid(
                [Problem("current_password", None, "the current password is not right")], "password change"
            )
        hashed = self.hash_new(new, again)
        self.store.set_password_hash(user.id, hashed)
        self.store.delete_user_sessions(user.id, keep=login.token_hash)

    def hash_new(self, new: str, again: str) -> str:
        """The hash of a new password, after checking it.

        Raises
        ------
        InputInvalid
            With the problem at ``new_password``.
        """
        if new != again:
            raise InputInvalid([Problem("new_password", None, "the two new passwords differ")], "password change")
        try:
            return self.passwords.hash(new)
        except ValueError as exc:
            raise InputInvalid([Problem("new_password", None, str(exc))], "password change") from None

    def start(self, user: User) -> tuple[str, Login]:
        """A new session for ``user``: the cookie value (shown once) and the login."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(token_hash(token), user.id, secrets.token_urlsafe(32), now, now)
        self.store.add_session(session)
        return token, Login(user, session.csrf_token, session.token_hash)

    def resume(self, token: str | None) -> Login:
        """The login behind a cookie value; raises :class:`NotAuthenticated` when there is none or it expired."""
        if not token:
            raise NotAuthenticated("not logged in")
        hashed = token_hash(token)
        found = self.store.get_session_user(hashed)  # one read: the session and its user
        if found is None:
            raise NotAuthenticated("not logged in")
        session, user = found
        now = self.clock()
        if now - session.last_seen > self.idle or now - session.created_at > self.max_age:
            self.store.delete_session(hashed)
            raise NotAuthenticated("the session timed out; log in again")
        if user is None or not user.active:
            self.store.delete_session(hashed)
            raise NotAuthenticated("the account is not active")
        if now - session.last_seen >= TOUCH_INTERVAL:
            self.store.touch_session(hashed, now)
        return Login(user, session.csrf_token, hashed)

    def end(self, token: str | None) -> None:
        if token:
            self.store.delete_session(token_hash(token))


def reset_password(store: AccountStore, user_id: int, password_hash: str) -> User:
    """Give a user a new password (already hashed): lift the failed-login lockout of the address (from all
    clients) and end their sessions."""
    user = store.set_password_hash(user_id, password_hash)
    store.lift_login_lockout(user.email)
    store.delete_user_sessions(user_id)
    return user


def require_role(login: Login, roles: frozenset[Role]) -> None:
    if login.user.role not in roles:
        raise Forbidden(f"the role {login.user.role.value!r} may not do this")


CLINICAL = frozenset({Role.CLINICIAN, Role.ADMIN})
ADMIN_ONLY = frozenset({Role.ADMIN})


# --- the account use cases, each audited once -------------------------------------------------------------------


def log_in(sessions: Sessions, email: str, password: str, client: str | None) -> User | None:
    """:meth:`Sessions.authenticate` with its audit row: ``ok``, ``failed`` or ``locked`` (naming the account when
    one has this address; never the address typed).

    Raises
    ------
    LoginThrottled
        After too many failures for this address (the row says ``locked``).
    """
    store = sessions.store

    def account() -> int | None:
        try:
            known = store.find_user(check_email(email))
        except ValueError:
            return None
        return known.id if known else None

    try:
        user = sessions.authenticate(email, password, client)
    except LoginThrottled:
        record(store, account(), AuditAction.LOGIN, Outcome.LOCKED)
        raise
    if user is None:
        record(store, account(), AuditAction.LOGIN, Outcome.FAILED)
    else:
        record(store, user.id, AuditAction.LOGIN, Outcome.OK)
    return user


def log_out(sessions: Sessions, login: Login, token: str | None) -> None:
    sessions.end(token)
    record(sessions.store, login.user.id, AuditAction.LOGOUT, Outcome.OK)


def change_own_password(
    sessions: Sessions, login: Login, current: str, new: str, again: str, client: str | None
) -> None:
    """A user's own password change (see :meth:`Sessions.change_password`), audited."""
    with audited(sessions.store, login.user.id, AuditAction.USER_PASSWORD) as note:
        note.detail = f"user {login.user.id}"
        sessions.change_password(login, current, new, again, client)


def new_account(passwords: Passwords, email: str, password: str, again: str | None = None) -> tuple[str, str]:
    """The login name and password hash of a new account, after checking both.

    Raises
    ------
    InputInvalid
        With one problem per field (``email``, ``password``), each naming what is allowed.
    """
    problems = []
    address = ""
    try:
        address = check_email(email)
    except ValueError as exc:
        problems.append(Problem("email", email, str(exc).split("; ", 1)[-1]))  # "allowed: an e-mail address ..."
    hashed = ""
    if again is not None and password != again:
        problems.append(Problem("password", None, "the two passwords differ"))
    else:
        try:
            hashed = passwords.hash(password)
        except ValueError as exc:
            problems.append(Problem("password", None, str(exc)))
    if problems:
        raise InputInvalid(problems, "the new account")
    return address, hashed


def set_up_first_admin(sessions: Sessions, email: str, password: str, again: str) -> tuple[str, Login]:
    """The first start's admin, logged in at once: the session cookie value and the login.

    Raises
    ------
    InputInvalid
        For a bad address or password (nothing stored, nothing audited: no one is logged in yet).
    NotFirstUser
        When users exist already (the setup link is spent).
    """
    address, hashed = new_account(sessions.passwords, email, password, again)
    user = sessions.store.add_first_admin(address, hashed)
    record(sessions.store, user.id, AuditAction.USER_ADD, Outcome.OK, f"user {user.id}: first admin")
    token, login = sessions.start(user)
    record(sessions.store, user.id, AuditAction.LOGIN, Outcome.OK)
    return token, login
