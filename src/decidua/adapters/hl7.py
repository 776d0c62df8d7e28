"""HL7 v2 laboratory results in: ORU^R01 messages (read with hl7apy), their OBX segments coded in LOINC.

Only results whose LOINC code decidua has confirmed are read (:data:`LOINC_TARGETS`; the README lists each code
with its source and the codes that could not be confirmed). For each OBX segment the reader says what it did:
the case field it sets and the value, or why it was not read (a code decidua does not read, a unit the unit model
does not know, an abnormal flag or coded value it cannot interpret, a result that is not final). Nothing is
guessed: an antibody result needs a coded answer (positive/negative, detected/not detected) or an abnormal flag
(N, or H/HH/A/AA); a TSH value keeps the laboratory's reading from its flag (N normal, H/L/HH/LL/A abnormal).

Segments may end in ``\\r`` (the standard), ``\\n`` or ``\\r\\n``; MLLP framing characters are removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from decidua.app.labs import LabImport, LabValue
from decidua.core.cells import WORDS
from decidua.core.errors import InputError, UnitError
from decidua.core.units import Quantity, to_canonical


@dataclass(frozen=True, slots=True)
class Target:
    """Where a LOINC-coded result goes in a case, and how its value is read."""

    path: str  # e.g. "nk.peripheral.nk_percent"
    kind: str  # "measurement" (value + unit), "antibody" (positive/negative), "tsh" (value + the lab's reading)
    quantity: Quantity | None = None
    name: str = ""  # LOINC long common name, as confirmed


LOINC_TARGETS: dict[str, Target] = {
    "107067-1": Target(
        "nk.peripheral.nk_percent",
        "measurement",
        Quantity.PERCENT,
        "CD19-CD3-CD56+ (NK)/Cells in Blood by Flow cytometry (FC)",
    ),
    "8112-5": Target(
        "nk.peripheral.nk_percent", "measurement", Quantity.PERCENT, "CD3-CD16+CD56+ (Natural killer) cells/100 cells"
    ),
    "9728-7": Target(
        "nk.peripheral.absolute_count",
        "measurement",
        Quantity.CELLS_PER_UL,
        "CD3-CD16+CD56+ (Natural killer) cells [#/volume] in Blood",
    ),
    "3016-3": Target(
        "investigations.thyroid.tsh", "tsh", Quantity.TSH, "Thyrotropin [Units/volume] in Serum or Plasma"
    ),
    "11579-0": Target(
        "investigations.thyroid.tsh",
        "tsh",
        Quantity.TSH,
        "Thyrotropin [Units/volume] in Serum or Plasma by Detection limit <= 0.05 mIU/L",
    ),
    "11580-8": Target(
        "investigations.thyroid.tsh",
        "tsh",
        Quantity.TSH,
        "Thyrotropin [Units/volume] in Serum or Plasma by Detection limit <= 0.005 mIU/L",
    ),
    "44448-9": Target(
        "investigations.antiphospholipid.anti_beta2_glycoprotein_i_igg",
        "antibody",
        name="Beta 2 glycoprotein 1 IgG Ab [Units/volume] in Serum or Plasma",
    ),
    "44449-7": Target(
        "investigations.antiphospholipid.anti_beta2_glycoprotein_i_igm",
        "antibody",
        name="Beta 2 glycoprotein 1 IgM Ab [Units/volume] in Serum or Plasma",
    ),
    "8099-4": Target(
        "investigations.thyroid.tpo_antibodies", "antibody", name="Thyroperoxidase Ab [Units/volume] in Serum or Plasma"
    ),
    "75514-0": Target(
        "investigations.antiphospholipid.lupus_anticoagulant",
        "antibody",
        name="Lupus anticoagulant two screening tests W Reflex [interpretation]",
    ),
}
MAX_MESSAGE = 1_000_000  # characters: a result message is a few kilobytes
MAX_OBX = 500
NOT_CONFIRMED = {
    "3181-7": "anticardiolipin IgG",
    "3182-5": "anticardiolipin IgM",
    "3284-9": "lupus anticoagulant presence",
}
_POSITIVE_FLAGS = frozenset({"H", "HH", "A", "AA", ">"})
_TSH_FLAGS = {"N": "normal", "H": "abnormal", "HH": "abnormal", "L": "abnormal", "LL": "abnormal", "A": "abnormal"}
# A coded or text answer is read only from these words, in the identifier or the text of the answer; the two must
# agree. No digits, letters or signs: "1" may be a titre, "N" a code of any table.
_ANSWERS = {
    "pos": True,
    "positive": True,
    "detected": True,
    "reactive": True,
    "neg": False,
    "negative": False,
    "not detected": False,
    "nonreactive": False,
    "non-reactive": False,
}
_ESCAPES = {"\\F\\": "|", "\\S\\": "^", "\\T\\": "&", "\\R\\": "~", "\\E\\": "\\"}
_FINAL = {"F": "final", "C": "corrected"}


@dataclass(frozen=True, slots=True)
class ObxResult:
    """What one OBX segment gave: the case field and value set, or why it was not read."""

    segment: int  # the OBX set number as counted in the message, from 1
    code: str  # OBX-3 identifier (and its coding system)
    text: str  # OBX-3 text
    path: str | None = None
    value: Any = None  # JSON-ready: a measurement {"value", "unit"} or "positive"/"negative"
    reading: str | None = None  # TSH: the laboratory's reading from its flag (normal/abnormal)
    problem: str | None = None  # why it was not read
    date: str | None = None  # when the specimen was observed (OBX-14, else OBR-7), ISO

    def to_record(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "code": self.code,
            "text": self.text,
            "path": self.path,
            "value": self.value,
            "reading": self.reading,
            "problem": self.problem,
            "date": self.date,
        }


@dataclass(frozen=True, slots=True)
class LabMessage:
    control_id: str
    patient_ids: tuple[str, ...]  # PID-3 identifiers, as the laboratory sends them
    results: tuple[ObxResult, ...] = field(default_factory=tuple)

    @property
    def read(self) -> tuple[ObxResult, ...]:
        return tuple(r for r in self.results if r.problem is None)

    @property
    def problems(self) -> tuple[ObxResult, ...]:
        return tuple(r for r in self.results if r.problem is not None)

    def to_import(self) -> LabImport:
        """What the application's lab-import use case takes: the values read, and why each other segment was not."""
        return LabImport(
            tuple(LabValue(r.segment, r.path, r.value, r.reading, r.date) for r in self.read if r.path),
            tuple(f"OBX {r.segment} {r.code}: {r.problem}" for r in self.problems),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "control_id": self.control_id,
            "patient_ids": list(self.patient_ids),
            "results": [r.to_record() for r in self.results],
        }


def _components(er7: str) -> list[str]:
    return er7.split("^")


# HL7 table 0211 (alternate character sets), as MSH-18 names them -> Python codec. HL7: "ASCII ... is the default
# if this field is omitted"; decidua also accepts UTF-8 then, since ASCII is a subset of it and senders use it.
CHARACTER_SETS = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
}


def decode_message(raw: bytes, source: str) -> str:
    """The message's text, decoded by the character set its MSH-18 names (none: UTF-8, which includes ASCII).

    Raises
    ------
    InputError
        MSH-18 names a character set decidua does not read, or the bytes are not in the one named.
    """
    start = raw.find(b"MSH")
    header = raw[start:].split(b"\r", 1)[0].split(b"\n", 1)[0] if start >= 0 else b""
    fields = header.split(header[3:4]) if len(header) > 3 else []
    named = fields[17].split(header[5:6] or b"~")[0].decode("ascii", "replace").strip() if len(fields) > 17 else ""
    if named and named not in CHARACTER_SETS:
        allowed = ", ".join(CHARACTER_SETS)
        raise InputError(f"{source}: MSH-18 names character set {named!r}; decidua reads {allowed}")
    codec = CHARACTER_SETS.get(named, "utf-8")
    try:
        return raw.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        said = f"MSH-18 says {named!r}" if named else "MSH-18 names no character set (UTF-8 or ASCII was read)"
        raise InputError(
            f"{source}: byte {exc.start} is not {codec}: {said}; set MSH-18 to the message's character set "
            "(e.g. 8859/1 for Latin-1)"
        ) from None


def read_oru(text: str, source: str) -> LabMessage:
    """The results of one ORU^R01 message, OBX by OBX.

    Raises
    ------
    InputError
        For a message that is not HL7 v2 (naming what hl7apy said), not an ORU^R01, or with no OBX segment.
    """
    message = text.lstrip("\ufeff").strip().strip("\x0b\x1c").strip()
    message = re.sub(r"\r\n|\n|\r", "\r", message)
    if not message.startswith("MSH"):
        raise InputError(f"{source}: not an HL7 v2 message (it must start with an MSH segment)")
    if len(message) > MAX_MESSAGE:
        raise InputError(f"{source}: {len(message):,} characters; a result message up to {MAX_MESSAGE:,} is read")
    segments_named = [seg[:3] for seg in message.split("\r")]
    if segments_named.count("MSH") > 1:
        raise InputError(f"{source}: {segments_named.count('MSH')} messages (MSH segments); give one message per file")
    if segments_named.count("PID") > 1:
        raise InputError(
            f"{source}: results of {segments_named.count('PID')} patients (PID segments); give one patient's message"
        )
    try:
        parsed = parse_message(message, find_groups=False)
    except HL7apyException as exc:
        raise InputError(f"{source}: not a readable HL7 v2 message: {type(exc).__name__}: {exc}") from None
    kind = parsed.msh.msh_9.to_er7()
    if not kind.startswith("ORU^R01"):
        raise InputError(f"{source}: MSH-9 is {kind!r}; decidua reads ORU^R01 result messages")
    ids = tuple(rep.to_er7().split("^")[0] for rep in parsed.pid.pid_3) if parsed.pid else ()
    segments = list(parsed.obx)
    if not segments:
        raise InputError(f"{source}: no OBX segment (no results)")
    if len(segments) > MAX_OBX:
        raise InputError(f"{source}: {len(segments)} OBX segments; a result message of up to {MAX_OBX} is read")
    requested = _date(parsed.obr.obr_7.to_er7()) if parsed.obr else None
    results = tuple(_obx(n, obx, requested) for n, obx in enumerate(segments, 1))
    return LabMessage(parsed.msh.msh_10.to_er7(), ids, results)


def lab_import(text: str, source: str = "the message") -> LabImport:
    """One ORU^R01 message as the application's lab-import use case takes it (:class:`decidua.app.labs.LabImport`)."""
    return read_oru(text, source).to_import()


def _date(ts: str) -> str | None:
    """An HL7 timestamp's date (YYYY-MM-DD), or None."""
    digits = ts.split("^")[0][:8]
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if re.fullmatch(r"\d{8}", digits) else None


def _unescape(text: str) -> str:
    for escaped, plain in _ESCAPES.items():
        text = text.replace(escaped, plain)
    return text


def _obx(n: int, obx: Any, requested: str | None) -> ObxResult:
    ident = _components(obx.obx_3.to_er7())
    code, text = ident[0], ident[1] if len(ident) > 1 else ""
    system = ident[2] if len(ident) > 2 else ""
    shown = f"{code} ({system})" if system else code

    def refused(problem: str) -> ObxResult:
        return ObxResult(n, shown, text, problem=problem)

    if system and system not in ("LN", "LOINC"):
        return refused(f"coded in {system!r}, not LOINC: decidua reads LOINC-coded results only")
    if code in NOT_CONFIRMED:
        return refused(f"LOINC {code} ({NOT_CONFIRMED[code]}) is not read: decidua could not confirm it (see README)")
    target = LOINC_TARGETS.get(code)
    if target is None:
        return refused(f"LOINC {code} is not a result decidua reads")
    status = obx.obx_11.to_er7()
    if status not in _FINAL:
        return refused(f"result status {status or 'missing'!r}: only final (F) or corrected (C) results are read")
    value = obx.obx_5.to_er7()
    unit = _unescape(_components(obx.obx_6.to_er7())[0])
    flag = obx.obx_8.to_er7().split("^")[0]
    kind = obx.obx_2.to_er7()
    date = _date(obx.obx_14.to_er7()) or requested
    if target.kind == "antibody":
        answer = _answer(value, kind, flag)
        if isinstance(answer, str):
            return refused(answer)
        return ObxResult(n, shown, text, target.path, "positive" if answer else "negative", date=date)
    if kind == "SN":  # structured numeric: comparator^number[^separator^number]
        parts = [*_components(value), "", "", "", ""][:4]
        if parts[0] not in ("", "=") or parts[2] or parts[3]:
            return refused(f"value {value!r}: a comparator or range cannot be stored as a value")
        value = parts[1]
    elif kind != "NM":
        return refused(f"value type {kind!r}: a number (NM or SN) was expected for {target.path}")
    try:
        number = float(value)
    except ValueError:
        return refused(f"value {value!r} is not a number (a comparator such as '<0.01' cannot be stored as a value)")
    if number != number or number in (float("inf"), float("-inf")):
        return refused(f"value {value!r} is not a finite number")
    assert target.quantity is not None
    try:
        to_canonical(number, unit, target.quantity)
    except UnitError as exc:
        return refused(f"unit {unit!r}: {exc}")
    measured = {"value": number, "unit": unit}
    if target.kind == "tsh":
        if flag and flag not in _TSH_FLAGS:
            return refused(f"abnormal flag {flag!r}: expected N, H, HH, L, LL or A")
        return ObxResult(n, shown, text, target.path, measured, _TSH_FLAGS.get(flag), date=date)
    return ObxResult(n, shown, text, target.path, measured, date=date)


def _answer(value: str, kind: str, flag: str) -> bool | str:
    """Positive (True), negative (False), or why it cannot be told.

    A coded answer is read from its identifier and text: at least one must be an answer word (:data:`_ANSWERS`),
    and neither may say otherwise, not even as a yes/no letter or digit (``N^Positive`` is refused).
    """
    if kind in ("CWE", "CE", "CNE", "CF", "ST", "TX", "FT"):
        coded = kind in ("CWE", "CE", "CNE", "CF")
        parts = _components(_unescape(value))[:2] if coded else [_unescape(value)]
        words = [p.strip().lower() for p in parts if p.strip()]
        answers = [_ANSWERS[w] for w in words if w in _ANSWERS]
        meanings = set(answers) | {WORDS[w] for w in words if w in WORDS and WORDS[w] is not None}
        if not answers:
            return f"answer {value!r}: expected positive/negative or detected/not detected"
        if len(meanings) > 1:
            return f"answer {value!r}: its code and text disagree"
        return answers[0]
    if flag == "N":
        return False
    if flag in _POSITIVE_FLAGS:
        return True
    if not flag:
        return f"a value ({value!r}) without an abnormal flag: positive or negative cannot be told"
    return f"abnormal flag {flag!r}: expected N (negative) or H, HH, A, AA (positive)"


__all__ = [
    "CHARACTER_SETS",
    "LOINC_TARGETS",
    "NOT_CONFIRMED",
    "LabMessage",
    "ObxResult",
    "Target",
    "decode_message",
    "lab_import",
    "read_oru",
]
