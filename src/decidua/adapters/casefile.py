"""Read and write case files (JSON or YAML), validated with pydantic, and publish their JSON Schema.

Every problem is reported at once, each naming the field path, the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, InputError, Problem
from decidua.core.validation import check_case
from decidua.engines.features import check_genotypes

SCHEMA_ID = "https://decidua.invalid/schema/case-1.json"


@cache
def _adapter() -> TypeAdapter[Case]:
    return TypeAdapter(Case)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _type_at(loc: tuple[int | str, ...]) -> Any:
    """The dataclass type found at ``loc`` inside a case, or ``None``."""
    tp: Any = Case
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if args else None
        elif dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            tp = hints.get(part)
        else:
            return None
    return _unwrap(tp)


def _unwrap(tp: Any) -> Any:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        non_none = [a for a in typing.get_args(tp) if a is not type(None)]
        return non_none[0] if len(non_none) == 1 else tp
    return tp


def _problem(err: ErrorDetails) -> Problem:
    loc = tuple(err["loc"])
    path = _path(loc)
    value = err.get("input")
    kind = err["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = _type_at(loc[:-1])
        names = [f.name for f in dataclasses.fields(parent)] if dataclasses.is_dataclass(parent) else []
        return Problem(path, value, f"unknown field; allowed fields here: {', '.join(names)}")
    if kind in ("missing", "missing_argument"):
        return Problem(path, None, "required field is missing")
    if kind == "dataclass_type":
        parent = _type_at(loc)
        names = [f.name for f in dataclasses.fields(parent)] if dataclasses.is_dataclass(parent) else []
        return Problem(path, value, f"expected a mapping with fields: {', '.join(names)}")
    msg = err["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    return Problem(path, value, msg.replace("Input should be", "allowed:").replace("input should be", "allowed:"))


def parse_case(data: object, source: str = "case") -> Case:
    """Validate already-parsed data (a mapping) as a case.

    Raises
    ------
    CaseInvalid
        With every structural, unit, range and consistency problem found.
    """
    if not isinstance(data, dict):
        raise CaseInvalid([Problem("(top level)", type(data).__name__, "a case is a mapping of fields")], source)
    try:
        case = _adapter().validate_python(data)
    except ValidationError as exc:
        raise CaseInvalid([_problem(e) for e in exc.errors()], source) from None
    problems = check_case(case) + check_genotypes(case)
    if problems:
        raise CaseInvalid(problems, source)
    return case


def load_data(path: Path) -> Any:
    """Parse a JSON or YAML file (by suffix; YAML otherwise) into plain data."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def read_case(path: Path) -> Case:
    """Read and validate a case file."""
    return parse_case(load_data(path), str(path))


def case_to_data(case: Case) -> dict[str, Any]:
    """A case as JSON-ready data (``None`` fields left out), readable back by :func:`parse_case`."""
    data = _adapter().dump_python(case, mode="json", exclude_none=True)
    assert isinstance(data, dict)
    return data


def case_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a case file."""
    schema = _adapter().json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "decidua case file",
        **schema,
    }
