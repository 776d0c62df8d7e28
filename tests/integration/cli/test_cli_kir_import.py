"""``decidua kir import``: a genotyper's file into a case, exit code 2 and nothing written on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from decidua import assess, load_kb, read_case
from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES

runner = CliRunner()
DATA = Path(__file__).parents[2] / "data" / "genotypers"


def kir(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["kir", "import", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_a_t1k_typing_replaces_the_womans_kir_in_a_new_case_file_that_assess_reads(tmp_path: Path) -> None:
    out = tmp_path / "with-kir.yaml"
    code, _, err = kir(
        DATA / "AA1_genotype.tsv", "-f", "t1k", "--case", EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml", "-o", out
    )
    assert code == 0, err
    typing = yaml.safe_load(out.read_text())["genotypes"]["woman_kir"]
    assert typing["untested"] == ["KIR2DS3"]
    assert typing["source"].startswith("t1k ")
    assert typing["source"].endswith("sample AA1, quality threshold 0")
    case = read_case(out)
    kir_aa = next(f for f in assess(case, load_kb()).findings if f.rule_id == "immunogenetics.kir.maternal_aa")
    assert kir_aa.status.value == "not_assessed"  # AA unless the low-quality KIR2DS3 call is real


def test_json_gives_every_locus_the_warnings_and_the_classification_per_sample() -> None:
    code, out, _ = kir(DATA / "manualCopyNumberFrame.csv", "-f", "ping", "--json")
    assert code == 0
    samples = {s["sample"]: s for s in json.loads(out)}
    assert set(samples) == {"P01", "P02", "P03"}
    assert samples["P01"]["profile"]["genotype"] == "AA"
    assert samples["P02"]["profile"]["genotype"] == "Bx"
    assert samples["P03"]["profile"]["genotype"] is None
    kir3dl3 = next(x for x in samples["P01"]["loci"] if x["gene"] == "KIR3DL3")
    assert kir3dl3 == {
        "gene": "KIR3DL3",
        "call": "present",
        "alleles": None,
        "copy_number": 2,
        "quality": None,
        "note": "PING's normalisation locus: 2 copies assumed",
    }


def test_several_samples_into_one_case_need_sample_and_bad_files_exit_2_writing_nothing(tmp_path: Path) -> None:
    out = tmp_path / "case.yaml"
    case = EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml"
    code, _, err = kir(DATA / "copy_numbers.table.txt", "-f", "kir-mapper", "--case", case, "-o", out)
    assert (code, "3 samples (M01, M02, M03): choose one with --sample" in err) == (2, True)
    bad = tmp_path / "S9_genotype.tsv"
    bad.write_text("KIR2DL1\t2\tKIR2DL1*003\t70.0\t60\n")  # cut short
    code, _, err = kir(bad, "-f", "t1k", "--case", case, "-o", out)
    assert code == 2
    assert "S9_genotype.tsv line 1: expected 8 or 9 tab-separated columns" in err
    code, _, err = kir(DATA / "finalAlleleCalls.csv", "-f", "t1k")
    assert (code, "is not a KIR gene" in err or "expected 8 or 9" in err) == (2, True)
    code, _, err = kir(DATA / "AA1_genotype.tsv", "-f", "t1k", "--case", case)
    assert (code, "--case and --out go together" in err) == (2, True)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary file left behind


def test_kir_mapper_files_of_one_run_merge_into_one_typing_per_sample(tmp_path: Path) -> None:
    out = tmp_path / "m01.yaml"
    code, _, err = kir(
        DATA / "copy_numbers.table.txt",
        DATA / "KIR2DL1.calls.txt",
        "-f",
        "kir-mapper",
        "--sample",
        "M01",
        "--case",
        EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml",
        "-o",
        out,
    )
    assert code == 0, err
    typing = read_case(out).genotypes.woman_kir
    assert typing is not None
    assert typing.gl_string == "kir#2.13.0#KIR2DL1*00302+KIR2DL1*00201"
    assert "KIR2DL5" in typing.absent


def test_the_output_cannot_be_an_input_or_a_directory_and_gets_the_usual_permissions(tmp_path: Path) -> None:
    source = tmp_path / "S1_genotype.tsv"
    source.write_bytes((DATA / "AA1_genotype.tsv").read_bytes())
    case = EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml"
    code, _, err = kir(source, "-f", "t1k", "--case", case, "-o", source)
    assert (code, "is also an input" in err) == (2, True)
    assert source.read_bytes() == (DATA / "AA1_genotype.tsv").read_bytes()  # the lab's file is untouched
    code, _, err = kir(source, "-f", "t1k", "--case", case, "-o", tmp_path)
    assert (code, "is a directory" in err) == (2, True)
    out = tmp_path / "case.yaml"
    assert kir(source, "-f", "t1k", "--case", case, "-o", out)[0] == 0
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_batch_columns_for_every_sample_feed_the_batch_engine(tmp_path: Path) -> None:
    import polars as pl

    from decidua.adapters.batchio import run_local, scan_input

    out = tmp_path / "kir.csv"
    code, _, err = kir(DATA / "manualCopyNumberFrame.csv", "-f", "ping", "--batch", out)
    assert code == 0, err
    frame = pl.read_csv(out)
    assert frame["case_id"].to_list() == ["P01", "P02", "P03"]
    assert frame.filter(pl.col("case_id") == "P01")["kir_2dl2"].to_list() == [False]
    assert frame.filter(pl.col("case_id") == "P03")["kir_2dl1"].to_list() == [None]  # failed: not tested
    cohort = frame.with_columns(pl.lit(34).alias("age_years"), pl.lit(3).alias("n_miscarriages"))
    cohort.write_parquet(tmp_path / "cohort.parquet")
    result = run_local(scan_input(tmp_path / "cohort.parquet"), load_kb())
    assert result.rejects.height == 0
    statuses = dict(zip(result.results["case_id"], result.results["immunogenetics.kir.maternal_aa"], strict=True))
    assert statuses == {"P01": "flagged", "P02": "within_range", "P03": "not_assessed"}
