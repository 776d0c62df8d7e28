from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from decidua.core.errors import KnowledgeBaseError, MissingCitation
from decidua.knowledge.loader import KnowledgeBase, _parse_files, _shipped_sources, build, load_kb
from decidua.knowledge.schema import ThresholdRule


def _shipped() -> list[tuple[str, dict]]:
    return [(origin, yaml.safe_load(text)) for origin, text in _shipped_sources()]


def _build(files: list[tuple[str, dict]]) -> KnowledgeBase:
    return build(_parse_files((o, yaml.safe_dump(d)) for o, d in files))


def test_every_rule_and_statement_cites_a_known_source(kb: KnowledgeBase) -> None:
    for rule in kb.rules:
        assert rule.cites
        assert all(k in kb.citations for k in rule.cites)
    for option in kb.options:
        for s in option.statements:
            assert s.source in {"guideline", "clinic_protocol", "study", "caveat"}
            assert all(k in kb.citations for k in s.cites)


def test_the_clinic_protocol_and_the_guideline_are_both_shown_for_nk_options(kb: KnowledgeBase) -> None:
    for option_id in ("option.corticosteroids", "option.immunoglobulins", "option.heparin_modulators"):
        (option,) = [o for o in kb.options if o.id == option_id]
        assert {s.source for s in option.statements} == {"clinic_protocol", "guideline"}


def test_a_rule_citing_an_unknown_source_is_rejected() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "nk.peripheral.clinic":
                rule["cites"] = ["nobody2099"]
    with pytest.raises(MissingCitation, match=r"rule nk\.peripheral\.clinic cites 'nobody2099'"):
        _build(files)


def test_a_rule_with_no_citation_is_rejected() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "nk.uterine.chen2017":
                rule["cites"] = []
    with pytest.raises(KnowledgeBaseError, match=r"rules\.\d+\.range\.cites"):
        _build(files)


def test_a_rule_reading_an_unknown_column_is_rejected() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "nk.peripheral.clinic":
                rule["input"] = "nk_pct"
    with pytest.raises(KnowledgeBaseError, match=r"rule nk\.peripheral\.clinic: unknown input column 'nk_pct'"):
        _build(files)


def test_files_must_agree_on_the_version() -> None:
    files = _shipped()
    files[0][1]["kb_version"] = "1999.1"
    with pytest.raises(KnowledgeBaseError, match="disagree on kb_version"):
        _build(files)


def _override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "local.yaml"
    path.write_text(text)
    return path


def test_override_changes_thresholds_and_is_recorded(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _override(
        tmp_path,
        """
override_schema_version: 1
name: Clinic X
version: "2026-03"
source: "Clinic X immunology protocol v4, approved 2026-03-01"
choices: {rpl_definition: classification.rpl.asrm2013}
rules:
  nk.peripheral.clinic: {value: 22, bands: [16]}
""",
    )
    local = load_kb(path)
    assert local.kb_version == f"{kb.kb_version}+Clinic-X.2026-03"
    assert local.selected["rpl_definition"] == "classification.rpl.asrm2013"
    assert local.overrides == (
        "override 'Clinic X' version 2026-03 (source: Clinic X immunology protocol v4, approved 2026-03-01)",
        "choice rpl_definition: classification.rpl.eshre2022 -> classification.rpl.asrm2013",
        "rule nk.peripheral.clinic value: 24 -> 22",
        "rule nk.peripheral.clinic band 'older than 35': 18 -> 16",
    )
    rule, shipped = local.rule("nk.peripheral.clinic"), kb.rule("nk.peripheral.clinic")
    assert isinstance(rule, ThresholdRule)
    assert isinstance(shipped, ThresholdRule)
    assert rule.value == 22
    assert shipped.value == 24  # the shipped knowledge base is untouched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "rules: {nk.peripheral.clinic: {low: 3}}",
            r"cannot change \['low'\] of a threshold rule; allowed: \['bands', 'value'\]",
        ),
        ("rules: {nk.peripheral.clinic: {bands: [1, 2]}}", "give 1 values, one per band, got 2"),
        ("rules: {nk.nothing.here: {value: 1}}", "override rules.nk.nothing.here: no such rule"),
        ("choices: {rpl_definition: nk.peripheral.clinic}", "is not one of"),
        ("rules: {nk.uterine.chen2017: {low: 9}}", "low 9 is above high 4.5"),
        ("colour: blue", "colour"),
    ],
)
def test_bad_override_is_rejected_with_a_clear_message(tmp_path: Path, body: str, message: str) -> None:
    path = _override(tmp_path, f"override_schema_version: 1\nname: X\nversion: '1'\nsource: s\n{body}\n")
    with pytest.raises(KnowledgeBaseError, match=message):
        load_kb(path)


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="cannot read override file"):
        load_kb(tmp_path / "absent.yaml")
