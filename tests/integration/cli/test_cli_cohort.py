"""``decidua cohort``: the research commands on the example cohort, their JSON, reports, override round trip and
bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from decidua import assess, load_kb, read_case
from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES

runner = CliRunner()
COHORT = EXAMPLES / "cohort" / "cohort.csv"


def cohort(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["cohort", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_the_example_cohort_is_what_its_generator_writes(tmp_path: Path) -> None:
    import runpy

    generated = runpy.run_path(str(EXAMPLES / "cohort" / "generate.py"))["cohort"]()
    assert generated.equals(pl.read_csv(COHORT, infer_schema_length=0).cast(generated.schema))


def test_reference_interval_json_and_override_round_trip(tmp_path: Path) -> None:
    override = tmp_path / "local.yaml"
    report = tmp_path / "ri.html"
    code, out, err = cohort(
        "reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
        "--partition", "age_years > 35", "--as-override", override, "--name", "Clinic X", "--report", report, "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["method"] == "nonparametric"
    assert data["n"] > 500
    assert data["lower"] < data["upper"]
    assert data["upper_ci"][0] <= data["upper"] <= data["upper_ci"][1]
    assert [p["partition"] for p in data["partitions"]] == ["age_years > 35: no", "age_years > 35: yes"]
    assert data["partitioning"]["harris_boyd"]["verdict"] in ("one interval", "separate intervals")
    assert "pb_nk_percent: 18 rows missing" not in err  # counts are reported, whatever they are
    written = yaml.safe_load(override.read_text())
    rule = written["rules"]["nk.peripheral.clinic"]
    assert rule == data["override"]["rules"]["nk.peripheral.clinic"]
    # the data do not justify separate intervals (Harris-Boyd: one): one limit, rounded to 3 decimals, for both
    assert data["partitioning"]["harris_boyd"]["verdict"] == "one interval"
    assert rule["value"] == pytest.approx(data["upper"], abs=5e-4)
    assert rule["bands"] == [pytest.approx(data["upper"], abs=5e-4)]
    assert "one limit for both" in written["source"]
    assert data["selected"] == {"where": "healthy_volunteer", "rows": 2000, "selected": 600, "unreadable": 0}
    assert "n = " in written["source"]
    assert "healthy_volunteer" in written["source"]
    # assess with the override: the new cut-off is used, and the override with its provenance is recorded
    kb = load_kb(override)
    result = assess(read_case(EXAMPLES / "01-rpl-age36-nk-high.yaml"), kb)
    assert any("reference-interval" in o for o in result.kb_overrides)
    finding = next(f for f in result.findings if f.rule_id == "nk.peripheral.clinic")
    assert finding.threshold_applied == pytest.approx(rule["bands"][0])  # the woman is 36: the band's value
    html = report.read_text()
    assert "<svg" in html
    assert "Harris EK, Boyd JC" in html
    assert "CLSI" in html


def test_an_override_needs_the_rule_band_as_partition(tmp_path: Path) -> None:
    out = tmp_path / "o.yaml"
    code, _, err = cohort("reference-interval", COHORT, "--column", "pb_nk_percent", "--as-override", out)
    assert code == 2
    assert 'partition "age_years > 35"' in err
    assert not out.exists()


def test_cutoff_defaults_to_the_active_rule_with_its_age_band() -> None:
    code, out, err = cohort("cutoff", COHORT, "--marker", "pb_nk_percent", "--outcome", "live_birth", "--json")
    assert code == 0, err
    data = json.loads(out)
    at = data["at_cutoff"]
    assert at["cutoff"].startswith("> 24 (> 18 if older than 35) [nk.peripheral.clinic")
    t = at["table"]
    assert t["tp"] + t["fn"] + t["fp"] + t["tn"] <= data["n"]  # rows without an age are left out of this table
    assert 0 <= data["auc_ci"][0] <= data["auc"] <= data["auc_ci"][1] <= 1
    # the generator builds no NK effect into live birth: the AUC is near one half
    assert abs(data["auc"] - 0.5) < 0.08
    code, out, _ = cohort(
        "cutoff", COHORT, "--marker", "pb_nk_percent", "--outcome", "live_birth", "--cutoff", "20", "--json"
    )
    assert json.loads(out)["at_cutoff"]["cutoff"] == "> 20"


def test_association_with_a_derived_feature_and_adjustment() -> None:
    code, out, err = cohort(
        "association", COHORT, "--exposure", "kir_genotype = 'AA'", "--outcome", "live_birth",
        "--adjust", "age_years,n_miscarriages", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert sum(map(sum, data["table"])) == data["n"]
    assert data["adjusted"]["covariates"] == ["age_years", "n_miscarriages"]
    assert data["adjusted"]["n"] <= data["n"]


def test_scan_states_power_and_adjusted_p(tmp_path: Path) -> None:
    report = tmp_path / "scan.html"
    code, out, err = cohort("scan", COHORT, "--outcome", "live_birth", "--json", "--report", report)
    assert code == 0, err
    data = json.loads(out)
    names = [r["exposure"] for r in data["results"]]
    assert {"KIR AA", "Cen-BB", "Tel-AA", "maternal C2C2", "paternal C2", "KIR AA x fetal C2 > maternal"} <= set(names)
    assert len(names) == len(set(names))
    assert data["outcome_missing"] == 600  # the volunteers have no outcome
    for r in data["results"]:
        if r["p_fisher"] is not None:
            assert r["p_bh"] >= r["p_fisher"]
    # no genotype effect is built into the example cohort: nothing survives the adjustment
    assert all(r["p_bh"] is None or r["p_bh"] > 0.05 for r in data["results"])
    framework = next(r for r in data["results"] if r["exposure"] == "KIR3DL2")
    assert framework["odds_ratio"] is None
    assert "no comparison" in framework["note"]
    assert "Benjamini" in report.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reference-interval", COHORT, "--column", "nope"], "--column: 'nope' names 'nope', not a column"),
        (["reference-interval", COHORT, "--column", "healthy_volunteer"], "0 empty, 2,000 not numbers"),
        (["reference-interval", COHORT, "--column", "pb_nk_percent", "--outliers", "grubbs"], "allowed: tukey"),
        (["cutoff", COHORT, "--marker", "age_years", "--outcome", "live_birth"], "give the cut-off with --cutoff"),
        (["association", COHORT, "--exposure", "kir_2dl4", "--outcome", "live_birth"], "no comparison"),
        (["association", COHORT, "--exposure", "age_years >> 3", "--outcome", "live_birth"], "--exposure"),
        (["scan", COHORT, "--outcome", "live_birth", "--key", "id"], "no key column 'id'"),
    ],
)
def test_bad_input_exits_2_naming_the_option(args: list[str | Path], message: str) -> None:
    code, _, err = cohort(*args)
    assert code == 2
    assert message in err.replace("\n", " ")


def test_unreadable_cells_are_counted(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = [str(round(x, 1)) for x in rng.normal(15, 3, 300)] + ["n/a?", ""]
    path = tmp_path / "values.csv"
    pl.DataFrame({"x": values}).write_csv(path)
    code, out, err = cohort("reference-interval", path, "--column", "x", "--json")
    assert code == 0, err
    assert json.loads(out)["excluded"][0] == {"option": "--column", "column": "x", "missing": 1, "invalid": 1}


@pytest.mark.parametrize(
    "args",
    [
        ["reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
         "--partition", "age_years > 35"],
        ["cutoff", COHORT, "--marker", "pb_nk_percent", "--outcome", "live_birth = 'no'"],
        ["association", COHORT, "--exposure", "kir_genotype = 'AA'", "--outcome", "live_birth",
         "--adjust", "age_years"],
        ["scan", COHORT, "--outcome", "live_birth"],
    ],
    ids=["reference-interval", "cutoff", "association", "scan"],
)  # fmt: skip
def test_dask_engine_gives_the_same_figures(args: list[str | Path]) -> None:
    code, local, err = cohort(*args, "--json")
    assert code == 0, err
    code, dask, err = cohort(*args, "--json", "--engine", "dask")
    assert code == 0, err
    assert json.loads(dask) == json.loads(local)


def test_override_merges_the_clinic_override_and_selects_an_inactive_rule(tmp_path: Path) -> None:
    clinic = tmp_path / "clinic.yaml"
    clinic.write_text(
        "override_schema_version: 1\nname: Clinic X\nversion: '1'\nsource: protocol v4\n"
        "rules:\n  nk.uterine.kuon2017: {value: 250}\n"
    )
    code, _, err = cohort(
        "reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
        "--partition", "age_years > 35", "--kb-override", clinic, "--as-override", clinic,
    )  # fmt: skip
    assert code == 2
    assert "is also an input" in err  # the clinic's file is not overwritten
    out = tmp_path / "new.yaml"
    code, _, err = cohort(
        "reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
        "--rule", "nk.peripheral.coulam1995", "--kb-override", clinic, "--as-override", out,
    )  # fmt: skip
    assert code == 0, err
    written = yaml.safe_load(out.read_text())
    assert written["rules"]["nk.uterine.kuon2017"] == {"value": 250}  # kept
    assert written["choices"] == {"nk_peripheral_cutoff": "nk.peripheral.coulam1995"}  # else it would not apply
    assert "protocol v4" in written["source"]
    kb = load_kb(out)
    assert "nk.peripheral.coulam1995" in {r.id for r in kb.active_rules}


def test_outputs_are_all_written_or_none(tmp_path: Path) -> None:
    same = tmp_path / "same.yaml"
    code, _, err = cohort(
        "reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
        "--partition", "age_years > 35", "--as-override", same, "--report", same,
    )  # fmt: skip
    assert code == 2
    assert "its own file" in err
    assert not same.exists()
    half = tmp_path / "half.yaml"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cohort(
        "reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer",
        "--partition", "age_years > 35", "--as-override", half, "--report", blocker / "r.html",
    )  # fmt: skip
    assert code == 2
    assert not half.exists()
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    code, _, err = cohort("reference-interval", COHORT, "--column", "pb_nk_percent", "--report", fifo)
    assert code == 2
    assert "not a regular file" in err
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_repeated_keys_are_not_double_counted(tmp_path: Path) -> None:
    frame = pl.read_csv(COHORT, infer_schema_length=0)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 100).then(pl.lit("C00001")).otherwise(pl.col("case_id")).alias("case_id")
    )
    path = tmp_path / "repeated.csv"
    frame.write_csv(path)
    args = ["--exposure", "kir_genotype = 'AA'", "--outcome", "live_birth", "--json"]
    _, original, _ = cohort("association", COHORT, *args)
    code, repeated, err = cohort("association", path, *args)
    assert code == 0, err
    assert json.loads(repeated)["table"] == json.loads(original)["table"]
    _, original, _ = cohort("scan", COHORT, "--outcome", "live_birth", "--json")
    _, repeated, _ = cohort("scan", path, "--outcome", "live_birth", "--json")
    assert json.loads(repeated)["results"] == json.loads(original)["results"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["association", COHORT, "--exposure", "kir_genotype = 'AA'", "--outcome", "live_birth",
          "--adjust", "age_years,age_years"], "age_years given twice"),
        (["reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "pb_nk_percent > AVG(pb_nk_percent)"],
         "aggregates over rows"),
        (["reference-interval", COHORT, "--column", "pb_nk_percent", "--where", "healthy_volunteer + 1 > 2"],
         "--where 'healthy_volunteer + 1 > 2'"),
    ],
)  # fmt: skip
def test_more_bad_input_exits_2(args: list[str | Path], message: str) -> None:
    code, _, err = cohort(*args)
    assert code == 2
    assert message in err


def test_an_adjusted_model_that_cannot_be_estimated_says_so(tmp_path: Path) -> None:
    path = tmp_path / "zero.csv"
    pl.DataFrame(
        {"e": [1] * 30 + [0] * 30, "y": [1] * 30 + [1] * 10 + [0] * 20, "m": list(range(60)), "k": ["P"] * 60}
    ).write_csv(path)
    code, out, err = cohort("association", path, "--exposure", "e", "--outcome", "y", "--adjust", "m", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["adjusted"]["odds_ratio"] is None
    assert "cannot be estimated" in data["adjusted"]["note"]
    assert data["exact_ci"][0] is not None  # the exact interval stands


def test_a_column_of_categories_gives_one_interval_each_and_every_pair_judged(tmp_path: Path) -> None:
    frame = pl.read_csv(COHORT, infer_schema_length=0)
    frame = frame.with_columns(pl.Series("site", ["north", "south", "east"] * 666 + ["north", "south"]))
    path = tmp_path / "sites.csv"
    frame.write_csv(path)
    code, out, err = cohort("reference-interval", path, "--column", "pb_nk_percent", "--partition", "site", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [p["partition"] for p in data["partitions"]] == ["site: east", "site: north", "site: south"]
    assert [tuple(p["groups"]) for p in data["partitioning"]] == [
        ("site: east", "site: north"),
        ("site: east", "site: south"),
        ("site: north", "site: south"),
    ]
    report = tmp_path / "r.html"
    code, _, err = cohort(
        "reference-interval", path, "--column", "pb_nk_percent", "--partition", "site", "--report", report
    )
    assert code == 0, err
    assert report.read_text().count("Partitioning site:") == 3
