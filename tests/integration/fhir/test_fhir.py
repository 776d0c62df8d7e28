from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from decidua.adapters.casefile import read_case
from decidua.adapters.cli.main import app
from decidua.adapters.fhir import LOINC, export_bundle, import_bundle
from decidua.core.errors import InputError
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase, load_kb

from conftest import EXAMPLES
from strategies import cases

runner = CliRunner()
KB = load_kb()


def bundle_of(name: str) -> dict[str, Any]:
    case = read_case(EXAMPLES / name)
    return json.loads(json.dumps(export_bundle(case, assess(case, KB), KB)))


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_export_then_import_gives_the_same_case(path: Path) -> None:
    case = read_case(path)
    bundle = json.loads(json.dumps(export_bundle(case, assess(case, KB), KB)))
    assert import_bundle(bundle) == case


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(cases())
def test_round_trip_on_generated_cases(case: Any) -> None:
    bundle = json.loads(json.dumps(export_bundle(case, assess(case, KB), KB)))
    assert import_bundle(bundle) == case


def test_every_resource_validates_with_fhir_resources(kb: KnowledgeBase) -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    parsed = Bundle.model_validate(bundle)
    kinds = {type(e.resource).__name__ for e in parsed.entry}
    assert kinds == {"Patient", "Observation", "DiagnosticReport"}
    for raw in resources(bundle, "Observation"):
        Observation.model_validate(raw)
    (report,) = resources(bundle, "DiagnosticReport")
    DiagnosticReport.model_validate(report)
    assert report["identifier"][0]["value"] == kb.kb_version
    ids = {o["id"] for o in resources(bundle, "Observation")}
    assert {r["reference"].split("/")[1] for r in report["result"]} <= ids


def test_lab_results_carry_loinc_and_findings_carry_rules_and_citations() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    observations = {o["id"]: o for o in resources(bundle, "Observation")}
    nk = observations["nk-peripheral"]
    codes = {c["code"]["coding"][0]["code"]: c for c in nk["component"]}
    assert codes["107067-1"]["code"]["coding"][0]["system"] == LOINC
    assert codes["107067-1"]["valueQuantity"] == {"value": 20.0, "unit": "%"}
    thyroid = {c["code"]["coding"][0]["code"] for c in observations["thyroid"]["component"]}
    assert {"3016-3", "8099-4"} <= thyroid
    findings = [o for o in observations.values() if o["code"]["coding"][0]["code"] == "finding"]
    nk_finding = next(f for f in findings if f["code"]["coding"][1]["code"] == "nk.peripheral.clinic")
    assert nk_finding["valueCodeableConcept"]["text"] == "flagged"
    assert nk_finding["interpretation"][0]["coding"][0]["code"] == "H"
    assert any(n["text"].startswith("cites: ") for n in nk_finding["note"])


def test_genotypes_are_gl_strings() -> None:
    bundle = bundle_of("09-egg-donation-donor-ranking.yaml")
    gls = {o["valueString"] for o in resources(bundle, "Observation") if "valueString" in o}
    assert {"C*07:01+C*03:04", "C*06:02+C*05:01"} <= gls


def test_wrong_unit_names_the_resource_and_element() -> None:
    bundle = bundle_of("01-rpl-age36-nk-high.yaml")
    for o in resources(bundle, "Observation"):
        if o["id"] == "nk-peripheral":
            for c in o["component"]:
                if "valueQuantity" in c and c["valueQuantity"].get("unit") == "%":
                    c["valueQuantity"]["unit"] = "cells/HPF"
    with pytest.raises(
        InputError, match=r"Observation/nk-peripheral\.component \(nk\.peripheral\.nk_percent\.unit\): got 'cells/HPF'"
    ):
        import_bundle(bundle)


def test_unknown_code_names_the_resource() -> None:
    bundle = bundle_of("02-age35-boundary.yaml")
    bad = copy.deepcopy(bundle)
    obs = next(o for o in resources(bad, "Observation") if o["id"] == "thyroid")
    obs["component"][0]["code"]["coding"][-1]["code"] = "free_t4"
    with pytest.raises(InputError, match=r"Observation/thyroid\.component\[0\]\.code: unknown code 'free_t4'"):
        import_bundle(bad)
    obs["code"]["coding"] = [{"system": "http://example.org", "code": "x"}]
    with pytest.raises(InputError, match=r"Observation/thyroid\.code: no coding in"):
        import_bundle(bad)


def test_structurally_invalid_bundle() -> None:
    with pytest.raises(InputError, match=r"^Bundle\.entry"):
        import_bundle({"resourceType": "Bundle", "type": "collection", "entry": "oops"})


def test_cli_export_and_import(tmp_path: Path) -> None:
    bundle, case_file = tmp_path / "b.json", tmp_path / "case.yaml"
    result = runner.invoke(app, ["fhir", "export", str(EXAMPLES / "06-sle-rif-uterine-nk.yaml"), "-o", str(bundle)])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["fhir", "import", str(bundle), "-o", str(case_file)])
    assert result.exit_code == 0, result.stderr
    assert read_case(case_file) == read_case(EXAMPLES / "06-sle-rif-uterine-nk.yaml")
    bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    result = runner.invoke(app, ["fhir", "import", str(bundle)])
    assert result.exit_code == 2
    assert "Patient.identifier" in result.stderr
