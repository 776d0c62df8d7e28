"""``decidua kir classify``: JSON shape, text output, exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from decidua.entrypoints.cli.main import app

runner = CliRunner()

GROUP_A = "3DL3,2DL3,2DP1,2DL1,3DP1,2DL4,3DL1,2DS4,3DL2"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["kir", "classify", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_has_the_documented_keys() -> None:
    code, out, _ = invoke("--present", GROUP_A + ",2DS2,2DL2", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"genotype", "cen", "tel", "b_content", "b_content_group", "warnings"} <= set(data)
    assert (data["genotype"], data["cen"], data["tel"], data["b_content"], data["b_content_group"]) == (
        "Bx",
        "AB",
        "AA",
        1,
        "Neutral",
    )
    assert data["warnings"] == []


def test_undetermined_values_are_null_with_a_reason() -> None:
    code, out, _ = invoke("--present", "2DL2,3DL1,2DS4", "--untested", "2DL3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["cen"] is None
    assert data["b_content"] is None
    assert "cen undetermined: needs KIR2DL3 (not tested)" in data["warnings"]


def test_gl_string_and_release() -> None:
    code, out, _ = invoke("--gl", "kir#2.13.0#KIR2DL3*001+KIR2DL3*002^KIR3DL1*002^KIR2DS4*00101", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["cen"] == "AA"
    assert data["tel"] == "AA"
    assert data["ipd_kir_release"] == "IPD-KIR 2.13.0"


def test_text_output() -> None:
    code, out, _ = invoke("--present", GROUP_A, "--untested", "2DS3")
    assert code == 0
    assert "KIR gene content" in out
    assert "undetermined" in out
    assert "warning:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--present", "2DL1,2DL9"), "unknown KIR gene '2DL9'"),
        (("--present", "2DL1", "--absent", "KIR2DL1"), "KIR2DL1: got 'present"),
        (("--present", "KIR2DL1*00x"), "malformed KIR allele name 'KIR2DL1*00x'"),
        (("--present", "KIR2DL1*999"), "'KIR2DL1*999' is not a KIR2DL1 allele"),
        (("--gl", "hla#HLA-C*07:01"), "namespace 'hla'"),
        ((), "give the typing"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert out == ""
    assert message in " ".join(err.split())


def test_gene_lists_with_spaces_and_a_clear_word_for_stray_genes() -> None:
    spaced = runner.invoke(app, ["kir", "classify", "--present", "2DL1 2DL3 2DL4 3DL1 3DL2 3DL3 2DS4 3DP1", "--json"])
    commas = runner.invoke(app, ["kir", "classify", "--present", "2DL1,2DL3,2DL4,3DL1,3DL2,3DL3,2DS4,3DP1", "--json"])
    assert spaced.exit_code == 0, spaced.stderr
    assert json.loads(spaced.stdout) == json.loads(commas.stdout)
    stray = runner.invoke(app, ["kir", "classify", "--present", "2DL1", "2DL2"])
    assert stray.exit_code == 2
    assert "unexpected '2DL2'" in stray.stderr
    assert "--present '2DL1 2DL3'" in stray.stderr


def test_batch_columns_print_every_name_whole_at_80_columns() -> None:
    result = runner.invoke(app, ["batch", "--columns"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert "oocyte_donor_hla_c" in result.stdout
