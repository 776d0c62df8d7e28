"""The failed-login arithmetic, as a pure function: what one attempt does to a login name's counter.

The SQL store computes the same thing in one atomic statement per counter (so that requests in flight at once
take turns); the in-memory store calls :func:`count_attempt`. A property test runs random sequences of attempts,
successes and resets on both and compares them, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from decidua.app.ports import LoginPolicy

__all__ = ["Attempts", "count_attempt", "forgotten"]


@dataclass(frozen=True, slots=True)
class Attempts:
    """A login name's counter: attempts since it was last forgotten, the last one, and a lockout if any."""

    attempts: int
    last_attempt_at: dt.datetime
    locked_until: dt.datetime | None = None

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def count_attempt(current: Attempts | None, policy: LoginPolicy, now: dt.datetime) -> Attempts:
    """The counter after one more attempt at ``now``.

    A locked counter stays as it is (a refused attempt adds nothing). Otherwise the count starts again at 1 when
    there was none, when the last attempt is older than ``policy.window``, or after a lockout (which has ended);
    more than ``policy.max_failures`` attempts lock the name for ``policy.lockout``.
    """
    if current is not None and current.locked(now):
        return current
    fresh = current is None or current.last_attempt_at < now - policy.window or current.locked_until is not None
    count = 1 if fresh or current is None else current.attempts + 1
    locked_until = now + policy.lockout if count > policy.max_failures else None
    return Attempts(count, now, locked_until)


def forgotten(current: Attempts, now: dt.datetime, longest_window: dt.timedelta) -> bool:
    """Whether a counter no attempt has touched for ``longest_window`` (and not locked) may be dropped: counting
    on it would start again at 1 under every policy anyway."""
    return current.last_attempt_at < now - longest_window and not current.locked(now)
