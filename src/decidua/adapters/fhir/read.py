"""A case read back from a FHIR Bundle written by the export (or laid out the same way); problems name the
resource and element they come from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from decidua.adapters.fhir.codes import (
    CASE_ID_SYSTEM,
    CODE_SYSTEM,
    CONDITION_SYSTEMS,
    GLSTRING,
    LAB_RESULTS,
    RULE_SYSTEM,
)
from decidua.adapters.fhir.components import (
    INVESTIGATIONS,
    LIST_SECTIONS,
    NK_SECTIONS,
    base_type,
    code_of,
    fields_from_components,
    put_path,
    read_quantity,
    type_hints,
)
from decidua.app.casefile import parse_case
from decidua.core.case import (
    AntiphospholipidPanel,
    Case,
    EmbryoTransfer,
    Investigations,
    KirTyping,
    PeripheralNK,
    Pregnancy,
    Thrombophilia,
    Thyroid,
    UterineAssessment,
    UterineNK,
)
from decidua.core.errors import CaseInvalid, InputError, Problem, shown

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
    return _SECTION_TYPES.get(name) or base_type(type_hints(Investigations)[name])


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
    _check_identities(data.get("entry") or [])
    try:
        return _read_bundle(data)
    except _Malformed as exc:
        raise InputError(str(exc)) from None


COUNTED = ("conditions_count", "pregnancies_count", "transfers_count")  # Bundles exported since kb 2026.11.3


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


def _references(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _check_identities(entries: list[Any]) -> None:
    """Each resource once, one Patient, and every reference within the Bundle resolvable: a Bundle with an entry
    repeated would count its pregnancies twice, and one with dangling references was cut or assembled wrongly.
    References to other servers (absolute URLs) and contained resources (``#id``) are not checked."""
    seen_urls: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    twice: list[str] = []
    for n, entry in enumerate(entries):
        resource = entry["resource"]
        url = entry.get("fullUrl")
        if isinstance(url, str):
            if url in seen_urls:
                twice.append(f"fullUrl {url} (entries {seen_urls[url]} and {n})")
            seen_urls.setdefault(url, n)
        if isinstance(resource.get("id"), str):
            key = f"{resource['resourceType']}/{resource['id']}"
            if key in seen_ids:
                twice.append(f"{key} (entries {seen_ids[key]} and {n})")
            seen_ids.setdefault(key, n)
    if twice:
        raise InputError(f"Bundle.entry: each resource must appear once; repeated: {'; '.join(twice[:10])}")
    patients = [n for n, e in enumerate(entries) if e["resource"]["resourceType"] == "Patient"]
    if len(patients) > 1:
        raise InputError(f"Bundle.entry: one Patient per Bundle (one case); got {len(patients)}: entries {patients}")
    dangling = sorted(
        {
            ref
            for entry in entries
            for ref in _references(entry["resource"])
            if not ref.startswith(("#", "http://", "https://")) and ref not in seen_urls and ref not in seen_ids
        }
    )
    if dangling:
        shown_refs = ", ".join(dangling[:10]) + (f" and {len(dangling) - 10} more" if len(dangling) > 10 else "")
        raise InputError(
            f"Bundle: {len(dangling)} reference(s) to resources not in the Bundle: {shown_refs} "
            "(was it cut short? export the case again)"
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
    counts: dict[str, tuple[object, str]] = {}  # the case Observation's counts of each list, where they were read
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
                if any(c.get("system") == RULE_SYSTEM for c in r.get("code", {}).get("coding") or []):
                    continue  # the assessment's RPL/RIF classification, not a condition of the case
                coding = (r.get("code", {}).get("coding") or [{}])[0]
                system = {v: k for k, v in CONDITION_SYSTEMS.items()}.get(coding.get("system", ""))
                conditions.append(f"{system}:{coding.get('code')}" if system else str(coding.get("code")))
                origin.append(_Origin(f"conditions[{len(conditions) - 1}]", f"{where}.code"))
            elif kind == "Observation":
                code = code_of(r.get("code") or {}, where)
                if code == "finding":
                    continue
                if code in LAB_RESULTS:
                    if "valueQuantity" not in r:
                        raise InputError(f"{where}.valueQuantity: missing; a lab result needs its value and unit")
                    put_path(case, code.split("."), read_quantity(r["valueQuantity"], f"{where}.valueQuantity"))
                    origin.append(_Origin(code, f"{where}.valueQuantity", exact=True))
                elif code == "case":
                    fields = fields_from_components(
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
                            *COUNTED,
                        },
                    )
                    if "age_years" in fields:
                        case["woman"]["age_years"] = fields.pop("age_years")
                        origin.append(_Origin("woman.age_years", f"{where}.component[age_years]"))
                    for key in ("conditions_recorded", "pregnancies_recorded", "transfers_recorded"):
                        recorded[key] = bool(fields.pop(key, False))
                    for key in COUNTED:
                        if key in fields:
                            counts[key] = (fields.pop(key), where)
                    case.update(fields)
                elif code in LIST_SECTIONS:
                    target = pregnancies if code == "pregnancy" else transfers
                    path = f"{LIST_SECTIONS[code]}[{len(target)}]"
                    target.append(fields_from_components(r, where, _section_fields(_SECTION_TYPES[code])))
                    origin.append(_Origin(path, f"{where}.component"))
                elif code in INVESTIGATIONS:
                    fields = fields_from_components(r, where, _section_fields(_investigation_type(code)))
                    case["investigations"].setdefault(code, {}).update(fields)
                    origin.append(_Origin(f"investigations.{code}", f"{where}.component"))
                elif code in NK_SECTIONS:
                    fields = fields_from_components(r, where, _section_fields(_SECTION_TYPES[code]))
                    case["nk"].setdefault(NK_SECTIONS[code], {}).update(fields)
                    origin.append(_Origin(f"nk.{NK_SECTIONS[code]}", f"{where}.component"))
                elif code == "woman_kir":
                    case["genotypes"]["woman_kir"] = fields_from_components(r, where, _section_fields(KirTyping))
                    origin.append(_Origin("genotypes.woman_kir", f"{where}.component"))
                elif code == "hla_c_genotype":
                    fields = fields_from_components(r, where, {"role", "id"})
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
                    case["genotypes"].update(fields_from_components(r, where, {"oocytes", "sperm", "oocyte_donor_id"}))
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
    held = {"conditions_count": conditions, "pregnancies_count": pregnancies, "transfers_count": transfers}
    for key, (count, where) in counts.items():
        if count != len(held[key]):
            what = key.removesuffix("_count")
            raise InputError(
                f"{where}.component[{key}]: the Bundle says {count} {what} were recorded and holds {len(held[key])}: "
                "was it cut short or put together by hand? Export the case again"
            )
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
