from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from decidua.adapters.fhir import (
    CODE_SYSTEM,
    GENOTYPE_PROFILE,
    GLSTRING,
    LAB_RESULTS,
    LOINC,
    UCUM,
    UCUM_CODES,
    export_bundle,
    import_bundle,
)
from decidua.app.casefile import read_case
from decidua.core.case import Case, Pregnancy, PregnancyOutcome
from decidua.core.errors import InputError
from decidua.core.units import UNITS
from decidua.engines.assess import assess
from decidua.entrypoints.cli.main import app
from decidua.knowledge.loader import KnowledgeBase, load_kb

from conftest import EXAMPLES
from strategies import cases

runner = CliRunner()
KB = load_kb()
MODELS = {"Patient": Patient, "Condition": Condition, "Observation": Observation, "DiagnosticReport": DiagnosticReport}


def export(case: Case) -> dict[str, Any]:
    return json.loads(json.dumps(export_bundle(case, assess(case, KB), KB)))  # as written to a file


def bundle_of(name: str) -> dict[str, Any]:
    return export(read_case(EXAMPLES / name))


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def observation(bundle: dict[str, Any], ident: str) -> dict[str, Any]:
    return next(o for o in resources(bundle, "Observation") if o["id"] == ident)


def codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept["coding"] if c["system"] == system]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_export_then_import_gives_the_same_case(path: Path) -> None:
    case = read_case(path)
    assert import_bundle(export(case)) == case


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(cases())
def test_round_trip_on_generated_cases(case: Case) -> None:
    assert import_bundle(export(case)) == case


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_resource_validates_with_fhir_resources(path: Path) -> None:
    bundle = bundle_of(path.name)
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        raw = entry["resource"]
        MODELS[raw["resourceType"]].model_validate(raw)
    ids = {o["id"] for o in resources(bundle, "Observation")}
    (report,) = resources(bundle, "DiagnosticReport")
    assert report["identifier"][0]["value"] == KB.kb_version
    assert {r["reference"].split("/")[1] for r in report["result"]} <= ids
    for o in resources(bundle, "Observation"):
        assert {m["reference"].split("/")[1] for m in o.get("hasMember", [])} <= ids


def test_lab_results_are_observations_with_loinc_ucum_flag_and_reference_range(kb: KnowledgeBase) -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    nk = observation(bundle, "nk-peripheral-nk-percent")
    assert codes(nk["code"], LOINC) == ["107067-1"]
    assert codes(nk["code"], CODE_SYSTEM) == ["nk.peripheral.nk_percent"]
    assert nk["category"][0]["coding"][0]["code"] == "laboratory"
    assert nk["valueQuantity"] == {"value": 20.0, "unit": "%", "system": UCUM, "code": "%"}
    assert nk["interpretation"][0]["coding"][0]["code"] == "H"
    # the reference ranges are the rule's cut-offs and context interval, read from the knowledge base
    rule = kb.rule("nk.peripheral.clinic")
    highs = [r["high"]["value"] for r in nk["referenceRange"] if "high" in r]
    assert highs == [*(b.value for b in rule.bands), rule.value, *(c.high for c in rule.context)]  # type: ignore[attr-defined]
    panel = observation(bundle, "nk-peripheral")
    assert {"reference": "Observation/nk-peripheral-nk-percent"} in panel["hasMember"]
    absolute = observation(bundle, "nk-peripheral-absolute-count")
    assert codes(absolute["code"], LOINC) == ["9728-7"]
    tsh = observation(bundle, "investigations-thyroid-tsh")
    assert codes(tsh["code"], LOINC) == ["3016-3"]
    assert tsh["interpretation"][0]["coding"][0]["code"] == "N"  # the laboratory's own reading


def test_uterine_nk_density_has_a_local_code_only() -> None:
    bundle = bundle_of("06-sle-rif-uterine-nk.yaml")
    unk = observation(bundle, "nk-uterine-density")
    assert codes(unk["code"], LOINC) == []
    assert codes(unk["code"], CODE_SYSTEM) == ["nk.uterine.density"]
    assert unk["interpretation"][0]["coding"][0]["code"] == "H"
    assert unk["referenceRange"][0]["low"]["value"] < unk["referenceRange"][0]["high"]["value"]


def test_findings_carry_rules_citations_and_stance() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    findings = [o for o in resources(bundle, "Observation") if "finding" in codes(o["code"], CODE_SYSTEM)]
    nk = next(f for f in findings if f["code"]["coding"][1]["code"] == "nk.peripheral.clinic")
    assert nk["valueCodeableConcept"]["text"] == "flagged"
    assert nk["interpretation"][0]["coding"][0]["code"] == "H"
    assert any(n["text"].startswith("cites: ") for n in nk["note"])
    assert any(n["text"].startswith("guideline stance, ESHRE RPL guideline 2017") for n in nk["note"])


def test_genotypes_follow_genomics_reporting_with_gl_strings() -> None:
    bundle = bundle_of("09-egg-donation-donor-ranking.yaml")
    genotypes = [o for o in resources(bundle, "Observation") if o.get("meta", {}).get("profile") == [GENOTYPE_PROFILE]]
    assert all(codes(g["code"], LOINC) == ["84413-4"] for g in genotypes)
    hla = [g for g in genotypes if "hla_c_genotype" in codes(g["code"], CODE_SYSTEM)]
    texts = {g["valueCodeableConcept"]["text"] for g in hla}
    assert {"C*07:01+C*03:04", "C*06:02+C*05:01"} <= texts
    gl = {g["valueCodeableConcept"]["coding"][0]["code"] for g in hla}
    assert "hla#3.58.0#HLA-C*07:01+HLA-C*03:04" in gl  # a GL String Code: namespace, release, GL String
    assert all(g["valueCodeableConcept"]["coding"][0]["system"] == GLSTRING for g in hla)
    assert all(g["valueCodeableConcept"]["coding"][0]["version"] == "1.0" for g in hla)
    studied = hla[0]["component"][0]
    assert codes(studied["code"], LOINC) == ["48018-6"]
    assert studied["valueCodeableConcept"]["coding"] == [
        {"system": "http://www.genenames.org", "code": "HGNC:4933", "display": "HLA-C"}
    ]
    (kir,) = [g for g in genotypes if "woman_kir" in codes(g["code"], CODE_SYSTEM)]
    assert kir["valueCodeableConcept"]["text"].startswith("KIR gene content; present: ")
    # one gene studied per KIR gene typed, coded with its HGNC id (KIR2DL5 unsplit: by name only)
    genes = {
        c["valueCodeableConcept"]["text"]: c["valueCodeableConcept"].get("coding", [{}])[0].get("code")
        for c in kir["component"]
        if codes(c["code"], LOINC) == ["48018-6"]
    }
    assert genes["KIR2DL1"] == "HGNC:6329"
    assert genes["KIR3DL1"] == "HGNC:6338"
    assert all(code is not None for gene, code in genes.items() if gene != "KIR2DL5")


def test_a_kir_gl_string_exports_as_a_code_with_its_release_and_a_bundle_with_codes_only_imports() -> None:
    case = read_case(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml")
    kir = replace(case.genotypes.woman_kir, gl_string="KIR2DL1*003+KIR2DL1*002")
    case = replace(case, genotypes=replace(case.genotypes, woman_kir=kir))
    bundle = export_bundle(case, assess(case, load_kb()), load_kb())
    woman_kir = observation(bundle, "woman-kir")
    assert woman_kir["valueCodeableConcept"]["coding"][0]["code"] == "kir#2.13.0#KIR2DL1*003+KIR2DL1*002"
    for obs in resources(bundle, "Observation"):  # another system sends the GL String Codes, not our text
        if obs.get("meta", {}).get("profile") == [GENOTYPE_PROFILE] and "valueCodeableConcept" in obs:
            obs["valueCodeableConcept"].pop("text", None)
    back = import_bundle(bundle)
    assert back.genotypes.woman_kir is not None
    assert back.genotypes.woman_kir.gl_string == "KIR2DL1*003+KIR2DL1*002"  # from its components, as given
    assert back.genotypes.woman_hla_c == "hla#3.58.0#HLA-C*07:02+HLA-C*03:04"
    assert assess(back, load_kb()).findings == assess(case, load_kb()).findings  # same meaning


def test_a_serological_typing_keeps_its_text_and_gets_no_gl_string_code() -> None:
    case = read_case(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml")
    case = replace(case, genotypes=replace(case.genotypes, woman_hla_c="Cw7+Cw6"))
    bundle = export_bundle(case, assess(case, load_kb()), load_kb())
    woman = next(
        o for o in resources(bundle, "Observation") if o.get("valueCodeableConcept", {}).get("text") == "Cw7+Cw6"
    )
    assert "coding" not in woman["valueCodeableConcept"]  # a GL String Code names release alleles only
    assert import_bundle(bundle) == case


def test_met_rpl_and_rif_definitions_export_as_provisional_coded_conditions_the_import_skips() -> None:
    rpl = next(
        c for c in resources(bundle_of("01-rpl-age36-nk-high.yaml"), "Condition") if c["id"] == "classification-rpl"
    )
    assert [c["code"] for c in rpl["code"]["coding"]] == ["102878001", "N96", "classification.rpl.eshre2022"]
    assert rpl["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert rpl["code"]["text"] == (
        "Recurrent pregnancy loss (4 losses counted): Recurrent pregnancy loss (ESHRE definition), "
        "knowledge base 2026.11.3"
    )
    pregnant = read_case(EXAMPLES / "01-rpl-age36-nk-high.yaml")
    pregnant = replace(pregnant, pregnancies=(*(pregnant.pregnancies or ()), Pregnancy(PregnancyOutcome.ONGOING)))
    exported = export_bundle(pregnant, assess(pregnant, load_kb()), load_kb())
    rpl_now = next(c for c in resources(exported, "Condition") if c["id"] == "classification-rpl")
    assert "N96" not in [c["code"] for c in rpl_now["code"]["coding"]]  # ICD-10-CM sends a current pregnancy to O26.2
    bundle = bundle_of("06-sle-rif-uterine-nk.yaml")
    classified = {c["id"]: c for c in resources(bundle, "Condition") if c["id"].startswith("classification-")}
    rif = classified["classification-rif"]
    assert "Recurrent implantation failure" in rif["code"]["text"]
    assert rif["evidence"][0]["detail"][0]["reference"].startswith("Observation/finding-")
    report = next(iter(resources(bundle, "DiagnosticReport")))
    assert [c["text"] for c in report["conclusionCode"]] == [c["code"]["text"] for c in classified.values()]
    assert "Reference data: IPD-IMGT/HLA 3.58.0, IPD-KIR 2.13.0." in report["conclusion"]
    assert import_bundle(bundle) == read_case(EXAMPLES / "06-sle-rif-uterine-nk.yaml")


def test_every_unit_spelling_has_a_ucum_code() -> None:
    spellings = {s for spec in UNITS.values() for s in spec.spellings()}
    assert spellings <= set(UCUM_CODES)


def test_lab_observations_coded_with_loinc_only_are_read() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    nk = observation(bundle, "nk-peripheral-nk-percent")
    nk["code"]["coding"] = [c for c in nk["code"]["coding"] if c["system"] == LOINC]
    assert import_bundle(bundle) == read_case(EXAMPLES / "01-rpl-age36-nk-high.yaml")


def test_wrong_unit_names_the_resource_and_element() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    quantity = observation(bundle, "nk-peripheral-nk-percent")["valueQuantity"]
    quantity["unit"] = "cells/HPF"
    del quantity["system"], quantity["code"]
    with pytest.raises(
        InputError,
        match=r"Observation/nk-peripheral-nk-percent\.valueQuantity\.unit \(nk\.peripheral\.nk_percent\.unit\): "
        r"got 'cells/HPF'; allowed units: %",
    ):
        import_bundle(bundle)


def test_ucum_code_that_contradicts_the_unit() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    observation(bundle, "nk-peripheral-absolute-count")["valueQuantity"]["code"] = "/mm3"
    with pytest.raises(
        InputError,
        match=r"Observation/nk-peripheral-absolute-count\.valueQuantity\.code: got '/mm3'; "
        r"the UCUM code of unit '10\^9/L' is '10\*9/L'",
    ):
        import_bundle(bundle)


def test_unknown_code_names_the_resource() -> None:
    bad = bundle_of("02-age35-boundary.yaml")
    obs = observation(bad, "thyroid")
    obs["component"][0]["code"]["coding"][-1]["code"] = "free_t4"
    with pytest.raises(InputError, match=r"Observation/thyroid\.component\[0\]\.code: unknown code 'free_t4'"):
        import_bundle(bad)
    obs["code"]["coding"] = [{"system": "http://example.org", "code": "x"}]
    with pytest.raises(InputError, match=r"Observation/thyroid\.code: no coding in .* and no LOINC code decidua reads"):
        import_bundle(bad)


def test_lab_result_without_a_value() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    del observation(bundle, "nk-peripheral-nk-percent")["valueQuantity"]
    with pytest.raises(InputError, match=r"Observation/nk-peripheral-nk-percent\.valueQuantity: missing"):
        import_bundle(bundle)


def test_structurally_invalid_bundle() -> None:
    with pytest.raises(InputError, match=r"^Bundle\.entry"):
        import_bundle({"resourceType": "Bundle", "type": "collection", "entry": "oops"})


def test_resources_of_unknown_types_name_the_entry() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    bundle["entry"][1]["resource"]["resourceType"] = "Foo"
    with pytest.raises(InputError, match=r"^Bundle\.entry\[1\]\.resource\.resourceType: got 'Foo'"):
        import_bundle(bundle)
    bundle["entry"][1]["resource"]["resourceType"] = "Quantity"  # a FHIR data type, not a resource
    with pytest.raises(InputError, match=r"^Bundle\.entry\[1\]\.resource\.resourceType"):
        import_bundle(bundle)


def test_malformed_elements_name_the_resource_and_element() -> None:
    bundle = bundle_of("09-egg-donation-donor-ranking.yaml")
    obs = observation(bundle, "thyroid")
    del obs["component"][0]["code"]["coding"][-1]["code"]
    with pytest.raises(InputError, match=r"Observation/thyroid\.component\[0\]\.code\.coding\[\d\]\.code: missing"):
        import_bundle(bundle)
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    observation(bundle, "nk-peripheral-nk-percent")["valueQuantity"] = None
    with pytest.raises(InputError, match=r"Observation/nk-peripheral-nk-percent\.valueQuantity"):
        import_bundle(bundle)
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    patient = resources(bundle, "Patient")[0]
    patient["identifier"] = [{"system": patient["identifier"][0]["system"]}]
    with pytest.raises(InputError, match=r"Patient\.identifier: no identifier"):
        import_bundle(bundle)


def _mutations(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to an element of an exported bundle (the places a malformed bundle can differ)."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _mutations(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _mutations(value, (*path, i))
    return out


MUTATED = bundle_of("09-egg-donation-donor-ranking.yaml")
MUTATION_PATHS = [p for p in _mutations(MUTATED) if len(p) > 2]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    path=st.sampled_from(MUTATION_PATHS),
    change=st.sampled_from(["delete", None, 1.5, "x", [], {}, True]),
)
def test_a_malformed_bundle_is_an_input_error_never_a_crash(path: tuple[Any, ...], change: object) -> None:
    bundle = copy.deepcopy(MUTATED)
    parent = bundle
    for key in path[:-1]:
        parent = parent[key]
    if change == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = change
    with contextlib.suppress(InputError):  # accepted, or refused with a message: any other exception fails
        import_bundle(bundle)


def test_every_lab_result_is_exported_when_present() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    exported = {c for o in resources(bundle, "Observation") for c in codes(o["code"], CODE_SYSTEM)}
    case = read_case(EXAMPLES / "01-rpl-age36-nk-high.yaml")
    present = {p for p in LAB_RESULTS if _at(case, p) is not None}
    assert present
    assert present <= exported


def _at(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def test_cli_export_and_import(tmp_path: Path) -> None:
    bundle, case_file = tmp_path / "b.json", tmp_path / "case.yaml"
    result = runner.invoke(app, ["fhir", "export", str(EXAMPLES / "06-sle-rif-uterine-nk.yaml"), "-o", str(bundle)])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["fhir", "import", str(bundle), "-o", str(case_file)])
    assert result.exit_code == 0, result.stderr
    assert read_case(case_file) == read_case(EXAMPLES / "06-sle-rif-uterine-nk.yaml")
    result = runner.invoke(app, ["fhir", "import", str(bundle)])
    assert result.exit_code == 0
    assert "case_id: EX-06" in result.stdout


def test_cli_bad_bundle_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    observation(bundle, "nk-peripheral-nk-percent")["valueQuantity"]["unit"] = "cells/HPF"
    path, out = tmp_path / "b.json", tmp_path / "case.yaml"
    path.write_text(json.dumps(bundle))
    result = runner.invoke(app, ["fhir", "import", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert "Observation/nk-peripheral-nk-percent.valueQuantity" in result.stderr
    assert not out.exists()
    path.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    result = runner.invoke(app, ["fhir", "import", str(path)])
    assert result.exit_code == 2
    assert "Patient.identifier" in result.stderr
    result = runner.invoke(app, ["fhir", "export", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert not (tmp_path / "x.json").exists()
