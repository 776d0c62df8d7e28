"""The batch engine on rows written in its input layout (not built from cases), with any column left out, gives
every valid row the one-patient result: a cohort file is not a case file, and absent columns read as not recorded."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decidua.core.expr import evaluate
from decidua.core.features import DERIVED, FEATURES, FeatureSpec
from decidua.engines.assess import assess_row, status_of
from decidua.engines.batch import INPUT_FEATURES, KIR_COLUMNS, assess_lazy, plan_layout, prepare
from decidua.engines.extract import kir_features
from decidua.knowledge.loader import apply_override, load_kb, parse_override

KB = load_kb()
OTHER = apply_override(
    KB,
    parse_override(
        "override_schema_version: 1\nname: r\nversion: '1'\nsource: t\n"
        "choices: {rpl_definition: classification.rpl.rcog2023, rif_definition: classification.rif.lugano2023}\n",
        "test",
    ),
)
COLUMNS = [f for f in INPUT_FEATURES if f.name not in KIR_COLUMNS and f.name != "oocytes"]
DTYPES: dict[str, Any] = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.String}


def _value(f: FeatureSpec) -> st.SearchStrategy[Any]:
    if f.dtype == "bool":
        return st.booleans()
    if f.dtype == "str":
        return st.sampled_from(f.categories)
    if f.name == "age_years":
        return st.sampled_from([25, 35, 36, 39, 40, 41])
    if f.dtype == "int":
        return st.integers(0, 5)
    return st.floats(0, 60, allow_nan=False)


@settings(max_examples=150, suppress_health_check=list(HealthCheck), deadline=None)
@given(
    columns=st.sets(st.sampled_from([f.name for f in COLUMNS]), min_size=1),
    data=st.data(),
    other=st.booleans(),
)
def test_batch_rows_with_any_columns_equal_the_one_patient_result(columns: set[str], data: Any, other: bool) -> None:
    kb = OTHER if other else KB
    chosen = [f for f in COLUMNS if f.name in columns]
    rows = data.draw(
        st.lists(st.fixed_dictionaries({f.name: st.none() | _value(f) for f in chosen}), min_size=1, max_size=6)
    )
    schema = {"case_id": pl.String, **{f.name: DTYPES[f.dtype] for f in chosen}}
    frame = pl.DataFrame([{"case_id": str(i), **r} for i, r in enumerate(rows)], schema=schema)
    valid, rejected = prepare(frame, plan_layout(frame.columns))
    out = {r["case_id"]: r for r in assess_lazy(valid, kb).collect().iter_rows(named=True)}
    rejected_ids = set(rejected.collect()["case_id"].to_list())
    for i, raw in enumerate(rows):
        if str(i) in rejected_ids:
            continue
        row: dict[str, Any] = {f.name: None for f in FEATURES} | raw | kir_features(None) | {"oocytes_donor": False}
        for name, expr in DERIVED.items():
            row[name] = evaluate(expr, row)
        single = assess_row(row, kb, str(i))
        got = out[str(i)]
        assert got["rpl"] == single.classification.rpl.value, raw
        assert got["rpl_losses_counted"] == single.classification.losses_counted, raw
        assert got["workup"] == status_of(single.pathway.workup_indicated).value, raw
        assert got["unexplained_rpl"] == status_of(single.pathway.unexplained_rpl).value, raw
        for f in single.findings:
            assert got[f.rule_id] == f.status.value, (f.rule_id, raw)
