"""The structured case form: its layout (covering the whole case model), form fields -> case data and back.

Field names are the case's own paths (``nk.peripheral.nk_percent.value``, ``pregnancies[0].outcome``), the same
paths validation problems name, so every problem can be shown next to the field it is about. Empty fields mean
"not recorded" and are left out; a measurement's unit without its value is dropped with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from decidua.core.case import (
    AntibodyResult,
    ConceptionMode,
    Condition,
    PregnancyOutcome,
    TestResult,
    TransferOutcome,
    UterineAnatomy,
)
from decidua.core.errors import Problem
from decidua.core.units import Quantity, allowed_units

MAX_ROWS = 100  # rows per repeatable section; more is refused as a problem, never stored
FREE_TEXT = frozenset({"note", "detail"})  # fields whose text is kept exactly as typed
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d{1,3})\]|\.")
LIST_FIELDS = frozenset({"genotypes.woman_kir.present", "genotypes.woman_kir.absent", "genotypes.woman_kir.untested"})
# Form-only controls, read by form_to_data itself.
CONTROL_FIELDS = frozenset(
    {
        "csrf_token",
        "base_version",  # the version an edit started from (checked by the page, not part of the case)
        "schema_version",  # the only version there is; a form never changes it
        "conditions",
        "conditions_other",
        "conditions_recorded",
        "pregnancies_recorded",
        "transfers_recorded",
    }
)

CONDITION_LABELS = {
    Condition.SLE: "Systemic lupus erythematosus",
    Condition.RHEUMATOID_ARTHRITIS: "Rheumatoid arthritis",
    Condition.VASCULITIS: "Vasculitis",
    Condition.ANTIPHOSPHOLIPID_SYNDROME: "Antiphospholipid syndrome (diagnosed)",
    Condition.THYROID_AUTOIMMUNITY: "Thyroid autoimmunity",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One control of the form. ``name`` is the case path; in a repeated section it is relative to the row."""

    name: str
    label: str
    kind: str = "text"  # text | number | date | select | textarea | measurement | list
    choices: tuple[tuple[str, str], ...] = ()  # (value, label); "" is "not recorded"
    units: tuple[str, ...] = ()  # measurement units offered
    unit: str = ""  # the unit preselected for a new measurement
    hint: str = ""
    step: str = "any"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    fields: tuple[Field, ...]
    repeat: str | None = None  # list path, e.g. "pregnancies"
    row_label: str = ""
    hint: str = ""


def _choices(enum: type[StrEnum], blank: str = "not recorded") -> tuple[tuple[str, str], ...]:
    return (("", blank), *((e.value, e.value.replace("_", " ")) for e in enum))


def _measure(name: str, label: str, quantity: Quantity, unit: str, hint: str = "") -> Field:
    return Field(name, label, "measurement", units=allowed_units(quantity), unit=unit, hint=hint)


_TEST = _choices(TestResult)
_AB = _choices(AntibodyResult)
_YES_NO = (("", "not tested / not recorded"), ("true", "yes"), ("false", "no"))

SECTIONS: tuple[Section, ...] = (
    Section(
        "case",
        "Case",
        (
            Field("case_id", "Case id (pseudonymous, never a name)", required=True),
            Field("test_date", "Test date", "date"),
            Field("woman.age_years", "Age (completed years)", "number", step="1", hint="or the date of birth"),
            Field("woman.date_of_birth", "Date of birth", "date", hint="age is taken on the test date"),
            Field(
                "rif_judgement",
                "RIF by clinical judgement (ESHRE 2023)",
                "select",
                (("", "not recorded"), ("true", "yes"), ("false", "no")),
                hint="used only when the knowledge base's RIF definition is ESHRE 2023",
            ),
            Field("note", "Note", "textarea"),
        ),
    ),
    Section(
        "pregnancies",
        "Pregnancies",
        (
            Field("outcome", "Outcome", "select", _choices(PregnancyOutcome, "choose"), required=True),
            Field("gestational_week", "Week", "number", step="0.1"),
            Field("conception", "Conception", "select", _choices(ConceptionMode)),
            Field("year", "Year", "number", step="1"),
            Field("note", "Note", "textarea"),
        ),
        repeat="pregnancies",
        row_label="Pregnancy",
        hint="miscarriage: before 24 weeks; stillbirth: 24 weeks or later",
    ),
    Section(
        "transfers",
        "Embryo transfers",
        (
            Field("embryos", "Embryos", "number", step="1", required=True),
            Field("outcome", "Outcome", "select", _choices(TransferOutcome, "choose"), required=True),
            Field("euploid", "PGT-A euploid", "select", _YES_NO),
            Field("conception", "Conception", "select", _choices(ConceptionMode)),
            Field("date", "Date", "date"),
        ),
        repeat="transfers",
        row_label="Transfer",
    ),
    Section(
        "investigations",
        "Investigations",
        (
            Field("investigations.karyotype_woman.result", "Karyotype, woman", "select", _TEST),
            Field("investigations.karyotype_woman.detail", "detail", hint="e.g. 46,XX"),
            Field("investigations.karyotype_partner.result", "Karyotype, partner", "select", _TEST),
            Field("investigations.karyotype_partner.detail", "detail"),
            Field("investigations.poc_genetics.result", "Pregnancy-tissue genetics", "select", _TEST),
            Field("investigations.poc_genetics.detail", "detail"),
            Field("investigations.uterine_anatomy.result", "Uterine anatomy", "select", _choices(UterineAnatomy)),
            Field("investigations.uterine_anatomy.method", "method", hint="e.g. 3D ultrasound"),
            Field("investigations.uterine_anatomy.detail", "detail"),
            Field("investigations.antiphospholipid.lupus_anticoagulant", "Lupus anticoagulant", "select", _AB),
            Field("investigations.antiphospholipid.anticardiolipin_igg", "Anticardiolipin IgG", "select", _AB),
            Field("investigations.antiphospholipid.anticardiolipin_igm", "Anticardiolipin IgM", "select", _AB),
            Field("investigations.antiphospholipid.anti_beta2_glycoprotein_i_igg", "Anti-β2GPI IgG", "select", _AB),
            Field("investigations.antiphospholipid.anti_beta2_glycoprotein_i_igm", "Anti-β2GPI IgM", "select", _AB),
            Field("investigations.thrombophilia.result", "Thrombophilia", "select", _TEST),
            Field("investigations.thrombophilia.detail", "detail"),
            _measure("investigations.thyroid.tsh", "TSH", Quantity.TSH, "mIU/L"),
            Field("investigations.thyroid.tsh_interpretation", "TSH, laboratory reading", "select", _TEST),
            Field("investigations.thyroid.tpo_antibodies", "TPO antibodies", "select", _AB),
        ),
    ),
    Section(
        "nk",
        "NK cells",
        (
            _measure("nk.peripheral.nk_percent", "Peripheral NK (CD3-CD56+ of lymphocytes)", Quantity.PERCENT, "%"),
            _measure("nk.peripheral.absolute_count", "Absolute NK count", Quantity.CELLS_PER_UL, "cells/uL"),
            _measure("nk.peripheral.cd56_bright_percent", "CD56bright", Quantity.PERCENT, "%"),
            _measure("nk.peripheral.cd56_dim_percent", "CD56dim", Quantity.PERCENT, "%"),
            _measure("nk.peripheral.cd16_positive_percent", "CD16+", Quantity.PERCENT, "%"),
            _measure("nk.peripheral.cytotoxicity.percent", "Cytotoxicity", Quantity.PERCENT, "%"),
            Field("nk.peripheral.cytotoxicity.effector_target_ratio", "E:T ratio", hint="e.g. 50:1"),
            Field("nk.peripheral.date", "Blood sample date", "date"),
            Field("nk.peripheral.specimen", "Specimen", hint="e.g. EDTA whole blood"),
            Field("nk.peripheral.method", "Method"),
            Field(
                "nk.uterine.density",
                "Uterine NK density",
                "measurement",
                units=allowed_units(Quantity.UNK_PER_100_STROMAL) + allowed_units(Quantity.UNK_PER_MM2),
                unit="per 100 stromal cells",
                hint="per 100 stromal cells or cells/mm2 (never converted into each other)",
            ),
            Field("nk.uterine.cycle_day", "Cycle day", hint="e.g. LH+7"),
            Field("nk.uterine.date", "Biopsy date", "date"),
            Field("nk.uterine.method", "Method"),
        ),
    ),
    Section(
        "genotypes",
        "Genotypes",
        (
            Field("genotypes.woman_kir.present", "KIR genes present", "list", hint="comma-separated, e.g. 2DL1, 2DL3"),
            Field("genotypes.woman_kir.absent", "KIR genes absent", "list"),
            Field("genotypes.woman_kir.untested", "KIR genes not tested", "list"),
            Field("genotypes.woman_kir.gl_string", "KIR GL String"),
            Field("genotypes.woman_kir.source", "KIR typing source", hint="e.g. the genotyper, file and sample"),
            Field(
                "genotypes.woman_kir.absent_unlisted",
                "Genes not listed count as absent",
                "select",
                (("", "yes (default)"), ("true", "yes"), ("false", "no")),
            ),
            Field("genotypes.woman_hla_c", "HLA-C, woman", hint="GL String, e.g. HLA-C*07:01+HLA-C*06:02"),
            Field("genotypes.partner_hla_c", "HLA-C, partner"),
            Field("genotypes.sperm_donor_hla_c", "HLA-C, sperm donor"),
            Field(
                "genotypes.oocytes", "Oocytes", "select", (("", "own (default)"), ("own", "own"), ("donor", "donor"))
            ),
            Field(
                "genotypes.sperm",
                "Sperm",
                "select",
                (("", "partner (default)"), ("partner", "partner"), ("donor", "donor")),
            ),
            Field("genotypes.oocyte_donor_id", "Oocyte donor used"),
        ),
    ),
    Section(
        "oocyte_donors",
        "Oocyte donors",
        (Field("id", "Donor id", required=True), Field("hla_c", "HLA-C (GL String)")),
        repeat="genotypes.oocyte_donors",
        row_label="Donor",
    ),
    Section(
        "embryos",
        "Embryos typed (PGT)",
        (Field("id", "Embryo id", required=True), Field("hla_c", "HLA-C (GL String)")),
        repeat="genotypes.embryos",
        row_label="Embryo",
    ),
)


def _tokens(name: str) -> list[str | int] | None:
    """``"a.b[2].c"`` -> ``["a", "b", 2, "c"]``; ``None`` for a malformed name."""
    out: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(name):
        if m.start() != pos:
            return None
        pos = m.end()
        if m.group(1):
            out.append(m.group(1))
        elif m.group(2):
            out.append(int(m.group(2)))
    return out if pos == len(name) and out and isinstance(out[0], str) else None


def _set(tree: dict[Any, Any], path: list[str | int], value: object) -> bool:
    node = tree
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
        node = child
    if isinstance(node.get(path[-1]), dict):
        return False
    node[path[-1]] = value
    return True


def _lists(node: object) -> object:
    """Turn ``{0: ..., 2: ...}`` into ``[..., ...]`` (rows removed in the browser leave gaps)."""
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(isinstance(k, int) for k in converted):
            return [converted[k] for k in sorted(converted)]
        return converted
    return node


def _too_many_rows(node: object, path: str) -> list[Problem]:
    """Lists longer than :data:`MAX_ROWS` (after the gaps are closed), anywhere in the submitted tree."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _too_many_rows(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        if len(node) > MAX_ROWS:
            return [Problem(path, f"{len(node)} rows", f"allowed: at most {MAX_ROWS} rows")]
        return [p for i, v in enumerate(node) for p in _too_many_rows(v, f"{path}[{i}]")]
    return []


def form_to_data(items: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], list[Problem]]:
    """Case data from the submitted fields, and problems with the form itself (malformed field names)."""
    values: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for key, raw in items:
        if key in CONTROL_FIELDS:
            multi.setdefault(key, []).append(raw)
            continue
        # Free text keeps its spaces and line breaks; a blank one is "not recorded" like any empty field.
        value = (raw if key.rsplit(".", 1)[-1] in FREE_TEXT else raw.strip()) if raw.strip() else ""
        if value:
            values[key] = value
    for key in list(values):
        if key.endswith(".unit") and key[: -len("unit")] + "value" not in values:
            del values[key]  # a preselected unit alone is not a measurement
    data: dict[Any, Any] = {}
    for key, value in values.items():
        path = _tokens(key)  # row numbers up to 999: rows added and removed in the browser leave gaps
        if path is None:
            problems.append(Problem(key, value, "not a field of the case form"))
            continue
        parsed: object = [v for v in re.split(r"[,\s]+", value) if v] if key in LIST_FIELDS else value
        if not _set(data, path, parsed):
            problems.append(Problem(key, value, "not a field of the case form"))
    tree = _lists(data)
    assert isinstance(tree, dict)
    problems += _too_many_rows(tree, "")
    tree.setdefault("woman", {})  # the form always has the woman's section, even when it is empty
    conditions = [c for c in multi.get("conditions", []) if c]
    conditions += [c for c in re.split(r"[,\s]+", " ".join(multi.get("conditions_other", []))) if c]
    if conditions or multi.get("conditions_recorded"):
        tree["conditions"] = conditions
    for name in ("pregnancies", "transfers"):
        if name not in tree and multi.get(f"{name}_recorded"):
            tree[name] = []
    return tree, problems


def data_to_fields(data: Mapping[str, Any]) -> dict[str, str]:
    """Flatten case data to form values by field name (lists of genes comma-joined)."""
    out: dict[str, str] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(node, list | tuple):
            if prefix in LIST_FIELDS or prefix == "conditions":
                out[prefix] = ", ".join(str(v) for v in node)
            else:
                for i, v in enumerate(node):
                    walk(v, f"{prefix}[{i}]")
        elif isinstance(node, bool):
            out[prefix] = "true" if node else "false"
        elif node is not None:
            out[prefix] = repr(node) if isinstance(node, float) else str(node)  # every digit the lab reported

    walk(data, "")
    return out


@dataclass(frozen=True, slots=True)
class FormState:
    """What the template needs: values by field name, row counts, problems by field and the rest."""

    values: dict[str, str]
    rows: dict[str, int]
    conditions: tuple[str, ...]
    conditions_other: str
    recorded: dict[str, bool]
    errors: dict[str, list[str]]
    general: list[Problem]
    problems: list[Problem]


def field_names(rows: Mapping[str, int]) -> list[str]:
    """Every input name rendered for the given row counts, in page order."""
    names: list[str] = []
    for s in SECTIONS:
        count = rows.get(s.repeat, 0) if s.repeat else 1
        for i in range(count):
            for f in s.fields:
                base = f"{s.repeat}[{i}].{f.name}" if s.repeat else f.name
                names += [f"{base}.value", f"{base}.unit"] if f.kind == "measurement" else [base]
    return names


def form_state(data: Mapping[str, Any], problems: Sequence[Problem] = ()) -> FormState:
    values = data_to_fields(data)
    rows = {}
    for s in SECTIONS:
        if s.repeat:
            node: Any = data
            for part in s.repeat.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            rows[s.repeat] = len(node) if isinstance(node, list) else 0
    known = {c.value for c in Condition}
    conditions = data.get("conditions")
    codes = [str(c) for c in conditions] if isinstance(conditions, list) else []
    names = [*field_names(rows), "conditions_other"]
    errors: dict[str, list[str]] = {}
    general: list[Problem] = []
    for p in problems:
        target = _target(p.path, names)
        if target is None:
            general.append(p)
        else:
            errors.setdefault(target, []).append(f"got {p.value!r}; {p.allowed}" if p.value is not None else p.allowed)
    return FormState(
        values=values,
        rows=rows,
        conditions=tuple(c for c in codes if c in known),
        conditions_other=", ".join(c for c in codes if c not in known),
        recorded={
            "conditions": isinstance(conditions, list),
            "pregnancies": isinstance(data.get("pregnancies"), list),
            "transfers": isinstance(data.get("transfers"), list),
        },
        errors=errors,
        general=general,
        problems=list(problems),
    )


def _target(path: str, names: Sequence[str]) -> str | None:
    """The input a problem at ``path`` is shown next to: itself, its value, or its first field."""
    if path in names:
        return path
    if f"{path}.value" in names:
        return f"{path}.value"
    for name in names:
        if name.startswith((f"{path}.", f"{path}[")):
            return name
    if path.startswith("conditions"):
        return "conditions_other" if "conditions_other" in names else None
    return None
