"""``decidua lab import``: an ORU^R01 message into a case file; unread segments refuse the merge unless asked."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from decidua import assess, load_kb, read_case
from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES

runner = CliRunner()
MESSAGE = Path(__file__).parents[2] / "data" / "hl7" / "oru-nk-apl-thyroid.hl7"
CASE = EXAMPLES / "05-missing-tests.yaml"


def lab(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["lab", "import", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_results_merge_into_a_new_case_file_that_the_assessment_reads(tmp_path: Path) -> None:
    out = tmp_path / "merged.yaml"
    code, _, err = lab(MESSAGE, "--case", CASE, "-o", out)
    assert code == 0, err
    case = read_case(out)
    assert case.nk.peripheral is not None
    assert case.nk.peripheral.nk_percent.value == 21.5
    statuses = {f.rule_id: f.status.value for f in assess(case, load_kb()).findings}
    assert statuses["investigation.antiphospholipid"] == "flagged"  # the positive anti-beta2GP1 IgM


def test_json_reports_every_segment() -> None:
    code, out, _ = lab(MESSAGE, "--json")
    data = json.loads(out)
    assert (code, data["patient_ids"], len(data["results"])) == (0, ["MRN-4411"], 7)


def test_an_unread_segment_refuses_the_merge_unless_skip_unread_and_nothing_is_written(tmp_path: Path) -> None:
    message = tmp_path / "m.hl7"
    message.write_text(MESSAGE.read_text() + "OBX|8|NM|2345-7^Glucose^LN||5.1|mmol/L|||N|||F\r")
    out = tmp_path / "merged.yaml"
    code, _, err = lab(message, "--case", CASE, "-o", out)
    assert code == 2
    assert "1 segment(s) not read (OBX 8 2345-7 (LN): LOINC 2345-7 is not a result decidua reads)" in err
    assert not out.exists()
    code, _, err = lab(message, "--case", CASE, "-o", out, "--skip-unread")
    assert code == 0, err
    assert out.exists()
    code, _, err = lab(tmp_path / "none.hl7")
    assert (code, "cannot read" in err) == (2, True)


def _latin1(msh18: str | None) -> bytes:
    text = MESSAGE.read_text("utf-8").replace("PATIENT^TEST", "MÜLLER^RENÉE")
    if msh18 is not None:
        first, rest = text.split("\n", 1)
        text = f"{first}||||||{msh18}\n{rest}"  # MSH-13 to MSH-17 empty
    return text.encode("iso8859-1")


def test_a_latin1_message_is_read_by_its_msh18(tmp_path: Path) -> None:
    path = tmp_path / "latin1.hl7"
    path.write_bytes(_latin1("8859/1"))
    code, out, err = lab(path, "--json")
    assert code == 0, err
    assert len(json.loads(out)["results"]) == 7


def test_a_character_set_that_is_not_named_or_not_known_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "latin1.hl7"
    path.write_bytes(_latin1(None))  # Latin-1 bytes, no MSH-18: read as UTF-8, which they are not
    code, _, err = lab(path)
    assert code == 2
    assert "MSH-18 names no character set" in err
    path.write_bytes(_latin1("EBCDIC"))
    code, _, err = lab(path)
    assert code == 2
    assert "MSH-18 names character set 'EBCDIC'" in err
