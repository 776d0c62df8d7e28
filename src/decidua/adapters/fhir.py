"""HL7 FHIR R4 interchange: a case and its assessment as a Bundle, and a case back from such a Bundle.

Resources are built as JSON and validated with ``fhir.resources`` (its ``R4B`` models: fhir.resources 7 and later
ship R5 and R4B, and R4B 4.3.0 is a technical correction of R4 4.0.1 that leaves Patient, Observation, Condition,
DiagnosticReport and Bundle, the only resources used here, unchanged; decidua's JSON is therefore valid R4).

The Bundle (type ``collection``) holds:

* ``Patient``: identifier = the pseudonymous case id (system :data:`CASE_ID_SYSTEM`), birthDate when known;
* ``Condition``: one per recorded condition (decidua's own codes, ICD-10, ICD-11, SNOMED CT or free codes);
* ``Observation``: one per case section (age, each pregnancy, each embryo transfer, each investigation,
  peripheral and uterine NK, KIR gene content, each HLA-C typing), the section's fields as components. Lab
  results carry LOINC codes where one exists (TSH 3016-3, TPO antibodies 8099-4, NK cells 107067-1 and 9728-7,
  see the README) next to decidua's local code (system :data:`CODE_SYSTEM`); uterine NK density has no LOINC
  code and keeps its local one. Genotypes follow the HL7 Genomics Reporting style of a GL String as the value;
* ``DiagnosticReport``: the assessment (code ``assessment``, the kb_version as identifier), whose results are one
  ``Observation`` per finding (rule id, status, HL7 interpretation, summary and citations in notes).

``import_bundle`` reads the case back from the section Observations, Conditions and Patient; export followed by
import gives the same case. Problems name the resource and element they come from.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from decidua.adapters.casefile import parse_case
from decidua.adapters.render import citation_data
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
from decidua.core.errors import CaseInvalid, InputError, Problem
from decidua.core.findings import Assessment
from decidua.knowledge.loader import KnowledgeBase

CODE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua"
RULE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua-rule"
CASE_ID_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/case-id"
KB_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/kb-version"
LOINC = "http://loinc.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_SYSTEMS = {
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "icd11": "http://id.who.int/icd/release/11/mms",
    "snomed": "http://snomed.info/sct",
    "other": "https://decidua.invalid/fhir/CodeSystem/free-text-condition",
}

# LOINC codes of components (decidua field -> LOINC code, display), checked against LOINC's published names.
COMPONENT_LOINC: dict[str, tuple[str, str]] = {
    "tsh": ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma"),
    "tpo_antibodies": ("8099-4", "Thyroperoxidase Ab [Units/volume] in Serum or Plasma"),
    "nk_percent": ("107067-1", "CD19-CD3-CD56+ (NK)/Cells in Blood by Flow cytometry (FC)"),
    "absolute_count": ("9728-7", "CD3-CD16+CD56+ (Natural killer) cells [#/volume] in Blood"),
}


def _coding(code: str, system: str = CODE_SYSTEM, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(code: str, text: str | None = None) -> dict[str, Any]:
    coding = [_coding(code)]
    if code in COMPONENT_LOINC:
        loinc, display = COMPONENT_LOINC[code]
        coding.insert(0, _coding(loinc, LOINC, display))
    return {"coding": coding, "text": text or code.replace("_", " ")}


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
        return {"valueQuantity": {"value": value.value, "unit": value.unit}}
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


def _components(obj: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Every non-missing field of a dataclass as a component; nested dataclasses flattened with dots."""
    out = []
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if value is None or value == ():
            continue  # missing stays missing; FHIR strings may not be empty
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, Measurement):
            out += _components(value, f"{name}.")
            continue
        out.append({"code": _concept(name), **_value(value)})
    return out


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
            if key == "valueQuantity":
                return {"value": v.get("value"), "unit": v["unit"]} if "unit" in v else v.get("value")
            if key == "valueCodeableConcept":
                codings = v.get("coding") or []
                if not codings:
                    raise InputError(f"{where}.valueCodeableConcept: no coding")
                return codings[0]["code"]
            return v
    raise InputError(f"{where}: no value[x]")


def _code_of(concept: dict[str, Any], where: str) -> str:
    for coding in concept.get("coding") or []:
        if coding.get("system") == CODE_SYSTEM:
            return str(coding["code"])
    raise InputError(f"{where}.code: no coding in {CODE_SYSTEM}")


def _fields_from_components(obs: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    """Components -> nested mapping of field values (dotted names unflattened)."""
    data: dict[str, Any] = {}
    for i, component in enumerate(obs.get("component") or []):
        at = f"{where}.component[{i}]"
        name = _code_of(component.get("code") or {}, at)
        if name.split(".")[0] not in allowed:
            raise InputError(f"{at}.code: unknown code {name!r}; allowed here: {', '.join(sorted(allowed))}")
        value = _read_value(component, at)
        target = data
        *parents, leaf = name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value.split(",") if leaf in ("present", "absent", "untested") and value else value
    return data


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
            out.append(_observation(f"{code}-{i}", code, _components(item)))
    for name in _INVESTIGATIONS:
        value = getattr(case.investigations, name)
        if value is not None:
            out.append(_observation(name.replace("_", "-"), name, _components(value)))
    for code, attr in _NK.items():
        value = getattr(case.nk, attr)
        if value is not None:
            out.append(_observation(code, code, _components(value), value.date))
    g = case.genotypes
    if g.woman_kir is not None:
        out.append(_observation("woman-kir", "woman_kir", _components(g.woman_kir)))
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
        components = [{"code": _concept("role"), "valueString": role}]
        if person_id is not None:
            components.append({"code": _concept("id"), "valueString": person_id})
        obs = _observation(f"hla-c-{i}", "hla_c_genotype", components)
        obs["code"]["text"] = "HLA-C genotype (GL String)"
        if gl is not None:
            obs["valueString"] = gl  # GL String, as HL7 Genomics Reporting carries genotypes
        out.append(obs)
    gametes = {"oocytes": g.oocytes, "sperm": g.sperm, "oocyte_donor_id": g.oocyte_donor_id}
    out.append(
        _observation(
            "gametes", "gametes", [{"code": _concept(k), **_value(v)} for k, v in gametes.items() if v is not None]
        )
    )
    return out


def _assessment_resources(assessment: Assessment, kb: KnowledgeBase, lab_ids: list[str]) -> list[dict[str, Any]]:
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
        if f.stance:
            notes.append({"text": f"guideline stance: {f.stance}"})
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
        + [{"reference": f"Observation/{i}"} for i in lab_ids],
        "conclusion": (
            f"RPL {c.rpl.value} ({c.rpl_definition}, {c.losses_counted} losses counted); "
            f"RIF {c.rif.value} ({c.rif_definition}). Decision support, not a diagnosis or a prescription."
        ),
    }
    return [*out, report]


def export_bundle(case: Case, assessment: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The case and its assessment as a FHIR Bundle (JSON-ready), validated with fhir.resources."""
    resources = _case_resources(case)
    lab_ids = [r["id"] for r in resources if r["resourceType"] == "Observation" and r["id"] not in ("case", "gametes")]
    resources += _assessment_resources(assessment, kb, lab_ids)
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


def import_bundle(data: object) -> Case:
    """Build a case from a Bundle written by :func:`export_bundle` (or one following the same layout).

    Raises
    ------
    InputError
        Naming the resource and element: a structurally invalid Bundle, an unknown code, or a value the case
        model rejects (e.g. a unit that is not allowed).
    """
    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"Bundle.{where}: {first['msg']}") from None
    assert isinstance(data, dict)
    case: dict[str, Any] = {"woman": {}, "investigations": {}, "nk": {}, "genotypes": {}}
    origin: list[tuple[str, str]] = []  # (case path prefix, resource element) for error messages
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
        if kind == "Patient":
            case["case_id"] = next(
                (i["value"] for i in r.get("identifier", []) if i.get("system") == CASE_ID_SYSTEM), None
            )
            if "birthDate" in r:
                case["woman"]["date_of_birth"] = r["birthDate"]
            origin.append(("woman.date_of_birth", f"{where}.birthDate"))
        elif kind == "Condition":
            coding = (r.get("code", {}).get("coding") or [{}])[0]
            system = {v: k for k, v in CONDITION_SYSTEMS.items()}.get(coding.get("system", ""))
            conditions.append(f"{system}:{coding.get('code')}" if system else str(coding.get("code")))
            origin.append((f"conditions[{len(conditions) - 1}]", f"{where}.code"))
        elif kind == "Observation":
            code = _code_of(r.get("code") or {}, where)
            if code in ("finding",):
                continue
            if code == "case":
                fields = _fields_from_components(
                    r,
                    where,
                    {
                        "age_years",
                        "test_date",
                        "note",
                        "conditions_recorded",
                        "pregnancies_recorded",
                        "transfers_recorded",
                    },
                )
                if "age_years" in fields:
                    case["woman"]["age_years"] = fields.pop("age_years")
                    origin.append(("woman.age_years", f"{where}.component[age_years]"))
                for key in ("conditions_recorded", "pregnancies_recorded", "transfers_recorded"):
                    recorded[key] = bool(fields.pop(key, False))
                case.update(fields)
            elif code in _LIST_SECTIONS:
                target = pregnancies if code == "pregnancy" else transfers
                path = f"{_LIST_SECTIONS[code]}[{len(target)}]"
                target.append(_fields_from_components(r, where, _section_fields(_SECTION_TYPES[code])))
                origin.append((path, f"{where}.component"))
            elif code in _INVESTIGATIONS:
                case["investigations"][code] = _fields_from_components(
                    r, where, _section_fields(_investigation_type(code))
                )
                origin.append((f"investigations.{code}", f"{where}.component"))
            elif code in _NK:
                case["nk"][_NK[code]] = _fields_from_components(r, where, _section_fields(_SECTION_TYPES[code]))
                origin.append((f"nk.{_NK[code]}", f"{where}.component"))
            elif code == "woman_kir":
                case["genotypes"]["woman_kir"] = _fields_from_components(r, where, _section_fields(KirTyping))
                origin.append(("genotypes.woman_kir", f"{where}.component"))
            elif code == "hla_c_genotype":
                fields = _fields_from_components(r, where, {"role", "id"})
                role, gl = fields.get("role"), r.get("valueString")
                if role == "oocyte_donor":
                    donors.append({"id": fields.get("id"), "hla_c": gl})
                    origin.append((f"genotypes.oocyte_donors[{len(donors) - 1}]", f"{where}.valueString"))
                elif role == "embryo":
                    embryos.append({"id": fields.get("id"), "hla_c": gl})
                    origin.append((f"genotypes.embryos[{len(embryos) - 1}]", f"{where}.valueString"))
                elif role in ("woman", "partner", "sperm_donor"):
                    case["genotypes"][f"{role}_hla_c"] = gl
                    origin.append((f"genotypes.{role}_hla_c", f"{where}.valueString"))
                else:
                    raise InputError(
                        f"{where}.component[role]: unknown role {role!r}; "
                        "allowed: woman, partner, sperm_donor, oocyte_donor, embryo"
                    )
            elif code == "gametes":
                case["genotypes"].update(_fields_from_components(r, where, {"oocytes", "sperm", "oocyte_donor_id"}))
            else:
                raise InputError(f"{where}.code: unknown code {code!r} in {CODE_SYSTEM}")
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


def _locate(problem: Problem, origin: list[tuple[str, str]]) -> Problem:
    """Prefix a case-path problem with the resource element it was read from."""
    best = max((o for o in origin if problem.path.startswith(o[0])), key=lambda o: len(o[0]), default=None)
    if best is None:
        return problem
    return Problem(f"{best[1]} ({problem.path})", problem.value, problem.allowed)


__all__ = ["export_bundle", "import_bundle"]
