from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from decidua.entrypoints.cli.main import app
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_assess_json_has_the_documented_shape() -> None:
    code, out, _ = invoke("assess", str(EXAMPLES / "01-rpl-age36-nk-high.yaml"), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"kb_version", "classification", "findings", "next_steps", "options", "references", "scope"}
    nk = next(f for f in data["findings"] if f["rule_id"] == "nk.peripheral.clinic")
    assert nk["status"] == "flagged"
    assert nk["threshold_applied"] == 18
    assert {
        "name": "pb_nk_percent",
        "label": "Peripheral NK (CD3-CD56+ of lymphocytes)",
        "value": 20.0,
        "unit": "%",
    } in nk["inputs"]
    assert nk["citations"][0]["key"] == "clinic_protocol"
    assert nk["status_label"] == "above"
    assert nk["stance"]["source"].startswith("ESHRE RPL guideline 2017")
    assert nk["stance"]["strength"] == "strong; evidence very low (⊕○○○)"
    assert {s["source"] for s in nk["stances"]} >= {"RCOG Green-top Guideline 17 (2023)"}
    assert any(s["bearing"] == "against" for s in nk["statements"])
    pathway = {k: v for k, v in data["pathway"].items() if k not in ("reason", "verdict")}
    assert pathway == {"rpl": True, "rif": False, "workup_indicated": True, "unexplained_rpl": True, "explained": False}
    assert data["pathway"]["verdict"] in data["pathway"]["reason"]
    assert all({"relevant", "indication", "stance", "verdict_group"} <= set(o) for o in data["options"])
    assert all({"indicated", "indication"} <= set(s) for s in data["next_steps"])
    assert data["prognosis"][0]["id"] == "prognosis.brigham1999"


def test_assess_json_of_a_case_outside_the_pathway() -> None:
    code, out, _ = invoke("assess", str(EXAMPLES / "11-not-rpl-high-nk.yaml"), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["pathway"]["workup_indicated"] is False
    assert data["options"]
    assert not any(o["relevant"] for o in data["options"])
    assert not any(s["indicated"] for s in data["next_steps"])


def test_assess_text_shows_findings_options_and_scope() -> None:
    code, out, _ = invoke("assess", str(EXAMPLES / "04-aps-alternative-explanation.yaml"))
    assert code == 0
    flat = " ".join(out.split())
    assert "Alternative explanations to consider first" in out
    assert "[positive] Antiphospholipid antibodies" in flat
    assert "Low-dose aspirin with prophylactic heparin" in flat
    assert "conditional; evidence very low (⊕○○○)" in flat
    assert "not a diagnosis or a prescription" in flat
    assert flat.count("could not be checked against a copy of the guideline") == 1  # said once, not per line


def test_assess_text_puts_what_is_not_indicated_apart() -> None:
    code, out, _ = invoke("assess", str(EXAMPLES / "11-not-rpl-high-nk.yaml"))
    assert code == 0
    flat = " ".join(out.split())
    assert "Work-up: does not apply" in flat
    assert "Not indicated: the patient meets neither the RPL nor the RIF definition in force" in flat
    assert "Options the guidelines advise against, find the evidence insufficient for, or reserve for research" in flat
    assert "[above] Peripheral blood NK cells" in flat  # the result is still shown, for information


def test_an_override_outside_the_physical_range_exits_2_naming_path_value_and_allowed(tmp_path: Path) -> None:
    override = tmp_path / "clinic.yaml"
    override.write_text(
        "override_schema_version: 1\nname: X\nversion: '1'\nsource: s\nrules: {nk.peripheral.clinic: {value: 500}}\n"
    )
    code, out, err = invoke("assess", str(EXAMPLES / "01-rpl-age36-nk-high.yaml"), "--kb-override", str(override))
    assert code == 2
    assert out == ""
    assert (
        "override rules.nk.peripheral.clinic.value: got 500; allowed: a value of pb_nk_percent in % from 0 to 100"
        in (" ".join(err.split()))
    )


def test_kb_override_is_recorded_in_the_output(tmp_path: Path) -> None:
    override = tmp_path / "clinic.yaml"
    override.write_text(
        "override_schema_version: 1\nname: Clinic X\nversion: '3'\nsource: protocol v3\n"
        "rules: {nk.peripheral.clinic: {bands: [21]}}\n"
    )
    code, out, _ = invoke(
        "assess", str(EXAMPLES / "01-rpl-age36-nk-high.yaml"), "-f", "json", "--kb-override", str(override)
    )
    assert code == 0
    data = json.loads(out)
    assert data["kb_version"].endswith("+Clinic-X.3")
    assert "rule nk.peripheral.clinic band 'older than 35': 18 -> 21" in data["kb_overrides"]
    nk = next(f for f in data["findings"] if f["rule_id"] == "nk.peripheral.clinic")
    assert nk["status"] == "within_range"  # 20 % is not above the local 21 %


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("case_id: [unclosed", ".yaml", "not valid YAML"),
        ('{"case_id": "x",', ".json", "not valid JSON (line 1"),
        ("- just\n- a list\n", ".yaml", "a case is a mapping of fields"),
        (
            "case_id: X\nwoman: {age_years: 30}\nnk: {peripheral: {nk_percent: {value: 140, unit: '%'}}}\n",
            ".yaml",
            "nk.peripheral.nk_percent.value: got 140.0; allowed: 0 to 100 %",
        ),
        (
            "case_id: X\nwoman: {age_years: 30}\nnk: {peripheral: {nk_percent: {value: 14, unit: 'per cent'}}}\n",
            ".yaml",
            "nk.peripheral.nk_percent.unit: got 'per cent'; allowed units: %",
        ),
        (
            "case_id: X\nwoman: {age_years: 30}\npregnancies: [{outcome: miscarriage, gestational_week: 30}]\n",
            ".yaml",
            "pregnancies[0].gestational_week: got 30.0; a miscarriage is a loss before 24 weeks",
        ),
        ("case_id: X\nwoman: {age_years: thirty}\n", ".yaml", "woman.age_years: got 'thirty'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"case{suffix}"
    path.write_text(content)
    code, out, err = invoke("assess", str(path))
    assert code == 2
    assert out == ""
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_missing_file_exits_2() -> None:
    code, _, err = invoke("assess", "/nonexistent/case.yaml")
    assert code == 2
    assert "no such file" in err


def test_bad_override_exits_2(tmp_path: Path) -> None:
    override = tmp_path / "o.yaml"
    override.write_text("override_schema_version: 1\nname: X\nversion: '1'\nsource: s\nrules: {x.y: {value: 1}}\n")
    code, _, err = invoke("assess", str(EXAMPLES / "01-rpl-age36-nk-high.yaml"), "--kb-override", str(override))
    assert code == 2
    assert "override rules.x.y: no such rule" in err


def test_unknown_option_is_a_usage_error() -> None:
    code, _, _ = invoke("assess", "--frmat", "json")
    assert code == 2


def test_schema_is_valid_json_schema_of_the_case(tmp_path: Path) -> None:
    out_file = tmp_path / "case.schema.json"
    code, _, _ = invoke("schema", "-o", str(out_file))
    assert code == 0
    schema = json.loads(out_file.read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"case_id", "woman"}
    assert "PregnancyOutcome" in schema["$defs"]
    assert schema["additionalProperties"] is False  # unknown keys are rejected, as the reader does
    validator = jsonschema.Draft202012Validator(schema)
    for example in sorted(EXAMPLES.glob("*.yaml")):
        data = json.loads(json.dumps(yaml.safe_load(example.read_text()), default=str))
        assert list(validator.iter_errors(data)) == [], example.name
    assert list(validator.iter_errors({"case_id": "x", "woman": {}, "pregnacies": []}))


def test_kb_show_lists_rules_choices_and_citations() -> None:
    code, out, _ = invoke("kb", "show", "--json")
    assert code == 0
    data = json.loads(out)
    ids = {r["id"]: r for r in data["rules"]}
    assert ids["nk.peripheral.clinic"]["active"] is True
    assert ids["nk.peripheral.coulam1995"]["active"] is False
    assert data["choices"]["nk_peripheral_cutoff"]["selected"] == "nk.peripheral.clinic"
    assert "eshre2022_rpl" in data["citations"]
    code, out, _ = invoke("kb", "show")
    assert code == 0
    assert "nk.peripheral.clinic" in out


def _run_at_80_columns(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    code = "from decidua.entrypoints.cli.main import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout


def test_kb_show_prints_every_statement_stance_and_option_in_full_at_80_columns(kb: KnowledgeBase) -> None:
    out = _run_at_80_columns("kb", "show")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for item_id in [r.id for r in kb.rules] + [s.id for s in kb.steps] + [o.id for o in kb.options]:
        assert item_id in lines, item_id  # each id whole, on a line of its own
    flat = " ".join(out.split())
    assert "Pathway gate" in flat
    for rule in kb.rules:
        for stance in rule.stances:
            assert " ".join(stance.text.split()) in flat, (rule.id, stance.source)
        for statement in rule.statements:
            assert " ".join(statement.text.split()) in flat, rule.id
    for option in kb.options:
        assert " ".join(option.stances[0].text.split()) in flat, option.id


def test_assess_text_does_not_cut_rule_ids_at_80_columns(kb: KnowledgeBase) -> None:
    out = _run_at_80_columns("assess", str(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml"))
    assert max(len(line) for line in out.splitlines()) <= 80
    for rule in kb.active_rules:
        assert f"rule {rule.id}" in " ".join(out.split()), rule.id
