"""The use cases' unit tests: a clock the tests move, and the memory store on it."""

from __future__ import annotations

import datetime as dt

import pytest

from decidua.adapters.store.memory import MemoryCaseStore


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryCaseStore:
    return MemoryCaseStore(clock=clock)
