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
        assert "clinic_protocol" in {s.source for s in option.statements}
        assert option.stances
        assert option.stances[0].source.startswith("ESHRE")


def test_the_option_list_is_complete_and_each_has_a_graded_stance(kb: KnowledgeBase) -> None:
    titles = " ".join(o.title.lower() for o in kb.options)
    for treatment in (
        "corticosteroids",
        "immunoglobulins",
        "intralipid",
        "g-csf",
        "lymphocyte immunisation",
        "hydroxychloroquine",
        "tnf-alpha inhibitors",
        "heparin",
        "aspirin",
        "progesterone",
        "pgt-sr",
    ):
        assert treatment in titles, treatment
    for o in kb.options:
        assert o.stances, o.id
        assert all(s.strength and s.source for s in o.stances)


def test_a_verified_stance_rests_on_a_verified_citation(kb: KnowledgeBase) -> None:
    stances = [s for r in kb.rules for s in r.stances]
    stances += [s for step in kb.steps for s in step.stances]
    stances += [s for o in kb.options for s in o.stances]
    assert any(s.verified for s in stances)
    assert any(not s.verified for s in stances)
    for s in stances:
        if s.verified:
            assert all(kb.citation(k).verified for k in s.cites), (s.source, s.cites)
        else:
            assert s.strength == "grading not checked" or s.note, (s.source, s.text)


def test_a_verified_citation_can_be_found(kb: KnowledgeBase) -> None:
    for key, c in kb.citations.items():
        if c.verified:
            assert c.doi or c.pmid or (c.url and c.url.startswith("https://")), key
            assert c.note, f"{key}: say what was checked"
        else:
            assert c.note, f"{key}: say why it could not be verified"


def test_the_founding_articles_six_references_are_present(kb: KnowledgeBase) -> None:
    for key in ("alecsandru2017", "chen2017_unk", "koo2015", "kuon2017_unk", "seshadri2014", "hanssens2013"):
        assert key in kb.citations
    assert kb.citation("alecsandru2017").verified
    assert kb.citation("kuon2017_unk").verified


def test_peripheral_nk_cut_offs_cite_the_evidence_that_nk_does_not_predict_outcome(kb: KnowledgeBase) -> None:
    for rule in kb.rules:
        if rule.id.startswith("nk.peripheral."):
            cited = {k for s in rule.statements for k in s.cites if s.bearing == "against"}
            assert "tang2011_nk" in cited, rule.id


def test_a_finding_a_clinician_acts_on_must_carry_a_stance() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "nk.uterine.kuon2017":
                rule.pop("stances")
    with pytest.raises(KnowledgeBaseError, match=r"rule nk\.uterine\.kuon2017: a finding of group 'nk' must carry"):
        _build(files)


def test_a_trigger_naming_an_unknown_rule_is_rejected() -> None:
    files = _shipped()
    for _, data in files:
        for option in data.get("options", []):
            if option["id"] == "option.pgt_sr":
                option["when"] = {"flagged": "investigation.karyotype"}
    with pytest.raises(
        KnowledgeBaseError, match=r"option option\.pgt_sr: when: unknown rule 'investigation\.karyotype'"
    ):
        _build(files)


def test_a_summary_variant_without_a_default_is_rejected() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "investigation.antiphospholipid":
                rule["summary"]["within_range"] = rule["summary"]["within_range"][:1]
    with pytest.raises(KnowledgeBaseError, match="the last variant is the default"):
        _build(files)


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
        (
            "rules: {nk.peripheral.clinic: {value: 500}}",
            r"override rules\.nk\.peripheral\.clinic\.value: got 500; allowed: a value of pb_nk_percent in % from 0",
        ),
        (
            "rules: {nk.peripheral.clinic: {bands: [-1]}}",
            r"bands\[0\] \(older than 35\): got -1; allowed: a value of pb_nk_percent in % from 0 to 100",
        ),
        ("rules: {nk.uterine.kuon2017: {value: .nan}}", r"value: got nan; allowed"),
        ("rules: {nk.uterine.chen2017: {high: 101}}", r"high: got 101; allowed: a value of unk_per_100_stromal"),
        ("rules: {classification.rpl.eshre2022: {at_least: 0}}", r"at_least.*greater than or equal to 1"),
        ("rules: {classification.rpl.eshre2022: {at_least: 1000}}", r"at_least: got 1000; allowed: a whole number"),
        ("rules: {nk.peripheral.clinic: {value: true}}", r"value"),  # not read as 1
        ("rules: {nk.peripheral.clinic: {value: '22'}}", r"value"),
        ("rules: {investigation.thyroid: {value: 3}}", r"cannot change \['value'\] of a criteria rule"),
        ("choices: {rif_definition: classification.rif.nonsense}", "is not one of"),
        ("choices: {colour: classification.rif.coughlan2014}", "unknown choice"),
    ],
)
def test_bad_override_is_rejected_with_a_clear_message(tmp_path: Path, body: str, message: str) -> None:
    path = _override(tmp_path, f"override_schema_version: 1\nname: X\nversion: '1'\nsource: s\n{body}\n")
    with pytest.raises(KnowledgeBaseError, match=message):
        load_kb(path)


def test_missing_override_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="cannot read override file"):
        load_kb(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"not": {"uterine_anatomy": {"is": "abnormal"}}}, r"'is' on 'uterine_anatomy' compares with 'abnormal'"),
        ({"age_years": {"is": "40"}}, r"'is' on 'age_years' compares with '40'; allowed: a number"),
        ({"cond_sle": {">": 1}}, r"'>' on 'cond_sle' compares with 1; allowed: true or false"),
        ({"kir_genotype": {">": "AA"}}, r"'>' on 'kir_genotype' \(str\): only ==, != and is apply"),
    ],
)
def test_a_condition_must_compare_a_column_with_a_value_of_its_type(condition: dict, message: str) -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "investigation.thyroid":
                rule["flag"] = condition
                rule["inputs"] = sorted({*rule["inputs"], *condition.get("not", condition)})
    with pytest.raises(KnowledgeBaseError, match=message):
        _build(files)


def test_a_criteria_rule_must_list_every_column_it_reads() -> None:
    files = _shipped()
    for _, data in files:
        for rule in data.get("rules", []):
            if rule["id"] == "autoimmune.aps_two_losses":
                rule["inputs"] = [c for c in rule["inputs"] if not c.startswith("apl_anti_b2gpi")]
    with pytest.raises(KnowledgeBaseError, match=r"reads \['apl_anti_b2gpi_igg', 'apl_anti_b2gpi_igm'\]"):
        _build(files)


def test_a_trigger_may_not_name_an_alternative_of_a_choice() -> None:
    files = _shipped()
    for _, data in files:
        for step in data.get("steps", []):
            if step["id"] == "care.supportive":
                step["when"] = {"flagged": "classification.rpl.eshre2022"}
    with pytest.raises(KnowledgeBaseError, match=r"an alternative of a choice; name the pathway value"):
        _build(files)


def test_every_trigger_reads_in_words(kb: KnowledgeBase) -> None:
    from decidua.knowledge.compile import describe_trigger

    for item in (*kb.steps, *kb.options, *kb.prognosis):
        assert describe_trigger(item.when)
    assert describe_trigger({"if": {"flagged": "rpl"}, "then": {"high": "group:nk"}, "else": False}) == (
        "if RPL: met then group:nk high else never"
    )
