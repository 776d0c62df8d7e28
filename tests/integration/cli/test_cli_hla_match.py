from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES, SHARED_REFERENCE

runner = CliRunner()
AA = "2DL1,2DL3,2DL4,2DS4,3DL1,3DL2,3DL3,2DP1,3DP1"


def test_hla_ligand_json() -> None:
    result = runner.invoke(app, ["hla", "ligand", "C*07:02", "HLA-C*06:02", "B*57:01", "Cw7", "C*99:99", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [(d["allele"], d["ligand"]) for d in data] == [
        ("C*07:02", "C1"),
        ("HLA-C*06:02", "C2"),
        ("B*57:01", "Bw4-80I"),
        ("Cw7", "ambiguous"),
        ("C*99:99", "unknown"),
    ]
    assert data[0]["release"] == "IPD-IMGT/HLA 3.58.0"


def test_hla_ligand_reports_a_mac_as_needing_expansion_and_goes_on() -> None:
    result = runner.invoke(app, ["hla", "ligand", "C*07:02", "C*07:AB", "B*44:02", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(d["allele"], d["ligand"]) for d in data] == [
        ("C*07:02", "C1"),
        ("C*07:AB", "needs expansion"),
        ("B*44:02", "Bw4-80T"),
    ]
    assert "NMDP multiple allele code" in data[1]["reason"]
    assert data[2]["leader_21"] == "T"


NUMER = '"LAST UPDATED: 09/30/20"\nCODE\tSUBTYPE\n\nAB\t01/02\nBYHR\t25:01/26:01\n'


def test_mac_file_expands_codes(tmp_path: Path) -> None:
    macs = tmp_path / "numer.v3.txt"
    macs.write_text(NUMER)
    result = runner.invoke(app, ["hla", "ligand", "C*07:AB", "--mac-file", str(macs), "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["expanded"], row["ligand"]) == ("C*07:01/C*07:02", "C1")
    result = runner.invoke(app, ["hla", "reduce", "A*25:BYHR", "-l", "lgx", "--mac-file", str(macs), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["result"] == "A*25:01/A*26:01"


def test_bad_mac_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    macs = tmp_path / "numer.v3.txt"
    macs.write_text(NUMER + "ab\t01;02\n")
    result = runner.invoke(app, ["hla", "reduce", "C*07:AB", "--mac-file", str(macs)])
    assert result.exit_code == 2
    assert "line 6" in result.stderr
    assert "not an NMDP allele code line" in result.stderr


def test_hla_reduce_every_level() -> None:
    result = runner.invoke(app, ["hla", "reduce", "C*07:02:01:01+C*06:02:01:01", "C*07:AB", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_level = {d["level"]: d["result"] for d in data if d["typing"].startswith("C*07:02")}
    assert by_level == {
        "G": "C*07:02:01G+C*06:02:01G",
        "P": "C*07:02P+C*06:02P",
        "lg": "C*07:02g+C*06:02g",
        "lgx": "C*07:02+C*06:02",
        "two-field": "C*07:02+C*06:02",
        "serological": "Cw7+Cw6",
    }
    assert {d["status"] for d in data if d["typing"] == "C*07:AB"} == {"needs expansion"}
    serological = next(d for d in data if d["level"] == "serological" and d["result"])
    assert any("not produce it to infer" in n for n in serological["notes"])


def test_hla_reduce_answers_an_unknown_allele_per_typing() -> None:
    result = runner.invoke(app, ["hla", "reduce", "C*99:99", "C*07:02:01:01", "-l", "G", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["typing"], r["status"]) for r in rows] == [("C*99:99", "unknown"), ("C*07:02:01:01", "reduced")]
    assert "not an allele of IPD-IMGT/HLA 3.58.0" in rows[0]["notes"][0]


@pytest.mark.skipif(not (SHARED_REFERENCE / "ipd-imgt-hla-3.58.0").is_dir(), reason="IPD-IMGT/HLA release not present")
def test_build_table(tmp_path: Path) -> None:
    out = tmp_path / "t.tsv.gz"
    result = runner.invoke(
        app, ["hla", "build-table", "--imgt", str(SHARED_REFERENCE / "ipd-imgt-hla-3.58.0"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 10_000


def test_build_table_on_a_bad_directory_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hla", "build-table", "--imgt", str(tmp_path), "-o", str(tmp_path / "t.gz")])
    assert result.exit_code == 2
    assert "release_version.txt" in result.stderr or "missing release file" in result.stderr
    assert not (tmp_path / "t.gz").exists()


def test_match_json_keys_and_probabilities() -> None:
    result = runner.invoke(
        app,
        [
            "match",
            "--woman-kir",
            AA,
            "--woman-hla-c",
            "C*07:02+C*03:04",
            "--partner-hla-c",
            "C*06:02+C*07:01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["woman_kir_genotype"] == "AA"
    assert data["p_embryo_paternal_c2"] == 0.5
    assert data["p_embryo_more_c2_than_mother"] == 0.5
    assert data["embryo_distribution"] == {"C1C1": 0.5, "C1C2": 0.5}
    assert data["category"] == "unfavourable"
    assert {(p["receptor"], p["ligand"]) for p in data["pairs"]} >= {
        ("KIR2DL1", "C2"),
        ("KIR2DS1", "C2"),
        ("KIR2DL3", "C1"),
    }
    assert {c["key"] for c in data["citations"]} >= {"hiby2004", "hiby2008", "hiby2010"}


def test_match_ranks_donors() -> None:
    result = runner.invoke(
        app,
        [
            "match",
            "--woman-kir",
            AA,
            "--woman-hla-c",
            "C*07:01+C*03:04",
            "--partner-hla-c",
            "C*07:02+C*04:01",
            "--donor-hla-c",
            "D1=C*06:02+C*05:01",
            "--donor-hla-c",
            "D2=C*07:01+C*01:02",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    donors = json.loads(result.stdout)["donors"]
    assert [(d["id"], d["rank"], d["ligands"]) for d in donors] == [("D2", 1, "C1C1"), ("D1", 2, "C2C2")]


def test_match_protective_and_no_risk_categories() -> None:
    bx = runner.invoke(
        app,
        [
            "match",
            "--woman-kir",
            AA + ",2DS1,3DS1",
            "--woman-hla-c",
            "C*07:02+C*07:01",
            "--partner-hla-c",
            "C*06:02+C*07:01",
            "--json",
        ],
    )
    assert json.loads(bx.stdout)["category"] == "protective_association"
    c1 = runner.invoke(
        app,
        [
            "match",
            "--woman-kir",
            AA,
            "--woman-hla-c",
            "C*07:02+C*07:01",
            "--partner-hla-c",
            "C*07:02+C*01:02",
            "--json",
        ],
    )
    assert json.loads(c1.stdout)["category"] == "no_risk_combination"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--woman-kir", AA, "--woman-hla-c", "C*07:02", "--partner-hla-c", "C*06:02+C*07:01"],
            "give both alleles",
        ),
        (["--woman-kir", AA, "--woman-hla-c", "C*07:02+C*99:99"], "C*99:99 is not an allele"),
        (["--woman-kir", "2DL1,2DX9", "--woman-hla-c", "C*07:02+C*07:01"], "unknown KIR gene"),
        (["--woman-kir", AA, "--woman-hla-c", "C*07:AB+C*07:01"], "NMDP"),
    ],
)
def test_match_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["match", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_match_from_case_files() -> None:
    data = json.loads(
        runner.invoke(app, ["match", "--case", str(EXAMPLES / "09-egg-donation-donor-ranking.yaml"), "--json"]).stdout
    )
    assert data["oocyte_source_hla_c"]["ligands"] == "C1C2"  # the chosen donor D2
    assert data["p_embryo_more_c2_than_mother"] == 0.75
    assert [d["id"] for d in data["donors"]] == ["D3", "D2", "D1"]
    embryos = json.loads(
        runner.invoke(app, ["match", "--case", str(EXAMPLES / "10-pgt-embryos-kir-bx.yaml"), "--json"]).stdout
    )["embryos"]
    assert [(e["id"], e["ligands"], e["c2_more_than_mother"]) for e in embryos] == [
        ("E1", "C1C2", True),
        ("E2", "C1C1", False),
    ]


def test_hla_ligand_reads_genotypes_and_prints_codes_as_written(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hla", "ligand", "C*07:02+C*06:02^B*57:01+B*07:02", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["ligand"], row["leader_21"]) == ("C1+C2^Bw4-80I+Bw6", "M+M^T+M")
    macs = tmp_path / "numer.v3.txt"
    macs.write_text(NUMER)
    shown = runner.invoke(app, ["hla", "ligand", "C*07:AB", "--mac-file", str(macs)])
    assert "🆎" not in shown.stdout  # Rich would turn ":AB" into an emoji
    reduced = runner.invoke(app, ["hla", "reduce", "C*07:02", "-l", "G", "-l", "G", "--json"])
    assert [r["level"] for r in json.loads(reduced.stdout)] == ["G"]


def test_figures_for_a_donor_cycle_name_the_donor_and_own_oocytes_mention_none() -> None:
    """EX-09's headline probabilities use the chosen donor's HLA-C (D2 of three): the output says so; EX-08 (own
    oocytes) must not speak of an oocyte donor."""
    donor = runner.invoke(app, ["match", "--case", str(EXAMPLES / "09-egg-donation-donor-ranking.yaml")])
    assert donor.exit_code == 0, donor.output
    assert "Oocyte donor of the cycle: D2 (the probabilities use this donor's HLA-C)" in donor.stdout
    data = json.loads(
        runner.invoke(app, ["match", "--case", str(EXAMPLES / "09-egg-donation-donor-ranking.yaml"), "--json"]).stdout
    )
    assert (data["oocyte_donor_id"], data["p_embryo_more_c2_than_mother"]) == ("D2", 0.75)
    summary = next(f["summary"] for f in data["findings"] if f["rule_id"] == "immunogenetics.compat.aa_more_c2")
    assert "oocyte donor chosen for the cycle" in summary
    own = json.loads(
        runner.invoke(app, ["match", "--case", str(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml"), "--json"]).stdout
    )
    assert own["oocyte_donor_id"] is None
    summary = next(f["summary"] for f in own["findings"] if f["rule_id"] == "immunogenetics.compat.aa_more_c2")
    assert "donor" not in summary.replace("sperm donor", "")
