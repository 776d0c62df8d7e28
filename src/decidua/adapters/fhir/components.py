"""A case section (a dataclass) as Observation components and back: the one mapping export and import share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from decidua.adapters.fhir.codes import (
    BY_LOINC,
    CODE_SYSTEM,
    GENE_STUDIED,
    LAB_RESULTS,
    LOINC,
    UCUM,
    UCUM_CODES,
    make_coding,
    make_concept,
    make_quantity,
)
from decidua.core.case import (
    Investigations,
    Measurement,
)
from decidua.core.errors import InputError, shown

# Sections of the case written as Observations: lists (one Observation per item), investigations, NK tests.
LIST_SECTIONS = {"pregnancy": "pregnancies", "embryo-transfer": "transfers"}
INVESTIGATIONS = [f.name for f in dataclasses.fields(Investigations)]
NK_SECTIONS = {"nk-peripheral": "peripheral", "nk-uterine": "uterine"}


# --- dataclass <-> components -------------------------------------------------------------------------------


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def base_type(tp: Any) -> Any:
    """``X | None`` -> X."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def value_element(value: Any) -> dict[str, Any]:
    """A Python value as the value[x] of a component."""
    if isinstance(value, Measurement):
        return {"valueQuantity": make_quantity(value.value, value.unit)}
    if isinstance(value, enum.Enum):
        return {
            "valueCodeableConcept": {"coding": [make_coding(str(value.value), f"{CODE_SYSTEM}/{type(value).__name__}")]}
        }
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueQuantity": {"value": value}}
    if isinstance(value, dt.date):
        return {"valueDateTime": value.isoformat()}
    if isinstance(value, tuple):
        return {"valueString": ",".join(value)}
    return {"valueString": str(value)}


def components_of(obj: Any, path: str, labs: dict[str, Measurement], prefix: str = "") -> list[dict[str, Any]]:
    """Every non-missing field of a dataclass as a component (nested dataclasses flattened with dots); measured
    values listed in :data:`LAB_RESULTS` go to ``labs`` (case path -> value) instead, to become Observations."""
    out = []
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if value is None or value == ():
            continue  # missing stays missing; FHIR strings may not be empty
        name = f"{prefix}{field.name}"
        if f"{path}.{name}" in LAB_RESULTS and isinstance(value, Measurement):
            labs[f"{path}.{name}"] = value
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, Measurement):
            out += components_of(value, path, labs, f"{name}.")
            continue
        out.append({"code": make_concept(name), **value_element(value)})
    return out


def read_quantity(q: object, where: str) -> Any:
    if not isinstance(q, dict):
        raise InputError(f"{where}: got {shown(q)}; allowed: a Quantity with value and unit")
    if "unit" not in q:
        if "code" in q:
            raise InputError(
                f"{where}.unit: missing; give the unit as reported (UCUM code {q['code']!r} alone is ambiguous)"
            )
        return q.get("value")
    unit = q["unit"]
    if q.get("system") == UCUM and "code" in q:
        expected = UCUM_CODES.get(str(unit).strip())
        if expected is not None and q["code"] != expected:
            raise InputError(f"{where}.code: got {q['code']!r}; the UCUM code of unit {unit!r} is {expected!r}")
    return {"value": q.get("value"), "unit": unit}


def _read_value(component: dict[str, Any], where: str) -> Any:
    for key in (
        "valueQuantity",
        "valueCodeableConcept",
        "valueBoolean",
        "valueInteger",
        "valueDateTime",
        "valueString",
    ):
        if key in component:
            v = component[key]
            if v is None:
                raise InputError(f"{where}.{key}: null; give a value or leave the element out")
            if key == "valueQuantity":
                return read_quantity(v, f"{where}.valueQuantity")
            if key == "valueCodeableConcept":
                codings = (v.get("coding") if isinstance(v, dict) else None) or []
                if not codings:
                    raise InputError(f"{where}.valueCodeableConcept: no coding")
                code = codings[0].get("code") if isinstance(codings[0], dict) else None
                if code is None:
                    raise InputError(f"{where}.valueCodeableConcept.coding[0].code: missing")
                return code
            return v
    raise InputError(f"{where}: no value[x]")


def local_code(concept: dict[str, Any], where: str = "code") -> str | None:
    for i, coding in enumerate(concept.get("coding") or []):
        if coding.get("system") == CODE_SYSTEM:
            if coding.get("code") is None:
                raise InputError(f"{where}.coding[{i}].code: missing (system {CODE_SYSTEM})")
            return str(coding["code"])
    return None


def code_of(concept: dict[str, Any], where: str) -> str:
    """The local code of a concept; for a lab result coded with LOINC only, the case path it maps to."""
    local = local_code(concept, f"{where}.code")
    if local is not None:
        return local
    for coding in concept.get("coding") or []:
        if coding.get("system") == LOINC and coding.get("code") in BY_LOINC:
            return BY_LOINC[coding["code"]]
    raise InputError(
        f"{where}.code: no coding in {CODE_SYSTEM} and no LOINC code decidua reads "
        f"(LOINC codes read: {', '.join(sorted(BY_LOINC))})"
    )


def _is_gene_studied(component: dict[str, Any]) -> bool:
    return any(
        c.get("system") == LOINC and c.get("code") == GENE_STUDIED[0]
        for c in (component.get("code") or {}).get("coding") or []
    )


def fields_from_components(obs: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    """Components -> nested mapping of field values (dotted names unflattened)."""
    data: dict[str, Any] = {}
    for i, component in enumerate(obs.get("component") or []):
        if _is_gene_studied(component):
            continue  # the gene is implied by the Observation's own code
        at = f"{where}.component[{i}]"
        name = code_of(component.get("code") or {}, at)
        if name.split(".")[0] not in allowed:
            raise InputError(f"{at}.code: unknown code {name!r}; allowed here: {', '.join(sorted(allowed))}")
        value = _read_value(component, at)
        put_path(
            data, name.split("."), value.split(",") if name in ("present", "absent", "untested") and value else value
        )
    return data


def put_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    *parents, leaf = path
    for p in parents:
        target = target.setdefault(p, {})
    target[leaf] = value
