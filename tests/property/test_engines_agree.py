"""The batch engine's derivation and evaluation (the functions production runs, on a frame of features) equal
the one-patient engine's on every row, for any mix of present and missing features. From a file of raw
genotypes, end to end, see ``test_batch_matches_assess.py``."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from decidua.core.features import DERIVED
from decidua.core.findings import status_of
from decidua.core.validation import check_case
from decidua.engines.assess import assess_row
from decidua.engines.batch import assess_lazy, derive_lazy
from decidua.engines.columnar import FEATURE_SCHEMA
from decidua.engines.extract import derive, extract
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
    base = [{k: v for k, v in row.items() if k not in DERIVED} for row in rows]
    schema = {"case_id": pl.String, **FEATURE_SCHEMA}
    frame = pl.DataFrame([{"case_id": f"row{i}", **row} for i, row in enumerate(base)], schema=schema)
    batch = assess_lazy(derive_lazy(frame.lazy()), kb).collect()
    for i, row in enumerate(base):
        single = assess_row(derive(dict(row)), kb, f"row{i}")
        p = single.pathway
        assert batch["case_id"][i] == f"row{i}"
        for name, value in (
            ("rpl", p.rpl),
            ("rif", p.rif),
            ("workup", p.workup_indicated),
            ("unexplained_rpl", p.unexplained_rpl),
        ):
            assert batch[name][i] == status_of(value).value, (name, row)
        assert batch["rpl_losses_counted"][i] == single.classification.losses_counted, row
        for finding in single.findings:
            assert batch[finding.rule_id][i] == finding.status.value, (finding.rule_id, row)


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
