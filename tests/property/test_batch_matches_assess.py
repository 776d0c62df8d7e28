"""The batch engine, end to end from a file, gives every row the one-patient assessment's statuses."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decidua.adapters.batchio import run_local, scan_input
from decidua.engines.assess import assess, status_of
from decidua.engines.batch import HLA_COLUMNS, INPUT_SCHEMA, case_to_row
from decidua.knowledge.loader import apply_override, load_kb, parse_override

from strategies import cases

KB = load_kb()
# the definitions whose counts the batch input carries as columns of their own (first-trimester miscarriages,
# weeks unknown, failed euploid transfers, the clinician's RIF judgement)
OTHER_DEFINITIONS = apply_override(
    KB,
    parse_override(
        "override_schema_version: 1\nname: r\nversion: '1'\nsource: t\n"
        "choices: {rpl_definition: classification.rpl.rcog2023, rif_definition: classification.rif.eshre2023}\n",
        "test",
    ),
)


# 100 cohorts of up to 12 generated cases, each written to CSV or Parquet and run through the local engine (about
# 0.3 s each): the breadth of feature values is covered at 300 examples by test_engines_agree.py.
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=st.lists(cases(), min_size=1, max_size=12), as_csv=st.booleans(), other=st.booleans())
def test_batch_output_equals_one_patient_assessment_on_every_row(
    tmp_path: Path, generated: list, as_csv: bool, other: bool
) -> None:
    kb = OTHER_DEFINITIONS if other else KB
    rows = [case_to_row(c) | {"case_id": f"{c.case_id}-{i}"} for i, c in enumerate(generated)]
    frame = pl.DataFrame(rows, schema={"case_id": pl.String, **INPUT_SCHEMA, **dict.fromkeys(HLA_COLUMNS, pl.String)})
    path = tmp_path / ("cohort.csv" if as_csv else "cohort.parquet")
    if as_csv:
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    result = run_local(scan_input(path), kb, chunk_rows=5)  # small chunks: exercise the chunking too
    assert result.rejects.height == 0
    assert result.results.height == len(generated)
    for i, case in enumerate(generated):
        single = assess(case, kb)
        row = result.results.row(i, named=True)
        assert row["case_id"] == f"{case.case_id}-{i}"
        assert row["rpl"] == single.classification.rpl.value
        assert row["rpl_losses_counted"] == single.classification.losses_counted
        assert row["rif"] == single.classification.rif.value
        assert row["workup"] == status_of(single.pathway.workup_indicated).value
        assert row["unexplained_rpl"] == status_of(single.pathway.unexplained_rpl).value
        for finding in single.findings:
            assert row[finding.rule_id] == finding.status.value, finding.rule_id
