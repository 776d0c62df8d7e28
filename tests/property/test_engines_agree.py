"""The column-wise (Polars) evaluation of every rule equals the one-patient evaluation on every row."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from decidua.core.validation import check_case
from decidua.engines.assess import assess_row, status_of
from decidua.engines.columnar import assess_frame, frame_from_rows
from decidua.engines.features import extract
from decidua.knowledge.loader import KnowledgeBase, apply_override, load_kb, parse_override

from strategies import cases, feature_rows

KB = load_kb()
# Every alternative selected, so that the rules outside the default choices are checked too.
ALTERNATIVES = apply_override(
    KB,
    parse_override(
        """
override_schema_version: 1
name: alternatives
version: "1"
source: property test
choices:
  rpl_definition: classification.rpl.asrm2013
  rif_definition: classification.rif.eshre2023
  nk_peripheral_cutoff: nk.peripheral.coulam1995
""",
        "test",
    ),
)
RCOG_LUGANO = apply_override(
    KB,
    parse_override(
        "override_schema_version: 1\nname: r\nversion: '1'\nsource: t\n"
        "choices: {rpl_definition: classification.rpl.rcog2023, rif_definition: classification.rif.lugano2023}\n",
        "test",
    ),
)
KWAK = apply_override(
    KB,
    parse_override(
        "override_schema_version: 1\nname: k\nversion: '1'\nsource: t\n"
        "choices: {nk_peripheral_cutoff: nk.peripheral.kwakkim2013}\n",
        "test",
    ),
)


def _check(rows: list[dict[str, object]], kb: KnowledgeBase) -> None:
    frame = assess_frame(frame_from_rows(rows), kb)
    for i, row in enumerate(rows):
        single = assess_row(row, kb, f"row{i}")
        p = single.pathway
        for name, value in (
            ("rpl", p.rpl),
            ("rif", p.rif),
            ("workup", p.workup_indicated),
            ("unexplained_rpl", p.unexplained_rpl),
        ):
            assert frame[f"pathway:{name}"][i] == status_of(value).value, (name, row)
        for finding in single.findings:
            assert frame[finding.rule_id][i] == finding.status.value, (finding.rule_id, row)
            if f"{finding.rule_id}:measure" in frame.columns:
                got = frame[f"{finding.rule_id}:measure"][i]
                assert got == (None if finding.measure is None else float(finding.measure)), finding.rule_id


@given(st.lists(feature_rows(), min_size=1, max_size=30))
def test_batch_statuses_equal_single_patient_statuses(rows: list[dict[str, object]]) -> None:
    _check(rows, KB)
    _check(rows, ALTERNATIVES)
    _check(rows, KWAK)
    _check(rows, RCOG_LUGANO)


@given(st.lists(cases(), min_size=1, max_size=10))
def test_generated_cases_are_valid_and_agree(generated: list) -> None:
    for case in generated:
        assert check_case(case) == []
    rows = [extract(c) for c in generated]
    for kb in (KB, ALTERNATIVES, RCOG_LUGANO):
        _check(rows, kb)
