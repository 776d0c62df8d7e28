"""``decidua hla import``: HML typings into a case by role; exit code 2 and nothing written on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from decidua import assess, load_kb, read_case
from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES

runner = CliRunner()
HML = Path(__file__).parents[2] / "data" / "hml" / "two-samples-1.0.1.xml"
CASE = EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml"


def hla(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["hla", "import", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_the_womans_and_the_partners_typings_go_into_the_case_and_the_assessment_reads_them(tmp_path: Path) -> None:
    woman, partner = tmp_path / "w.yaml", tmp_path / "wp.yaml"
    code, _, err = hla(HML, "--sample", "W-001", "--case", CASE, "--as", "woman", "-o", woman)
    assert code == 0, err
    code, _, err = hla(HML, "--sample", "P-001", "--case", woman, "--as", "partner", "-o", partner)
    assert code == 0, err
    case = read_case(partner)
    assert case.genotypes.woman_hla_c == "hla#3.58.0#HLA-C*07:02+HLA-C*03:04"
    assert case.genotypes.partner_hla_c == "hla#3.58.0#HLA-C*06:02+HLA-C*07:01"
    assert case.genotypes.woman_kir is not None
    assert case.genotypes.woman_kir.source == f"HML {HML}, sample W-001"
    assert case.genotypes.woman_kir.absent_unlisted is False
    statuses = {f.rule_id: f.status.value for f in assess(case, load_kb()).findings}
    # the GL String names the genes found; the B genes it does not name are not tested, so AA is not decided
    assert statuses["immunogenetics.kir.maternal_aa"] == "not_assessed"
    assert statuses["immunogenetics.compat.aa_paternal_c2"] == "not_assessed"


def test_a_donor_or_embryo_is_added_or_replaced_by_id(tmp_path: Path) -> None:
    out = tmp_path / "d.yaml"
    code, _, err = hla(HML, "--sample", "P-001", "--case", CASE, "--as", "oocyte-donor=D7", "-o", out)
    assert code == 0, err
    (donor,) = read_case(out).genotypes.oocyte_donors
    assert (donor.id, donor.hla_c) == ("D7", "hla#3.58.0#HLA-C*06:02+HLA-C*07:01")


def test_json_lists_every_typing_with_its_element() -> None:
    code, out, _ = hla(HML, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["sample"], r["locus"]) for r in rows] == [
        ("W-001", None),
        ("W-001", "HLA-A"),
        ("W-001", "HLA-C"),
        ("P-001", "HLA-C"),
        ("P-001", "HLA-B"),
    ]
    assert rows[2]["allele_db"] == "IMGT/HLA"


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    cases = [
        ((HML, "--case", CASE, "--as", "woman", "-o", out), "2 samples (P-001, W-001): choose one with --sample"),
        ((HML, "--sample", "P-001", "--case", CASE, "--as", "uncle", "-o", out), "--as: got 'uncle'"),
        ((HML, "--sample", "Z-9"), "no sample 'Z-9'"),
        ((HML, "--case", CASE, "-o", out), "--case, --as and --out go together"),
        ((tmp_path / "missing.xml",), "cannot read"),
    ]
    for args, message in cases:
        code, _, err = hla(*args)
        assert (code, message in err) == (2, True), (args, err)
    assert not out.exists()
