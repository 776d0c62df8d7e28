"""Laboratory results merged into a case: each result sets one field, and the case must still validate.

The values come from a reader (HL7 v2 in :mod:`decidua.adapters.hl7`); this module only knows case paths: a
measurement (``{"value", "unit"}``) or an antibody result (``positive``/``negative``) at a path, and for TSH the
laboratory's reading from its flag. Two results for one field that disagree are refused, naming both.
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
        _put(merged, v.path, v.value)
        if v.reading is not None and v.path in _READING:
            _put(merged, _READING[v.path], v.reading)
    return merged


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


__all__ = ["LabValue", "merge_lab_values"]
