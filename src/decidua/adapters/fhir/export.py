"""A case and its assessment as a FHIR R4 Bundle (type collection)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from decidua.adapters.fhir.codes import (
    CASE_ID_SYSTEM,
    CODE_SYSTEM,
    CONDITION_SYSTEMS,
    GENE_STUDIED,
    GENOTYPE_DISPLAY_NAME,
    GENOTYPE_PROFILE,
    GLSTRING,
    HGNC,
    HGNC_GENES,
    ICD10_CM,
    INTERPRETATION,
    KB_SYSTEM,
    LAB_RESULTS,
    LABORATORY,
    LOINC,
    RPL_ICD10_CM,
    RPL_SNOMED,
    RULE_SYSTEM,
    lab_concept,
    make_coding,
    make_concept,
    make_quantity,
)
from decidua.adapters.fhir.components import (
    INVESTIGATIONS,
    LIST_SECTIONS,
    NK_SECTIONS,
    components_of,
    local_code,
    value_element,
)
from decidua.app.presenters import citation_data
from decidua.core.case import (
    Case,
    KirTyping,
    Measurement,
    PregnancyOutcome,
)
from decidua.core.errors import InputError
from decidua.core.findings import Assessment, Finding, Status
from decidua.core.units import Quantity
from decidua.core.validation import uterine_quantity
from decidua.immunogenetics.glstring import parse_gl_string, split_namespace
from decidua.immunogenetics.kir import KirGene, calls_from_typing
from decidua.immunogenetics.releases import hla_release, kir_release
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import RangeRule, ThresholdRule

# --- export -------------------------------------------------------------------------------------------------


def _observation(
    ident: str, code: str, components: list[dict[str, Any]], effective: dt.date | None = None
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": make_concept(code),
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
    section = _observation(ident, code, components_of(obj, path, labs), effective)
    results = []
    for lab_path, m in labs.items():
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": _obs_id(lab_path),
            "status": "final",
            "category": LABORATORY,
            "code": lab_concept(lab_path),
            "subject": {"reference": "Patient/patient"},
        }
        if effective is not None:
            obs["effectiveDateTime"] = effective.isoformat()
        obs["valueQuantity"] = make_quantity(m.value, m.unit)
        if method:
            obs["method"] = {"text": method}
        results.append(obs)
    if results:
        section["hasMember"] = [{"reference": f"Observation/{o['id']}"} for o in results]
    return [section, *results]


_GL_ALLELE = re.compile(r"(^|[\^|+~/])(?!HLA-)(?=[A-Z0-9]+\*)")


def gl_string_code(gl: str, namespace: str) -> tuple[str, str]:
    """(GL String Code, its GLSC version) of a typing: ``namespace#release#GL String`` (glstring.org), the release
    the typing names or else the one decidua interprets it with; HLA names get their ``HLA-`` prefix."""
    release, body = split_namespace(gl, namespace)
    if release is None:
        release = (hla_release() if namespace == "hla" else kir_release()).version
    if namespace == "hla":
        body = _GL_ALLELE.sub(r"\1HLA-", body)
    return f"{namespace}#{release}#{body}", "1.1" if "?" in body else "1.0"


def _allele_names_only(gl: str, namespace: str) -> bool:
    """Whether a typing is a GL String of allele names (a GL String Code holds nothing else: not serology such as
    ``Cw7``, not KIR gene names without an allele)."""
    try:
        names = parse_gl_string(gl, namespace).names()
    except InputError:
        return False
    prefix = "KIR" if namespace == "kir" else ""
    return all("*" in n and n.upper().startswith(prefix) for n in names)


def _genotype(ident: str, code: str, gl: str | None, text: str, gene: str | None) -> dict[str, Any]:
    """A genotype Observation in the HL7 Genomics Reporting style: a GL String Code as the value, the gene
    studied with its HGNC id."""
    obs = _observation(ident, code, [])
    obs["meta"] = {"profile": [GENOTYPE_PROFILE]}
    obs["category"] = LABORATORY
    obs["code"]["coding"].insert(0, make_coding(GENOTYPE_DISPLAY_NAME[0], LOINC, GENOTYPE_DISPLAY_NAME[1]))
    value: dict[str, Any] = {"text": text}
    namespace = "hla" if gene == "HLA-C" else "kir"
    if gl is not None and _allele_names_only(gl, namespace):
        glsc, version = gl_string_code(gl, namespace)
        value["coding"] = [{"system": GLSTRING, "version": version, "code": glsc}]
    obs["valueCodeableConcept"] = value
    if gene is not None:
        studied: dict[str, Any] = {"text": gene}
        if gene in HGNC_GENES:
            studied["coding"] = [make_coding(HGNC_GENES[gene], HGNC, gene)]
        obs["component"] = [
            {
                "code": {"coding": [make_coding(GENE_STUDIED[0], LOINC, GENE_STUDIED[1])]},
                "valueCodeableConcept": studied,
            }
        ]
    return obs


def _genes_studied(k: KirTyping) -> list[dict[str, Any]]:
    """One gene-studied component (LOINC 48018-6, HGNC id) per KIR gene the typing tested (present or absent)."""
    calls = calls_from_typing(k)
    tested = sorted(set(calls.present) | set(calls.absent), key=list(KirGene).index)
    out = []
    for gene in tested:
        studied: dict[str, Any] = {"text": gene.value}
        if gene.value in HGNC_GENES:
            studied["coding"] = [make_coding(HGNC_GENES[gene.value], HGNC, gene.value)]
        out.append(
            {
                "code": {"coding": [make_coding(GENE_STUDIED[0], LOINC, GENE_STUDIED[1])]},
                "valueCodeableConcept": studied,
            }
        )
    return out


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
        # how many entries of each list follow: a Bundle cut short is refused on import, never read as "none"
        "conditions_count": None if case.conditions is None else len(case.conditions),
        "pregnancies_count": None if case.pregnancies is None else len(case.pregnancies),
        "transfers_count": None if case.transfers is None else len(case.transfers),
    }
    out.append(
        _observation(
            "case", "case", [{"code": make_concept(k), **value_element(v)} for k, v in header.items() if v is not None]
        )
    )
    for i, cond in enumerate(case.conditions or ()):
        system, sep, code = cond.partition(":")
        if sep and system in CONDITION_SYSTEMS:
            coding = make_coding(code, CONDITION_SYSTEMS[system])
        else:
            coding = make_coding(cond, f"{CODE_SYSTEM}/Condition")
        out.append(
            {
                "resourceType": "Condition",
                "id": f"condition-{i}",
                "subject": {"reference": "Patient/patient"},
                "code": {"coding": [coding], "text": cond},
            }
        )
    for code, attr in LIST_SECTIONS.items():
        for i, item in enumerate(getattr(case, attr) or ()):
            out.append(_observation(f"{code}-{i}", code, components_of(item, attr, {})))
    for name in INVESTIGATIONS:
        value = getattr(case.investigations, name)
        if value is not None:
            out += _section(name.replace("_", "-"), name, value, f"investigations.{name}", case.test_date)
    for code, attr in NK_SECTIONS.items():
        value = getattr(case.nk, attr)
        if value is not None:
            out += _section(code, code, value, f"nk.{attr}", value.date or case.test_date, value.method)
    g = case.genotypes
    if g.woman_kir is not None:
        kir = _genotype("woman-kir", "woman_kir", g.woman_kir.gl_string, _kir_text(g.woman_kir), None)
        kir["component"] = [*_genes_studied(g.woman_kir), *components_of(g.woman_kir, "genotypes.woman_kir", {})]
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
        obs["component"].append({"code": make_concept("role"), "valueString": role})
        if person_id is not None:
            obs["component"].append({"code": make_concept("id"), "valueString": person_id})
        out.append(obs)
    gametes = {"oocytes": g.oocytes, "sperm": g.sperm, "oocyte_donor_id": g.oocyte_donor_id}
    out.append(
        _observation(
            "gametes",
            "gametes",
            [{"code": make_concept(k), **value_element(v)} for k, v in gametes.items() if v is not None],
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
                "low": make_quantity(rule.low, rule.unit),
                "high": make_quantity(rule.high, rule.unit),
                "text": f"{rule.title}" + (f" ({rule.applies_label})" if rule.applies_label else ""),
            }
        )
    elif isinstance(rule, ThresholdRule):
        side = "high" if rule.direction == "above" else "low"
        for band in rule.bands:
            out.append({side: make_quantity(band.value, rule.unit), "text": f"{rule.title}: cut-off ({band.label})"})
        otherwise = " (otherwise)" if rule.bands else ""
        out.append({side: make_quantity(rule.value, rule.unit), "text": f"{rule.title}: cut-off{otherwise}"})
        for c in rule.context:
            out.append({"low": make_quantity(c.low, c.unit), "high": make_quantity(c.high, c.unit), "text": c.label})
    return out


def _annotate_labs(
    resources: list[dict[str, Any]], case: Case, findings: dict[str, Finding], kb: KnowledgeBase
) -> None:
    """Add the HL7 interpretation and the reference ranges of the rules that read each lab result."""
    for obs in resources:
        path = local_code(obs["code"]) if obs["resourceType"] == "Observation" else None
        if path not in LAB_RESULTS:
            continue
        rule_id = _rule_reading(path, obs, kb)
        if rule_id is not None:
            f = findings.get(rule_id)
            if f is not None and f.interpretation is not None:
                obs["interpretation"] = [{"coding": [make_coding(f.interpretation.value, INTERPRETATION)]}]
            ranges = _reference_ranges(rule_id, kb)
            if ranges:
                obs["referenceRange"] = ranges
        elif path == "investigations.thyroid.tsh" and case.investigations.thyroid is not None:
            reading = case.investigations.thyroid.tsh_interpretation.value
            flag = {"normal": "N", "abnormal": "A"}.get(reading)
            if flag:
                obs["interpretation"] = [{"coding": [make_coding(flag, INTERPRETATION)]}]
                obs["referenceRange"] = [{"text": "the laboratory's own reference interval"}]


_CLASSIFICATION_NOTE = "Computed by decidua from the recorded history; decision support, for the clinician to confirm."


def _classification_conditions(case: Case, assessment: Assessment) -> list[dict[str, Any]]:
    """RPL and RIF, when the definition in force is met, as provisional Conditions naming the definition (the
    import skips them: they are the assessment's, not the case's)."""
    c = assessment.classification
    pregnant = any(p.outcome is PregnancyOutcome.ONGOING for p in case.pregnancies or ())
    out = []
    for name, status, definition, label in (
        ("rpl", c.rpl, c.rpl_definition, f"Recurrent pregnancy loss ({c.losses_shown} losses counted)"),
        ("rif", c.rif, c.rif_definition, f"Recurrent implantation failure ({c.failed_transfers} failed transfers)"),
    ):
        if status is not Status.FLAGGED:
            continue
        finding = assessment.finding(definition)
        codings = [make_coding(definition, RULE_SYSTEM, finding.title)]
        if name == "rpl":
            codings.insert(0, make_coding(RPL_SNOMED[0], CONDITION_SYSTEMS["snomed"], RPL_SNOMED[1]))
            if not pregnant:
                codings.insert(1, make_coding(RPL_ICD10_CM[0], ICD10_CM, RPL_ICD10_CM[1]))
        out.append(
            {
                "resourceType": "Condition",
                "id": f"classification-{name}",
                "verificationStatus": {
                    "coding": [
                        make_coding(
                            "provisional",
                            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "Provisional",
                        )
                    ]
                },
                "code": {
                    "coding": codings,
                    "text": f"{label}: {finding.title}, knowledge base {assessment.kb_version}",
                },
                "subject": {"reference": "Patient/patient"},
                "evidence": [{"detail": [{"reference": f"Observation/finding-{assessment.findings.index(finding)}"}]}],
                "note": [{"text": _CLASSIFICATION_NOTE}],
            }
        )
    return out


def _assessment_resources(
    case: Case, assessment: Assessment, kb: KnowledgeBase, result_ids: list[str]
) -> list[dict[str, Any]]:
    out = []
    for i, f in enumerate(assessment.findings):
        obs = _observation(f"finding-{i}", "finding", [])
        obs["code"]["coding"].append(make_coding(f.rule_id, RULE_SYSTEM, f.title))
        obs["valueCodeableConcept"] = {
            "coding": [make_coding(f.status.value, f"{CODE_SYSTEM}/Status")],
            "text": f.status.value,
        }
        if f.interpretation is not None:
            obs["interpretation"] = [{"coding": [make_coding(f.interpretation.value, INTERPRETATION)]}]
        notes = [{"text": f.summary}, {"text": f"rule {f.rule_id}, knowledge base {f.kb_version}"}]
        notes += [{"text": "cites: " + citation_data(kb, k)["text"]} for k in f.citations]
        for st in f.stances:
            checked = "" if st.verified else " (not checked against the guideline)"
            notes.append({"text": f"guideline stance, {st.source} ({st.strength}){checked}: {st.text}"})
        obs["note"] = notes
        out.append(obs)
    c = assessment.classification
    conditions = _classification_conditions(case, assessment)
    report = {
        "resourceType": "DiagnosticReport",
        "id": "assessment",
        "identifier": [{"system": KB_SYSTEM, "value": assessment.kb_version}],
        "status": "final",
        "code": make_concept("assessment", "decidua assessment (decision support, not a diagnosis)"),
        "subject": {"reference": "Patient/patient"},
        "result": [{"reference": f"Observation/{o['id']}"} for o in out]
        + [{"reference": f"Observation/{i}"} for i in result_ids],
        "conclusion": (
            f"RPL {c.rpl.value} ({c.rpl_definition}, {c.losses_shown} losses counted); "
            f"RIF {c.rif.value} ({c.rif_definition}). Reference data: {', '.join(assessment.reference_data)}. "
            "Decision support, not a diagnosis or a prescription."
        ),
    }
    if conditions:
        report["conclusionCode"] = [r["code"] for r in conditions]
    out += conditions
    return [*out, report]


_NOT_RESULTS = ("case", "gametes", "pregnancy", "embryo-transfer")


def export_bundle(case: Case, assessment: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The case and its assessment as a FHIR Bundle (JSON-ready), validated with fhir.resources."""
    resources = _case_resources(case)
    _annotate_labs(resources, case, {f.rule_id: f for f in assessment.findings}, kb)
    result_ids = [
        r["id"] for r in resources if r["resourceType"] == "Observation" and local_code(r["code"]) not in _NOT_RESULTS
    ]
    resources += _assessment_resources(case, assessment, kb, result_ids)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": CASE_ID_SYSTEM, "value": case.case_id},
        "entry": [{"fullUrl": f"urn:decidua:{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }
    Bundle.model_validate(bundle)  # a bug here, not an input error: let it raise
    return bundle
