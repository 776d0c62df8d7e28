"""Tasks for the PDF pool's tests, in a module the pool's spawned workers can import (``tests`` is on their path,
a test module imported by pytest's importlib mode is not)."""

from __future__ import annotations

import time


def slow(seconds: str) -> bytes:
    """A stand-in for a rendering that does not end in time."""
    time.sleep(float(seconds))
    return b"%PDF late"


def quick(text: str) -> bytes:
    return text.encode()


def failing(text: str) -> bytes:
    raise RuntimeError(f"the renderer failed on {text}")
