"""Read and write case files (JSON or YAML), validated with pydantic, and publish their JSON Schema.

Every problem is reported at once, each naming the field path, the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import re
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
from decidua.engines.extract import check_genotypes

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


MAX_DEPTH = 12  # a case nests at most 6 levels; deeper input is not a case
# Control characters other than tab and line breaks, and unpaired UTF-16 surrogates: they cannot be stored in
# PostgreSQL text or encoded as UTF-8, so they are refused at the door rather than half-stored.
_BAD_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_TEXT_ALLOWED = "text without control characters (other than tab and line breaks) or unpaired surrogates"


def text_problems(data: object) -> list[Problem]:
    """Strings (keys and values) that cannot be stored, and nesting deeper than any case, anywhere in ``data``."""
    out: list[Problem] = []
    stack: list[tuple[object, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            out.append(Problem(_path(loc[:MAX_DEPTH]), "…", f"nesting at most {MAX_DEPTH} levels deep"))
            continue
        if isinstance(node, str):
            if _BAD_TEXT.search(node):
                out.append(Problem(_path(loc), node, f"allowed: {_TEXT_ALLOWED}"))
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and _BAD_TEXT.search(key):
                    out.append(Problem(_path((*loc, "(key)")), key, f"allowed: field names as {_TEXT_ALLOWED}"))
                    continue
                stack.append((value, (*loc, str(key))))
        elif isinstance(node, list | tuple):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node))
    return sorted(out, key=lambda p: p.path)


def _without_blanks(node: Any) -> Any:
    """Fields given as blank text are "not recorded", as an empty form field is (a required one is then missing)."""
    if isinstance(node, dict):
        return {k: _without_blanks(v) for k, v in node.items() if not (isinstance(v, str) and not v.strip())}
    if isinstance(node, list):
        return [_without_blanks(v) for v in node]
    return node


_STAND_INS: dict[str, Any] = {"case_id": "(missing)", "woman": {}}  # required fields the checks do not read


def _checks_despite_missing(data: dict[str, Any], exc: ValidationError) -> list[Problem]:
    """When the only structural problem is a missing ``case_id`` or ``woman``, the unit, range and consistency
    problems of the rest, so that one request reports them all (``woman`` missing must not hide a bad unit)."""
    errors = exc.errors()
    missing = {str(e["loc"][0]) for e in errors if e["type"] in ("missing", "missing_argument") and len(e["loc"]) == 1}
    if not missing or len(missing) != len(errors) or not missing <= set(_STAND_INS):
        return []
    stood_in: dict[str, Any] = {**data, **{k: _STAND_INS[k] for k in missing}}
    try:
        case = _adapter().validate_python(_without_blanks(stood_in))
    except ValidationError:
        return []
    found = check_case(case) + check_genotypes(case)
    return [p for p in found if p.path.split(".")[0].split("[")[0] not in missing]


def parse_case(data: object, source: str = "case") -> Case:
    """Validate already-parsed data (a mapping) as a case.

    Raises
    ------
    CaseInvalid
        With every structural, unit, range and consistency problem found.
    """
    if not isinstance(data, dict):
        raise CaseInvalid([Problem("(top level)", type(data).__name__, "a case is a mapping of fields")], source)
    if problems := text_problems(data):
        raise CaseInvalid(problems, source)
    try:
        case = _adapter().validate_python(_without_blanks(data))
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise CaseInvalid(problems + _checks_despite_missing(data, exc), source) from None
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
    return load_text(text, "json" if path.suffix.lower() == ".json" else "yaml", str(path))


class _CaseYamlLoader(yaml.SafeLoader):
    """Safe YAML without aliases: a case file never needs them, and they expand exponentially ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it bare
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a case file", mark)
        return super().compose_node(parent, index)


def load_text(text: str, kind: str, source: str = "input") -> Any:
    """Parse JSON (``kind`` "json") or YAML text into plain data; errors name the line and column."""
    try:
        if kind == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_CaseYamlLoader)  # a SafeLoader subclass: plain data only
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InputError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply to be a case file") from None


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
