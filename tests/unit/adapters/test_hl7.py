"""HL7 v2 ORU^R01 results in: each OBX read into a case field or refused saying why; nothing guessed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from decidua.adapters.hl7 import read_oru
from decidua.app.labs import LabValue, merge_lab_values
from decidua.core.errors import InputError

MESSAGE = (Path(__file__).parents[2] / "data" / "hl7" / "oru-nk-apl-thyroid.hl7").read_text()
MSH = "MSH|^~\\&|LIS|LAB|DECIDUA|CLINIC|20261002||ORU^R01|M1|P|2.5.1"


def one(obx: str, version: str = "2.5.1") -> tuple[str | None, object, str | None]:
    (r,) = read_oru(f"{MSH.replace('2.5.1', version)}\rPID|1||X1\r{obx}", "m.hl7").results
    return r.path, r.value, r.problem


def test_the_sample_message_sets_every_result_it_carries() -> None:
    message = read_oru(MESSAGE, "oru.hl7")
    assert (message.control_id, message.patient_ids, message.problems) == ("LAB-0001", ("MRN-4411",), ())
    got = {r.path: (r.value, r.reading) for r in message.results}
    assert got == {
        "nk.peripheral.nk_percent": ({"value": 21.5, "unit": "%"}, None),
        "nk.peripheral.absolute_count": ({"value": 310.0, "unit": "/uL"}, None),
        "investigations.thyroid.tsh": ({"value": 2.1, "unit": "m[IU]/L"}, "normal"),
        "investigations.antiphospholipid.lupus_anticoagulant": ("negative", None),
        "investigations.antiphospholipid.anti_beta2_glycoprotein_i_igg": ("negative", None),
        "investigations.antiphospholipid.anti_beta2_glycoprotein_i_igm": ("positive", None),
        "investigations.thyroid.tpo_antibodies": ("negative", None),
    }


def test_line_feeds_and_mllp_framing_are_accepted() -> None:
    framed = "\x0b" + MESSAGE.replace("\r", "\n") + "\x1c\r"
    assert read_oru(framed, "mllp.hl7").results == read_oru(MESSAGE, "oru.hl7").results


@pytest.mark.parametrize(
    ("obx", "problem"),
    [
        ("OBX|1|NM|2345-7^Glucose^LN||5.1|mmol/L||N|||F", "LOINC 2345-7 is not a result decidua reads"),
        ("OBX|1|NM|3181-7^aCL IgG^LN||12|GPL||N|||F", "LOINC 3181-7 (anticardiolipin IgG) is not read"),
        ("OBX|1|NM|NKP^NK %^L||21|%||H|||F", "coded in 'L', not LOINC"),
        ("OBX|1|NM|8112-5^NK^LN||21|cells/HPF||H|||F", "unit 'cells/HPF'"),
        ("OBX|1|NM|8112-5^NK^LN||21|%||H|||P", "result status 'P'"),
        ("OBX|1|NM|8112-5^NK^LN||<5|%||L|||F", "value '<5' is not a number"),
        ("OBX|1|NM|44448-9^B2GP1 IgG^LN||12|U/mL|||||F", "without an abnormal flag"),
        ("OBX|1|NM|44448-9^B2GP1 IgG^LN||12|U/mL||L|||F", "abnormal flag 'L'"),
        ("OBX|1|CWE|75514-0^LA^LN||EQUIVOCAL^Equivocal^L||||||F", "answer 'EQUIVOCAL^Equivocal^L'"),
        ("OBX|1|NM|3016-3^TSH^LN||9.1|m[IU]/L||W|||F", "abnormal flag 'W'"),
        ("OBX|1|CWE|75514-0^LA^LN||N^Positive^L||||||F", "its code and text disagree"),  # never read "N" as no
        ("OBX|1|CWE|75514-0^LA^LN||1^Indeterminate^L||||||F", "expected positive/negative"),  # "1" may be a titre
        ("OBX|1|ST|75514-0^LA^LN||-||||||F", "expected positive/negative"),
        ("OBX|1|SN|3016-3^TSH^LN||<^0.01|m[IU]/L||L|||F", "a comparator or range cannot be stored"),
    ],
)
def test_each_obx_that_cannot_be_read_says_why_and_sets_nothing(obx: str, problem: str) -> None:
    path, value, said = one(obx)
    assert (path, value) == (None, None)
    assert said is not None
    assert problem in said


def test_coded_answers_and_structured_numbers_are_read_when_they_say_one_thing() -> None:
    assert one("OBX|1|CWE|75514-0^LA^LN||DET^Detected^99LAB||||||F")[1] == "positive"
    assert one("OBX|1|SN|3016-3^TSH^LN||=^2.1|m[IU]/L||N|||F")[1] == {"value": 2.1, "unit": "m[IU]/L"}
    assert one("OBX|1|NM|9728-7^NK^LN||0.31|10\\S\\9/L||N|||F")[1] == {"value": 0.31, "unit": "10^9/L"}  # HL7 escape


def test_results_of_two_patients_or_two_messages_in_one_file_are_refused() -> None:
    second_patient = MESSAGE + "PID|2||MRN-9999\rOBX|8|CWE|75514-0^LA^LN||POS^Positive^L||||||F\r"
    with pytest.raises(InputError, match="results of 2 patients"):
        read_oru(second_patient, "two.hl7")
    with pytest.raises(InputError, match="2 messages"):
        read_oru(MESSAGE + MESSAGE, "two.hl7")


def test_a_version_2_7_message_with_coded_interpretation_is_read() -> None:
    assert one("OBX|1|NM|3016-3^TSH^LN||9.1|m[IU]/L^^UCUM||H^High^HL70078|||F", "2.7") == (
        "investigations.thyroid.tsh",
        {"value": 9.1, "unit": "m[IU]/L"},
        None,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not an HL7 v2 message"),
        (MSH.replace("ORU^R01", "ADT^A01") + "\rPID|1||X", "MSH-9 is 'ADT^A01'"),
        (MSH + "\rPID|1||X1", "no OBX segment"),
        (MSH.replace("2.5.1", "9.9") + "\rOBX|1|NM|3016-3^TSH^LN||1|m[IU]/L||N|||F", "not a readable HL7 v2 message"),
    ],
)
def test_a_message_that_is_not_an_oru_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        read_oru(text, "bad.hl7")


def test_a_new_sample_replaces_what_belonged_to_the_earlier_one() -> None:
    case = {
        "nk": {"peripheral": {"nk_percent": {"value": 30, "unit": "%"}, "date": "2025-01-05", "method": "old lab"}},
        "investigations": {"thyroid": {"tsh": {"value": 9.0, "unit": "mIU/L"}, "tsh_interpretation": "abnormal"}},
    }
    merged = merge_lab_values(
        case,
        [
            LabValue(1, "nk.peripheral.nk_percent", {"value": 12.0, "unit": "%"}, date="2026-10-01"),
            LabValue(2, "investigations.thyroid.tsh", {"value": 1.8, "unit": "mIU/L"}),  # no flag: no reading
        ],
    )
    assert merged["nk"]["peripheral"] == {"date": "2026-10-01", "nk_percent": {"value": 12.0, "unit": "%"}}
    assert merged["investigations"]["thyroid"] == {"tsh": {"value": 1.8, "unit": "mIU/L"}}
    assert case["nk"]["peripheral"]["method"] == "old lab"  # the input is not changed


def test_merging_creates_sections_and_refuses_two_different_values_for_one_field() -> None:
    merged = merge_lab_values(
        {"case_id": "L1", "woman": {"age_years": 30}},
        [
            LabValue(1, "investigations.thyroid.tsh", {"value": 9.1, "unit": "mIU/L"}, "abnormal"),
            LabValue(2, "nk.peripheral.nk_percent", {"value": 20.0, "unit": "%"}),
        ],
    )
    assert merged["investigations"]["thyroid"] == {
        "tsh": {"value": 9.1, "unit": "mIU/L"},
        "tsh_interpretation": "abnormal",
    }
    with pytest.raises(InputError, match=re.escape("OBX 1 and OBX 2 both give nk.peripheral.nk_percent")):
        merge_lab_values(
            {},
            [
                LabValue(1, "nk.peripheral.nk_percent", {"value": 20.0, "unit": "%"}),
                LabValue(2, "nk.peripheral.nk_percent", {"value": 25.0, "unit": "%"}),
            ],
        )
