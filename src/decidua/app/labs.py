"""Laboratory results merged into a case: each result sets one field, and the case must still validate.

The values come from a reader (HL7 v2 in :mod:`decidua.adapters.hl7`); this module only knows case paths: a
measurement (``{"value", "unit"}``) or an antibody result (``positive``/``negative``) at a path, and for TSH the
laboratory's reading from its flag. Two results for one field that disagree are refused, naming both.

Nothing of an earlier sample stays beside a new one: a new peripheral NK result replaces the whole peripheral NK
section (its date, method and subsets belonged to the earlier sample) and takes the observation date of the
message; a new TSH replaces the earlier reading too (without a flag: no reading).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decidua.core.errors import InputError

_READING = {"investigations.thyroid.tsh": "investigations.thyroid.tsh_interpretation"}


@dataclass(frozen=True, slots=True)
class LabValue:
    segment: int  # where it came from (an OBX set number)
    path: str
    value: Any
    reading: str | None = None
    date: str | None = None  # when the specimen was observed (ISO), if the message says


@dataclass(frozen=True, slots=True)
class LabImport:
    """What a reader made of one laboratory message: the values it read and, for each segment it did not read,
    why (e.g. ``OBX 8 2345-7 (LN): LOINC 2345-7 is not a result decidua reads``)."""

    values: tuple[LabValue, ...]
    unread: tuple[str, ...] = ()


# Sections that describe one sample: replaced whole by a message's values, with its date.
SAMPLE_SECTIONS = ("nk.peripheral",)


def merge_lab_values(data: Mapping[str, Any], values: Sequence[LabValue]) -> dict[str, Any]:
    """A copy of the case data with each value set at its path (sections created as needed).

    Raises
    ------
    InputError
        When two values for one field disagree (naming both segments).
    """
    merged: dict[str, Any] = copy.deepcopy(dict(data))
    seen: dict[str, LabValue] = {}
    for v in values:
        first = seen.get(v.path)
        if first is not None and (first.value, first.reading) != (v.value, v.reading):
            raise InputError(
                f"OBX {first.segment} and OBX {v.segment} both give {v.path}, differently "
                f"({first.value!r} and {v.value!r}); send one"
            )
        seen[v.path] = v
    for section in SAMPLE_SECTIONS:
        fresh = [v for v in seen.values() if v.path.startswith(section + ".")]
        if fresh:
            _put(merged, section, {"date": fresh[0].date} if fresh[0].date else {})
    for v in seen.values():
        _put(merged, v.path, v.value)
        if v.path in _READING:
            if v.reading is not None:
                _put(merged, _READING[v.path], v.reading)
            else:
                _drop(merged, _READING[v.path])
    return merged


def _drop(target: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    node: Any = target
    for name in parents:
        node = node.get(name) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = target
    for name in parents:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[leaf] = value


__all__ = ["LabImport", "LabValue", "merge_lab_values"]
