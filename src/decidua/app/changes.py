"""What the next version of a case would drop from the stored one: the check before an import replaces a case.

An import (a FHIR Bundle, a case file) carries the whole case. When it lacks what the stored version holds (a
Bundle cut short, a file exported before the last edit), storing it silently would change the assessment: two
pregnancies fewer turn "RPL: met" into "not met". :func:`removed` lists each such loss by its case path, so that
the import can be refused until the user asks to replace the case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Removal:
    """One thing the stored version has and the new one lacks: where (a case path), and what (no patient data
    beyond counts: the stored value is the user's own, but it is named by place and size)."""

    path: str
    was: str

    def __str__(self) -> str:
        return f"{self.path} ({self.was})"


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _size(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if isinstance(value, dict):
        return f"a section of {len(value)} field(s)"
    return "a value"


def _walk(old: Any, new: Any, path: str) -> Iterator[Removal]:
    if _empty(old):
        return
    if _empty(new):
        yield Removal(path, _size(old))
    elif isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            yield from _walk(value, new.get(key), f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list):
        if len(new) < len(old):
            yield Removal(path, f"{len(old)} item(s), the new version has {len(new)}")
        else:
            for i, (before, after) in enumerate(zip(old, new, strict=False)):
                yield from _walk(before, after, f"{path}[{i}]")


def removed(old: dict[str, Any], new: dict[str, Any]) -> list[Removal]:
    """Each field, section or list item of ``old`` (a stored version's data) that ``new`` lacks, in case-file
    order. A value that changes is not a removal; a list that gets shorter is one (items are not matched by
    content: a list of the same length is compared item by item)."""
    return [r for key, value in old.items() for r in _walk(value, new.get(key), str(key))]


__all__ = ["Removal", "removed"]
