"""HL7 FHIR R4 interchange: a case and its assessment as a Bundle, and a case back from such a Bundle.

Resources are built as JSON and validated with ``fhir.resources`` (its ``R4B`` models: fhir.resources 7 and later
ship R5 and R4B, and R4B 4.3.0 is a technical correction of R4 4.0.1 that leaves Patient, Observation, Condition,
DiagnosticReport and Bundle, the only resources used here, unchanged; decidua's JSON is therefore valid R4).
Pinning fhir.resources 6 for its R4 models would hold back pydantic 1, which the rest of decidua cannot use.

The Bundle (type ``collection``) holds:

* ``Patient``: identifier = the pseudonymous case id (system :data:`CASE_ID_SYSTEM`), birthDate when known;
* ``Condition``: one per recorded condition (decidua's own codes, ICD-10, ICD-11, SNOMED CT or free codes);
* one ``Observation`` per **lab result** (peripheral NK %, absolute count, subsets, cytotoxicity, uterine NK
  density, TSH), category ``laboratory``, coded with LOINC where a code exists (:data:`LAB_RESULTS`) and always
  with decidua's local code (system :data:`CODE_SYSTEM`, the case path, e.g. ``nk.peripheral.nk_percent``), the
  value as a UCUM ``valueQuantity`` (the unit as reported in ``unit``, its UCUM code in ``code``), the HL7
  interpretation of the knowledge-base rule that reads it and the rule's thresholds as ``referenceRange``;
* one ``Observation`` per **case section** (age, each pregnancy, each embryo transfer, each investigation,
  peripheral and uterine NK), the section's other fields as components and its lab results as ``hasMember``;
* **genotypes** in the HL7 Genomics Reporting style (profile :data:`GENOTYPE_PROFILE`): code LOINC 84413-4
  "Genotype display name", the GL String as ``valueCodeableConcept`` (system ``http://glstring.org``; ``text`` is
  the typing as given), the gene studied (LOINC 48018-6) as a component; the woman's KIR gene content keeps its
  genes present / absent / not tested as components;
* ``DiagnosticReport``: the assessment (code ``assessment``, the kb_version as identifier), whose results are
  one ``Observation`` per finding (rule id, status, HL7 interpretation, summary, citations and stance in notes)
  and the lab, section and genotype Observations.

``import_bundle`` reads the case back (export followed by import gives the same case). It also reads lab
Observations that carry only a LOINC code from :data:`LAB_RESULTS`. Problems name the resource and element
they come from, e.g. ``Observation/nk-peripheral-nk-percent.valueQuantity.unit (nk.peripheral.nk_percent.unit):
got 'cells/HPF'; allowed units: ...``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from decidua.app.casefile import parse_case
from decidua.app.presenters import citation_data
from decidua.core.case import (
    AntiphospholipidPanel,
    Case,
    EmbryoTransfer,
    Investigations,
    KirTyping,
    Measurement,
    PeripheralNK,
    Pregnancy,
    Thrombophilia,
    Thyroid,
    UterineAssessment,
    UterineNK,
)
from decidua.core.errors import CaseInvalid, InputError, Problem, shown
from decidua.core.findings import Assessment, Finding
from decidua.core.units import Quantity
from decidua.core.validation import uterine_quantity
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import RangeRule, ThresholdRule

CODE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua-observation"
RULE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua-rule"
CASE_ID_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/case-id"
KB_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/kb-version"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
GLSTRING = "http://glstring.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GENOTYPE_PROFILE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/genotype"
CONDITION_SYSTEMS = {
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "icd11": "http://id.who.int/icd/release/11/mms",
    "snomed": "http://snomed.info/sct",
    "other": "https://decidua.invalid/fhir/CodeSystem/free-text-condition",
}

# LOINC codes used (checked against LOINC's published names, release 2.82; see the README):
GENOTYPE_DISPLAY_NAME = ("84413-4", "Genotype display name")  # as in the HL7 Genomics Reporting IG
GENE_STUDIED = ("48018-6", "Gene studied [ID]")


@dataclass(frozen=True, slots=True)
class LabCode:
    """How one measured value of a case is coded as its own Observation."""

    display: str
    loinc: tuple[str, str] | None  # (code, LOINC long common name); None: no LOINC term fits, local code only


# Case path -> coding. A LOINC code is used only where its component, specimen and scale match the value.
LAB_RESULTS: dict[str, LabCode] = {
    "nk.peripheral.nk_percent": LabCode(
        "NK cells (CD3-CD56+), % of lymphocytes, blood",
        ("107067-1", "CD19-CD3-CD56+ (NK)/Cells in Blood by Flow cytometry (FC)"),
    ),
    "nk.peripheral.absolute_count": LabCode(
        "NK cells, absolute count, blood",
        ("9728-7", "CD3-CD16+CD56+ (Natural killer) cells [#/volume] in Blood"),
    ),
    "nk.peripheral.cd56_bright_percent": LabCode("CD56bright NK cells, % of NK cells, blood", None),
    "nk.peripheral.cd56_dim_percent": LabCode("CD56dim NK cells, % of NK cells, blood", None),
    "nk.peripheral.cd16_positive_percent": LabCode("CD16+ NK cells, % of NK cells, blood", None),
    "nk.peripheral.cytotoxicity.percent": LabCode("NK cytotoxicity, % target cells killed", None),
    "nk.uterine.density": LabCode("Uterine NK (CD56+) density, endometrium", None),
    "investigations.thyroid.tsh": LabCode(
        "TSH, serum or plasma", ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma")
    ),
}
_BY_LOINC = {lab.loinc[0]: path for path, lab in LAB_RESULTS.items() if lab.loinc}

# Unit spellings decidua accepts (decidua.core.units) -> UCUM code. Per-100-cell counts are UCUM "%".
UCUM_CODES: dict[str, str] = {
    "%": "%",
    "percent": "%",
    "fraction": "1",
    **{f"cells/{mu}L": "/uL" for mu in ("u", "µ", "μ")},
    **{f"/{mu}L": "/uL" for mu in ("u", "µ", "μ")},
    **{f"{{cells}}/{mu}L": "{cells}/uL" for mu in ("u", "µ", "μ")},
    "cells/mm3": "/mm3",
    "/mm3": "/mm3",
    "10^9/L": "10*9/L",
    "10*9/L": "10*9/L",
    "x10^9/L": "10*9/L",
    "per 100 stromal cells": "%",
    "/100 stromal cells": "%",
    "% of stromal cells": "%",
    "cells/mm2": "/mm2",
    "/mm2": "/mm2",
    "cells/mm^2": "/mm2",
    "cells/mm²": "/mm2",
    "mIU/L": "m[IU]/L",
    "m[IU]/L": "m[IU]/L",
    **{f"{mu}IU/mL": "u[IU]/mL" for mu in ("u", "µ", "μ")},
    **{f"{mu}[IU]/mL": "u[IU]/mL" for mu in ("u", "µ", "μ")},
}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    """A valueQuantity: the unit as reported, with its UCUM code when decidua knows it."""
    out: dict[str, Any] = {"value": value, "unit": unit}
    code = UCUM_CODES.get(unit.strip())
    if code is not None:
        out |= {"system": UCUM, "code": code}
    return out


def _coding(code: str, system: str = CODE_SYSTEM, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(code: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(code)], "text": text or code.replace("_", " ")}


def _lab_concept(path: str) -> dict[str, Any]:
    lab = LAB_RESULTS[path]
    coding = [_coding(path, CODE_SYSTEM, lab.display)]
    if lab.loinc:
        coding.insert(0, _coding(lab.loinc[0], LOINC, lab.loinc[1]))
    return {"coding": coding, "text": lab.display}


_LABORATORY = [{"coding": [_coding("laboratory", OBSERVATION_CATEGORY, "Laboratory")]}]


# --- dataclass <-> components -------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(tp: Any) -> Any:
    """``X | None`` -> X."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _value(value: Any) -> dict[str, Any]:
    """A Python value as the value[x] of a component."""
    if isinstance(value, Measurement):
        return {"valueQuantity": _quantity(value.value, value.unit)}
    if isinstance(value, enum.Enum):
        return {
            "valueCodeableConcept": {"coding": [_coding(str(value.value), f"{CODE_SYSTEM}/{type(value).__name__}")]}
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


def _components(obj: Any, path: str, labs: dict[str, Measurement], prefix: str = "") -> list[dict[str, Any]]:
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
            out += _components(value, path, labs, f"{name}.")
            continue
        out.append({"code": _concept(name), **_value(value)})
    return out


def _read_quantity(q: object, where: str) -> Any:
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
                return _read_quantity(v, f"{where}.valueQuantity")
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


def _local_code(concept: dict[str, Any], where: str = "code") -> str | None:
    for i, coding in enumerate(concept.get("coding") or []):
        if coding.get("system") == CODE_SYSTEM:
            if coding.get("code") is None:
                raise InputError(f"{where}.coding[{i}].code: missing (system {CODE_SYSTEM})")
            return str(coding["code"])
    return None


def _code_of(concept: dict[str, Any], where: str) -> str:
    """The local code of a concept; for a lab result coded with LOINC only, the case path it maps to."""
    local = _local_code(concept, f"{where}.code")
    if local is not None:
        return local
    for coding in concept.get("coding") or []:
        if coding.get("system") == LOINC and coding.get("code") in _BY_LOINC:
            return _BY_LOINC[coding["code"]]
    raise InputError(
        f"{where}.code: no coding in {CODE_SYSTEM} and no LOINC code decidua reads "
        f"(LOINC codes read: {', '.join(sorted(_BY_LOINC))})"
    )


def _is_gene_studied(component: dict[str, Any]) -> bool:
    return any(
        c.get("system") == LOINC and c.get("code") == GENE_STUDIED[0]
        for c in (component.get("code") or {}).get("coding") or []
    )


def _fields_from_components(obs: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    """Components -> nested mapping of field values (dotted names unflattened)."""
    data: dict[str, Any] = {}
    for i, component in enumerate(obs.get("component") or []):
        if _is_gene_studied(component):
            continue  # the gene is implied by the Observation's own code
        at = f"{where}.component[{i}]"
        name = _code_of(component.get("code") or {}, at)
        if name.split(".")[0] not in allowed:
            raise InputError(f"{at}.code: unknown code {name!r}; allowed here: {', '.join(sorted(allowed))}")
        value = _read_value(component, at)
        _put(data, name.split("."), value.split(",") if name in ("present", "absent", "untested") and value else value)
    return data


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    *parents, leaf = path
    for p in parents:
        target = target.setdefault(p, {})
    target[leaf] = value


# --- export -------------------------------------------------------------------------------------------------

_LIST_SECTIONS = {"pregnancy": "pregnancies", "embryo-transfer": "transfers"}
_INVESTIGATIONS = [f.name for f in dataclasses.fields(Investigations)]
_NK = {"nk-peripheral": "peripheral", "nk-uterine": "uterine"}


def _observation(
    ident: str, code: str, components: list[dict[str, Any]], effective: dt.date | None = None
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": _concept(code),
        "subject": {"reference": "Patient/patient"},
    }
    if effective is not None:
        obs["effectiveDateTime"] = effective.isoformat()
    if components:
        obs["component"] = components
    return obs


def _obs_id(path: str) -> str:
    return path.replace(".", "-").replace("_", "-")


def _section(
    ident: str, code: str, obj: Any, path: str, effective: dt.date | None, method: str | None = None
) -> list[dict[str, Any]]:
    """A case section as an Observation (its fields as components) plus one Observation per lab result in it."""
    labs: dict[str, Measurement] = {}
    section = _observation(ident, code, _components(obj, path, labs), effective)
    results = []
    for lab_path, m in labs.items():
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _obs_id(lab_path),
            "status": "final",
            "category": _LABORATORY,
            "code": _lab_concept(lab_path),
            "subject": {"reference": "Patient/patient"},
        }
        if effective is not None:
            obs["effectiveDateTime"] = effective.isoformat()
        obs["valueQuantity"] = _quantity(m.value, m.unit)
        if method:
            obs["method"] = {"text": method}
        results.append(obs)
    if results:
        section["hasMember"] = [{"reference": f"Observation/{o['id']}"} for o in results]
    return [section, *results]


_GL_ALLELE = re.compile(r"(^|[\^|+~/])(?!HLA-)(?=[A-Z0-9]+\*)")


def _genotype(ident: str, code: str, gl: str | None, text: str, gene: str | None) -> dict[str, Any]:
    """A genotype Observation in the HL7 Genomics Reporting style (GL String as the value)."""
    obs = _observation(ident, code, [])
    obs["meta"] = {"profile": [GENOTYPE_PROFILE]}
    obs["category"] = _LABORATORY
    obs["code"]["coding"].insert(0, _coding(GENOTYPE_DISPLAY_NAME[0], LOINC, GENOTYPE_DISPLAY_NAME[1]))
    value: dict[str, Any] = {"text": text}
    if gl is not None:
        full = _GL_ALLELE.sub(r"\1HLA-", gl) if gene == "HLA-C" else gl
        value["coding"] = [{"system": GLSTRING, "version": "1.0", "code": full}]
    obs["valueCodeableConcept"] = value
    if gene is not None:
        obs["component"] = [
            {
                "code": {"coding": [_coding(GENE_STUDIED[0], LOINC, GENE_STUDIED[1])]},
                "valueCodeableConcept": {"text": gene},
            }
        ]
    return obs


def _kir_text(k: KirTyping) -> str:
    if k.gl_string:
        return k.gl_string
    parts = [f"present: {', '.join(k.present) or 'none'}"]
    if k.absent:
        parts.append(f"absent: {', '.join(k.absent)}")
    if k.untested:
        parts.append(f"not tested: {', '.join(k.untested)}")
    return "KIR gene content; " + "; ".join(parts)


def _case_resources(case: Case) -> list[dict[str, Any]]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [{"system": CASE_ID_SYSTEM, "value": case.case_id}],
        "gender": "female",
    }
    if case.woman.date_of_birth is not None:
        patient["birthDate"] = case.woman.date_of_birth.isoformat()
    out: list[dict[str, Any]] = [patient]
    header = {
        "age_years": case.woman.age_years,
        "test_date": case.test_date,
        "note": case.note,
        "rif_judgement": case.rif_judgement,
        "conditions_recorded": case.conditions is not None,
        "pregnancies_recorded": case.pregnancies is not None,
        "transfers_recorded": case.transfers is not None,
    }
    out.append(
        _observation("case", "case", [{"code": _concept(k), **_value(v)} for k, v in header.items() if v is not None])
    )
    for i, cond in enumerate(case.conditions or ()):
        system, sep, code = cond.partition(":")
        if sep and system in CONDITION_SYSTEMS:
            coding = _coding(code, CONDITION_SYSTEMS[system])
        else:
            coding = _coding(cond, f"{CODE_SYSTEM}/Condition")
        out.append(
            {
                "resourceType": "Condition",
                "id": f"condition-{i}",
                "subject": {"reference": "Patient/patient"},
                "code": {"coding": [coding], "text": cond},
            }
        )
    for code, attr in _LIST_SECTIONS.items():
        for i, item in enumerate(getattr(case, attr) or ()):
            out.append(_observation(f"{code}-{i}", code, _components(item, attr, {})))
    for name in _INVESTIGATIONS:
        value = getattr(case.investigations, name)
        if value is not None:
            out += _section(name.replace("_", "-"), name, value, f"investigations.{name}", case.test_date)
    for code, attr in _NK.items():
        value = getattr(case.nk, attr)
        if value is not None:
            out += _section(code, code, value, f"nk.{attr}", value.date or case.test_date, value.method)
    g = case.genotypes
    if g.woman_kir is not None:
        kir = _genotype("woman-kir", "woman_kir", g.woman_kir.gl_string, _kir_text(g.woman_kir), None)
        kir["component"] = _components(g.woman_kir, "genotypes.woman_kir", {})
        out.append(kir)
    people: list[tuple[str, str | None, str | None]] = [
        ("woman", None, g.woman_hla_c),
        ("partner", None, g.partner_hla_c),
        ("sperm_donor", None, g.sperm_donor_hla_c),
    ]
    people += [("oocyte_donor", d.id, d.hla_c) for d in g.oocyte_donors]
    people += [("embryo", e.id, e.hla_c) for e in g.embryos]
    for i, (role, person_id, gl) in enumerate(people):
        if gl is None and person_id is None:
            continue
        obs = _genotype(f"hla-c-{i}", "hla_c_genotype", gl, gl or "not typed", "HLA-C")
        if gl is None:
            del obs["valueCodeableConcept"]
            obs["dataAbsentReason"] = {"text": "not typed"}
        obs["component"].append({"code": _concept("role"), "valueString": role})
        if person_id is not None:
            obs["component"].append({"code": _concept("id"), "valueString": person_id})
        out.append(obs)
    gametes = {"oocytes": g.oocytes, "sperm": g.sperm, "oocyte_donor_id": g.oocyte_donor_id}
    out.append(
        _observation(
            "gametes", "gametes", [{"code": _concept(k), **_value(v)} for k, v in gametes.items() if v is not None]
        )
    )
    return out


def _rule_reading(path: str, obs: dict[str, Any], kb: KnowledgeBase) -> str | None:
    """The id of the rule in force that reads the lab result at ``path``, if any."""
    if path == "nk.peripheral.nk_percent":
        return kb.selected.get("nk_peripheral_cutoff")
    if path == "nk.uterine.density":
        q = uterine_quantity(obs["valueQuantity"]["unit"])
        return "nk.uterine.chen2017" if q is Quantity.UNK_PER_100_STROMAL else "nk.uterine.kuon2017"
    return None


def _reference_ranges(rule_id: str, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The rule's thresholds as referenceRange entries (numbers from the knowledge base, never literals)."""
    rule = kb.rule(rule_id)
    out: list[dict[str, Any]] = []
    if isinstance(rule, RangeRule):
        out.append(
            {
                "low": _quantity(rule.low, rule.unit),
                "high": _quantity(rule.high, rule.unit),
                "text": f"{rule.title}" + (f" ({rule.applies_label})" if rule.applies_label else ""),
            }
        )
    elif isinstance(rule, ThresholdRule):
        side = "high" if rule.direction == "above" else "low"
        for band in rule.bands:
            out.append({side: _quantity(band.value, rule.unit), "text": f"{rule.title}: cut-off ({band.label})"})
        otherwise = " (otherwise)" if rule.bands else ""
        out.append({side: _quantity(rule.value, rule.unit), "text": f"{rule.title}: cut-off{otherwise}"})
        for c in rule.context:
            out.append({"low": _quantity(c.low, c.unit), "high": _quantity(c.high, c.unit), "text": c.label})
    return out


def _annotate_labs(
    resources: list[dict[str, Any]], case: Case, findings: dict[str, Finding], kb: KnowledgeBase
) -> None:
    """Add the HL7 interpretation and the reference ranges of the rules that read each lab result."""
    for obs in resources:
        path = _local_code(obs["code"]) if obs["resourceType"] == "Observation" else None
        if path not in LAB_RESULTS:
            continue
        rule_id = _rule_reading(path, obs, kb)
        if rule_id is not None:
            f = findings.get(rule_id)
            if f is not None and f.interpretation is not None:
                obs["interpretation"] = [{"coding": [_coding(f.interpretation.value, INTERPRETATION)]}]
            ranges = _reference_ranges(rule_id, kb)
            if ranges:
                obs["referenceRange"] = ranges
        elif path == "investigations.thyroid.tsh" and case.investigations.thyroid is not None:
            reading = case.investigations.thyroid.tsh_interpretation.value
            flag = {"normal": "N", "abnormal": "A"}.get(reading)
            if flag:
                obs["interpretation"] = [{"coding": [_coding(flag, INTERPRETATION)]}]
                obs["referenceRange"] = [{"text": "the laboratory's own reference interval"}]


def _assessment_resources(assessment: Assessment, kb: KnowledgeBase, result_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, f in enumerate(assessment.findings):
        obs = _observation(f"finding-{i}", "finding", [])
        obs["code"]["coding"].append(_coding(f.rule_id, RULE_SYSTEM, f.title))
        obs["valueCodeableConcept"] = {
            "coding": [_coding(f.status.value, f"{CODE_SYSTEM}/Status")],
            "text": f.status.value,
        }
        if f.interpretation is not None:
            obs["interpretation"] = [{"coding": [_coding(f.interpretation.value, INTERPRETATION)]}]
        notes = [{"text": f.summary}, {"text": f"rule {f.rule_id}, knowledge base {f.kb_version}"}]
        notes += [{"text": "cites: " + citation_data(kb, k)["text"]} for k in f.citations]
        for st in f.stances:
            checked = "" if st.verified else " (not checked against the guideline)"
            notes.append({"text": f"guideline stance, {st.source} ({st.strength}){checked}: {st.text}"})
        obs["note"] = notes
        out.append(obs)
    c = assessment.classification
    report = {
        "resourceType": "DiagnosticReport",
        "id": "assessment",
        "identifier": [{"system": KB_SYSTEM, "value": assessment.kb_version}],
        "status": "final",
        "code": _concept("assessment", "decidua assessment (decision support, not a diagnosis)"),
        "subject": {"reference": "Patient/patient"},
        "result": [{"reference": f"Observation/{o['id']}"} for o in out]
        + [{"reference": f"Observation/{i}"} for i in result_ids],
        "conclusion": (
            f"RPL {c.rpl.value} ({c.rpl_definition}, {c.losses_shown} losses counted); "
            f"RIF {c.rif.value} ({c.rif_definition}). Decision support, not a diagnosis or a prescription."
        ),
    }
    return [*out, report]


_NOT_RESULTS = ("case", "gametes", "pregnancy", "embryo-transfer")


def export_bundle(case: Case, assessment: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The case and its assessment as a FHIR Bundle (JSON-ready), validated with fhir.resources."""
    resources = _case_resources(case)
    _annotate_labs(resources, case, {f.rule_id: f for f in assessment.findings}, kb)
    result_ids = [
        r["id"] for r in resources if r["resourceType"] == "Observation" and _local_code(r["code"]) not in _NOT_RESULTS
    ]
    resources += _assessment_resources(assessment, kb, result_ids)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": CASE_ID_SYSTEM, "value": case.case_id},
        "entry": [{"fullUrl": f"urn:decidua:{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }
    Bundle.model_validate(bundle)  # a bug here, not an input error: let it raise
    return bundle


# --- import -------------------------------------------------------------------------------------------------


def _section_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


_SECTION_TYPES: dict[str, type] = {
    "pregnancy": Pregnancy,
    "embryo-transfer": EmbryoTransfer,
    "nk-peripheral": PeripheralNK,
    "nk-uterine": UterineNK,
    "woman_kir": KirTyping,
    "uterine_anatomy": UterineAssessment,
    "antiphospholipid": AntiphospholipidPanel,
    "thrombophilia": Thrombophilia,
    "thyroid": Thyroid,
}


def _investigation_type(name: str) -> type:
    return _SECTION_TYPES.get(name) or _base(_hints(Investigations)[name])


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a part of the case was read from: a case path prefix and the resource element."""

    path: str
    element: str
    exact: bool = False  # True: the rest of a problem's case path continues the element's path (a valueQuantity)


def _genotype_text(r: dict[str, Any], where: str) -> str | None:
    if "valueString" in r:  # bundles written by decidua before the Genomics Reporting layout
        return str(r["valueString"])
    value = r.get("valueCodeableConcept")
    if value is None:
        return None
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or []:
        if coding.get("system") == GLSTRING:
            return str(coding["code"])
    raise InputError(f"{where}.valueCodeableConcept: no text and no coding in {GLSTRING}")


def import_bundle(data: object) -> Case:
    """Build a case from a Bundle written by :func:`export_bundle` (or one following the same layout).

    Raises
    ------
    InputError
        Naming the resource and element: a structurally invalid Bundle, an unknown code, or a value the case
        model rejects (e.g. a unit that is not allowed).
    """
    _check_resource_types(data)
    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"Bundle.{where}: {first['msg']}") from None
    assert isinstance(data, dict)
    try:
        return _read_bundle(data)
    except _Malformed as exc:
        raise InputError(str(exc)) from None


class _Malformed(Exception):
    """An element of an entry that is not shaped as the layout needs (raised with the entry's resource)."""


def _check_resource_types(data: object) -> None:
    """Each entry holds a resource of a FHIR type (fhir.resources fails obscurely on others)."""
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise InputError(
            f"resourceType: got {shown(data.get('resourceType') if isinstance(data, dict) else data)}; allowed: Bundle"
        )
    entries = data.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise InputError(f"Bundle.entry: got {shown(entries)}; allowed: a list of entries")
    for n, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not _is_resource_type(kind):
            raise InputError(
                f"Bundle.entry[{n}].resource.resourceType: got {shown(kind)}; allowed: a FHIR R4 resource type "
                "(this layout reads Patient, Condition, Observation and DiagnosticReport)"
            )


def _is_resource_type(kind: object) -> bool:
    if not isinstance(kind, str) or not kind.isidentifier():
        return False
    try:
        return issubclass(get_fhir_model_class(kind), Resource)
    except ValueError:  # not a FHIR model at all
        return False


def _read_bundle(data: dict[str, Any]) -> Case:
    case: dict[str, Any] = {"woman": {}, "investigations": {}, "nk": {}, "genotypes": {}}
    origin: list[_Origin] = []  # for error messages
    pregnancies: list[Any] = []
    transfers: list[Any] = []
    conditions: list[str] = []
    recorded: dict[str, bool] = {}
    donors: list[dict[str, Any]] = []
    embryos: list[dict[str, Any]] = []
    for n, entry in enumerate(data.get("entry") or []):
        r = entry.get("resource") or {}
        kind, rid = r.get("resourceType"), r.get("id", f"entry{n}")
        where = f"{kind}/{rid}"
        try:
            if kind == "Patient":
                case["case_id"] = next(
                    (i.get("value") for i in r.get("identifier") or [] if i.get("system") == CASE_ID_SYSTEM), None
                )
                if "birthDate" in r:
                    case["woman"]["date_of_birth"] = r["birthDate"]
                origin.append(_Origin("woman.date_of_birth", f"{where}.birthDate"))
            elif kind == "Condition":
                coding = (r.get("code", {}).get("coding") or [{}])[0]
                system = {v: k for k, v in CONDITION_SYSTEMS.items()}.get(coding.get("system", ""))
                conditions.append(f"{system}:{coding.get('code')}" if system else str(coding.get("code")))
                origin.append(_Origin(f"conditions[{len(conditions) - 1}]", f"{where}.code"))
            elif kind == "Observation":
                code = _code_of(r.get("code") or {}, where)
                if code == "finding":
                    continue
                if code in LAB_RESULTS:
                    if "valueQuantity" not in r:
                        raise InputError(f"{where}.valueQuantity: missing; a lab result needs its value and unit")
                    _put(case, code.split("."), _read_quantity(r["valueQuantity"], f"{where}.valueQuantity"))
                    origin.append(_Origin(code, f"{where}.valueQuantity", exact=True))
                elif code == "case":
                    fields = _fields_from_components(
                        r,
                        where,
                        {
                            "age_years",
                            "test_date",
                            "note",
                            "rif_judgement",
                            "conditions_recorded",
                            "pregnancies_recorded",
                            "transfers_recorded",
                        },
                    )
                    if "age_years" in fields:
                        case["woman"]["age_years"] = fields.pop("age_years")
                        origin.append(_Origin("woman.age_years", f"{where}.component[age_years]"))
                    for key in ("conditions_recorded", "pregnancies_recorded", "transfers_recorded"):
                        recorded[key] = bool(fields.pop(key, False))
                    case.update(fields)
                elif code in _LIST_SECTIONS:
                    target = pregnancies if code == "pregnancy" else transfers
                    path = f"{_LIST_SECTIONS[code]}[{len(target)}]"
                    target.append(_fields_from_components(r, where, _section_fields(_SECTION_TYPES[code])))
                    origin.append(_Origin(path, f"{where}.component"))
                elif code in _INVESTIGATIONS:
                    fields = _fields_from_components(r, where, _section_fields(_investigation_type(code)))
                    case["investigations"].setdefault(code, {}).update(fields)
                    origin.append(_Origin(f"investigations.{code}", f"{where}.component"))
                elif code in _NK:
                    fields = _fields_from_components(r, where, _section_fields(_SECTION_TYPES[code]))
                    case["nk"].setdefault(_NK[code], {}).update(fields)
                    origin.append(_Origin(f"nk.{_NK[code]}", f"{where}.component"))
                elif code == "woman_kir":
                    case["genotypes"]["woman_kir"] = _fields_from_components(r, where, _section_fields(KirTyping))
                    origin.append(_Origin("genotypes.woman_kir", f"{where}.component"))
                elif code == "hla_c_genotype":
                    fields = _fields_from_components(r, where, {"role", "id"})
                    role, gl = fields.get("role"), _genotype_text(r, where)
                    element = f"{where}.valueCodeableConcept.text"
                    if role == "oocyte_donor":
                        donors.append({"id": fields.get("id"), "hla_c": gl})
                        origin.append(_Origin(f"genotypes.oocyte_donors[{len(donors) - 1}]", element))
                    elif role == "embryo":
                        embryos.append({"id": fields.get("id"), "hla_c": gl})
                        origin.append(_Origin(f"genotypes.embryos[{len(embryos) - 1}]", element))
                    elif role in ("woman", "partner", "sperm_donor"):
                        case["genotypes"][f"{role}_hla_c"] = gl
                        origin.append(_Origin(f"genotypes.{role}_hla_c", element))
                    else:
                        raise InputError(
                            f"{where}.component[role]: unknown role {role!r}; "
                            "allowed: woman, partner, sperm_donor, oocyte_donor, embryo"
                        )
                elif code == "gametes":
                    case["genotypes"].update(_fields_from_components(r, where, {"oocytes", "sperm", "oocyte_donor_id"}))
                else:
                    raise InputError(f"{where}.code: unknown code {code!r} in {CODE_SYSTEM}")
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            # an element of the wrong shape that the checks above did not foresee; its value is never quoted
            detail = f" (element {exc.args[0]!r})" if isinstance(exc, KeyError) and exc.args else ""
            raise _Malformed(f"{where}: malformed{detail}; see the layout decidua exports") from None
    if donors:
        case["genotypes"]["oocyte_donors"] = donors
    if embryos:
        case["genotypes"]["embryos"] = embryos
    case["conditions"] = conditions if recorded.get("conditions_recorded") else None
    case["pregnancies"] = pregnancies if recorded.get("pregnancies_recorded") else None
    case["transfers"] = transfers if recorded.get("transfers_recorded") else None
    if case.get("case_id") is None:
        raise InputError(f"Patient.identifier: no identifier with system {CASE_ID_SYSTEM} (the case id)")
    try:
        return parse_case(case, "FHIR Bundle")
    except CaseInvalid as exc:
        raise CaseInvalid([_locate(p, origin) for p in exc.problems], "FHIR Bundle") from None


def _locate(problem: Problem, origin: list[_Origin]) -> Problem:
    """Prefix a case-path problem with the resource element it was read from."""
    best = max((o for o in origin if problem.path.startswith(o.path)), key=lambda o: len(o.path), default=None)
    if best is None:
        return problem
    element = best.element + problem.path[len(best.path) :] if best.exact else best.element
    return Problem(f"{element} ({problem.path})", problem.value, problem.allowed)


__all__ = ["export_bundle", "import_bundle"]
