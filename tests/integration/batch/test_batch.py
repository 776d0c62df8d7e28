from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from decidua.adapters import batchio
from decidua.adapters.batchio import run_local, scan_input
from decidua.core.errors import InputError
from decidua.engines.batch import KIR_COLUMNS
from decidua.entrypoints.cli.main import app
from decidua.knowledge.loader import KnowledgeBase

runner = CliRunner()

HEADER = "case_id,age_years,pb_nk_percent,n_miscarriages,n_biochemical_losses,cond_sle,cond_rheumatoid_arthritis"
CSV = f"""{HEADER},cond_vasculitis
a,36,20,2,0,no,no,no
b,35,20,1,1,,,
c,x,20,0,0,no,no,no
d,40,140,3,,maybe,no,no
e,41,,1,0,yes,no,no
"""


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    path = tmp_path / "cohort.csv"
    path.write_text(CSV)
    return path


def test_kir_columns_read_gene_words_while_yes_no_columns_refuse_ambiguous_letters(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    path = tmp_path / "words.csv"
    path.write_text(
        f"{HEADER},cond_vasculitis,apl_lupus_anticoagulant,kir_2dl1,kir_2dl2\n"
        "f,39,20,2,0,no,No, Yes ,negative,P,ND\n"  # KIR2DL1 present, KIR2DL2 not tested
        "g,39,20,2,0,no,no,no,A,A,absent\n"  # "A" on a lab sheet may mean abnormal: refused, not read as no
        "h,39,20,2,0,ND,no,no,neg,present,a\n"  # "ND" may mean not detected: refused in a yes/no column
    )
    result = run_local(scan_input(path), kb)
    (f,) = result.results.iter_rows(named=True)
    assert (f["case_id"], f["autoimmune.systemic"]) == ("f", "flagged")  # vasculitis: " Yes "
    rejects = dict(result.rejects.iter_rows())
    assert rejects["g"] == ("apl_lupus_anticoagulant: got 'A'; allowed: yes or no (1/0, true/false, positive/negative)")
    assert rejects["h"].startswith("cond_sle: got 'ND'; allowed: yes or no")


def test_invalid_rows_go_to_rejects_with_every_reason_and_valid_rows_are_assessed(
    cohort: Path, kb: KnowledgeBase
) -> None:
    result = run_local(scan_input(cohort), kb)
    assert result.results["case_id"].to_list() == ["a", "b", "e"]
    rejects = dict(result.rejects.iter_rows())
    assert rejects == {
        "c": "age_years: got 'x'; allowed: an integer from 10 to 70",
        "d": "cond_sle: got 'maybe'; allowed: yes or no (1/0, true/false, positive/negative); "
        "pb_nk_percent: got '140'; allowed: a number from 0 to 100",
    }
    a, b, e = result.results.iter_rows(named=True)
    assert (a["nk.peripheral.clinic"], b["nk.peripheral.clinic"]) == ("flagged", "within_range")  # 36 vs 35
    assert b["autoimmune.systemic"] == "not_assessed"  # empty cells are "not recorded", never "no"
    assert e["nk.peripheral.clinic"] == "not_assessed"
    assert e["autoimmune.systemic"] == "flagged"


def test_cli_writes_results_and_rejects_and_prints_a_summary(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "res" / "out.parquet"
    result = runner.invoke(app, ["batch", str(cohort), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "5 rows in, 3 assessed, 2 rejected" in result.stderr
    assert "nk.peripheral.clinic" in result.stderr
    assert pl.read_parquet(out).height == 3
    assert pl.read_parquet(out.with_name("out.rejects.parquet"))["case_id"].to_list() == ["c", "d"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.parquet", "out.rejects.parquet"]


def test_excel_input(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "cohort.xlsx"
    pl.read_csv(CSV.encode(), infer_schema=False).write_excel(path)
    result = run_local(scan_input(path), kb)
    assert result.results["case_id"].to_list() == ["a", "b", "e"]
    assert result.rejects.height == 2


def test_interrupted_write_leaves_no_partial_output(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.parquet"

    def explode(self: pl.DataFrame, path: Path) -> None:
        Path(path).write_bytes(b"PAR1 half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    with pytest.raises(KeyboardInterrupt):
        batchio.write_frame(pl.DataFrame({"x": [1]}), out)
    assert list(tmp_path.iterdir()) == [cohort]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "patient"], "input has no key column 'patient'"),
        (["-o", "OUT.txt"], "unknown output format '.txt'"),
    ],
)
def test_bad_usage_exits_2(cohort: Path, tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["batch", str(cohort), "-o", str(tmp_path / "o.parquet"), *args]
    argv = [a.replace("OUT.txt", str(tmp_path / "o.txt")) for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert not list(tmp_path.glob("o.*"))


def test_unknown_columns_are_refused_unless_allowed(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "c.csv"
    path.write_text("case_id,age_yaers\nx,30\n")
    with pytest.raises(InputError, match="input columns not in the layout: age_yaers"):
        run_local(scan_input(path), kb)
    assert run_local(scan_input(path), kb, allow_extra=True).results.height == 1


def test_columns_and_schema_document_the_layout() -> None:
    result = runner.invoke(app, ["batch", "--columns"])
    assert result.exit_code == 0
    assert "pb_nk_percent" in result.stdout
    result = runner.invoke(app, ["batch", "--schema"])
    schema = json.loads(result.stdout)
    assert schema["properties"]["pb_nk_percent"]["maximum"] == 100
    assert schema["properties"]["uterine_anatomy"]["enum"] == ["normal", "congenital_anomaly", "acquired_lesion", None]


def test_dask_engine_gives_the_same_results_as_the_local_engine(
    cohort: Path, tmp_path: Path, kb: KnowledgeBase
) -> None:
    from decidua.adapters.cluster import run_dask

    local = run_local(scan_input(cohort), kb)
    parquet = tmp_path / "cohort.parquet"
    pl.read_csv(cohort, infer_schema=False).write_parquet(parquet)
    for path in (cohort, parquet):
        remote = run_dask(path, kb, scheduler=None)
        assert remote.results.equals(local.results.with_columns(pl.col("rpl_losses_counted").cast(pl.Int64)))
        assert remote.rejects.equals(local.rejects)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_dask_engine_writes_the_same_files_as_the_local_engine(cohort: Path, tmp_path: Path, suffix: str) -> None:
    outputs = {}
    for engine in ("polars", "dask"):
        out = tmp_path / engine / f"out{suffix}"
        result = runner.invoke(app, ["batch", str(cohort), "-o", str(out), "--engine", engine])
        assert result.exit_code == 0, result.stderr
        assert "5 rows in, 3 assessed, 2 rejected" in result.stderr
        read = pl.read_parquet if suffix == ".parquet" else pl.read_csv
        outputs[engine] = (read(out), read(batchio.rejects_path(out)))
        assert sorted(p.name for p in out.parent.iterdir()) == sorted([f"out.rejects{suffix}", f"out{suffix}"])
    assert outputs["dask"][0].equals(outputs["polars"][0])
    assert outputs["dask"][1].equals(outputs["polars"][1])


def test_run_to_files_streams_chunks_and_leaves_nothing_when_interrupted(
    cohort: Path, tmp_path: Path, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out" / "res.csv"
    run = batchio.run_to_files(scan_input(cohort), kb, out, chunk_rows=2)
    assert (run.assessed, run.rejected) == (3, 2)
    assert run.counts["nk.peripheral.clinic"] == {"flagged": 1, "within_range": 1, "not_assessed": 1}
    assert pl.read_csv(out)["case_id"].to_list() == ["a", "b", "e"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["res.csv", "res.rejects.csv"]

    def interrupt(rows: int) -> None:  # Ctrl+C while the query streams: the run ends, nothing is left
        raise KeyboardInterrupt

    again = tmp_path / "again" / "res.parquet"
    with pytest.raises(KeyboardInterrupt):
        batchio.run_to_files(scan_input(cohort), kb, again, chunk_rows=2, on_chunk=interrupt)
    assert list(again.parent.iterdir()) == []

    def fail_while_preparing(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(batchio, "prepare", fail_while_preparing)
    with pytest.raises(KeyboardInterrupt):
        batchio.run_to_files(scan_input(cohort), kb, again, chunk_rows=2)
    assert list(again.parent.iterdir()) == []


GROUP_A = {"3dl3", "2dl3", "2dp1", "2dl1", "3dp1", "2dl4", "3dl1", "2ds4", "3dl2"}  # a KIR AA genotype


def test_hla_typings_of_a_cohort_are_interpreted_and_bad_ones_rejected_with_the_reason(kb: KnowledgeBase) -> None:
    typings = {
        "plain": "C*07:02+C*06:02",  # C1 + C2
        "list": "C*07:01+C*06:02|C*07:02+C*06:02",  # a genotype list: every candidate is C1 + C2
        "unknown": "C*99:99+C*07:02",
        "mac": "C*01:AB+C*07:02",
        "empty_side": "C*07:02+ ",
        "again": "C*07:02+C*06:02",  # the same typing as "plain", in another row
    }
    frame = pl.DataFrame(
        {
            "case_id": list(typings),
            "age_years": [36] * len(typings),
            "n_miscarriages": [2] * len(typings),
            "woman_hla_c": list(typings.values()),
            "partner_hla_c": ["C*06:02+C*05:01"] * len(typings),  # C2 C2
            **{col: [col.removeprefix("kir_") in GROUP_A] * len(typings) for col in KIR_COLUMNS},
        }
    )
    result = run_local(frame.lazy(), kb)
    rejects = dict(result.rejects.iter_rows())
    assert set(rejects) == {"unknown", "mac", "empty_side"}
    assert (
        rejects["unknown"] == "woman_hla_c: got 'C*99:99+C*07:02'; HLA-C*99:99 is not an allele of IPD-IMGT/HLA 3.58.0"
    )
    assert "NMDP multiple allele code" in rejects["mac"]
    rows = {r["case_id"]: r for r in result.results.iter_rows(named=True)}
    assert set(rows) == {"plain", "list", "again"}
    for row in rows.values():  # KIR AA mother, C2C2 father: every embryo gets a paternal C2
        assert row["immunogenetics.kir.maternal_aa"] == "flagged"
        assert row["immunogenetics.compat.aa_paternal_c2"] == "flagged"


def test_a_cohort_without_the_matching_column_still_counts_transfer_biochemicals(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """One miscarriage and two biochemical pregnancies after transfers, in a file that has no
    n_biochemical_losses_art column: the two are losses (not hidden as already counted)."""
    frame = pl.DataFrame(
        {
            "case_id": ["C1"],
            "n_biochemical_losses": [0],
            "n_miscarriages": [1],
            "n_transfers": [2],
            "n_transfers_failed": [2],
            "n_transfers_biochemical": [2],
        }
    )
    path = tmp_path / "cohort.csv"
    frame.write_csv(path)
    result = run_local(scan_input(path), kb)
    row = result.results.row(0, named=True)
    assert (row["rpl"], row["rpl_losses_counted"], row["workup"]) == ("flagged", 3, "flagged")


def test_text_cells_read_as_the_cell_reader_reads_them_whatever_morsel_they_first_appear_in(kb: KnowledgeBase) -> None:
    from decidua.core.cells import read_cell

    spellings = ["yes", "no", " YES", "No ", "\x1cpos\u3000", "Neg", "maybe", "A", "", "tRuE", "yes"]
    frame = pl.DataFrame(
        {
            "case_id": [f"r{i}" for i in range(len(spellings))],
            "age_years": ["36"] * len(spellings),
            "cond_sle": spellings,
            "karyotype_woman": ["normal", " Abnormal", "NORMAL", "odd", "normal", "abnormal\t", *["normal"] * 5],
        }
    )

    def readable(cell: str) -> bool:
        try:
            read_cell(cell)
        except ValueError:
            return False
        return True

    result = run_local(frame.lazy(), kb, chunk_rows=2)  # spellings first met in later morsels too
    rejected = set(result.rejects["case_id"])
    expected = {f"r{i}" for i, cell in enumerate(spellings) if not readable(cell)} | {"r3"}  # r3: "odd"
    assert rejected == expected
    assert result.results.height == len(spellings) - len(expected)
