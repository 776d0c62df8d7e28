"""NMDP multiple allele codes (MAC): reading NMDP's code table and expanding the codes in a GL String.

A MAC (``A*01:AB``) stands for several alleles. NMDP publishes the table at https://hml.nmdp.org/mac/files/ as
``numer.v3.txt`` (in ``numer.v3.zip``) and ``alpha.v3.txt``: three header lines (``"LAST UPDATED: ..."``, the
column names, a blank line), then one code per line, tab-separated: the code and its expansion. ``alpha.v3.txt``
has a first column holding ``*`` for allele-specific codes. A *generic* code lists second fields and goes with
any first field (``AB`` = ``01/02``: ``A*01:AB`` -> ``A*01:01/A*01:02``); an *allele-specific* code lists
two-field names and replaces both fields (``BYHR`` = ``25:01/26:01``: ``A*25:BYHR`` -> ``A*25:01/A*26:01``), and
is valid only with the most common first field of its expansion (the lowest on a tie). This is how py-ard
(NMDP's own library, ``handlers/mac_handler.py`` and ``mac.feature``) expands them; decidua reads the table the
user gives and never downloads it. Names of the expansion that the release does not hold are dropped, as py-ard
does, but said.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from decidua.core.errors import InputError, MacCode, NomenclatureError
from decidua.immunogenetics.glstring import parse_gl_string
from decidua.immunogenetics.hla import parse_name
from decidua.immunogenetics.ligands import alleles_under, ligand_table

_CODE = re.compile(r"^[A-Z]{2,5}$")
_EXPANSION = re.compile(r"^\d{2,3}(?::\d{2,3})?[NLSQCA]?(?:/\d{2,3}(?::\d{2,3})?[NLSQCA]?)*$")
_NAME = re.compile(r"^(?:HLA-)?(?P<locus>[A-Z][A-Z0-9]*)\*(?P<first>\d{2,3}):(?P<code>[A-Z]{2,5})$")


@dataclass(frozen=True, slots=True)
class MacTable:
    source: str  # the file it was read from
    updated: str  # its "LAST UPDATED" line, as written
    codes: dict[str, tuple[str, ...]]  # code -> second fields (generic) or two-field names (allele-specific)


def read_mac_table(path: Path) -> MacTable:
    """Read NMDP's ``numer.v3.txt`` or ``alpha.v3.txt``.

    Raises
    ------
    InputError
        Unreadable, no code lines, or a line that is neither a header nor ``[*<TAB>]CODE<TAB>EXPANSION``
        (the message names the line).
    """
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--mac-file {path}: cannot read: {exc}") from None
    lines = text.splitlines()
    updated = next((line.strip().strip('"') for line in lines[:3] if "UPDATED" in line.upper()), "")
    codes: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(lines, 1):
        parts = [p.strip() for p in line.split("\t")]
        if not line.strip() or (number <= 3 and (parts[-1].upper() == "SUBTYPE" or "UPDATED" in line.upper())):
            continue
        if len(parts) == 3 and parts[0] in ("", "*"):
            parts = parts[1:]
        if len(parts) != 2 or not _CODE.match(parts[0]) or not _EXPANSION.match(parts[1]):
            raise InputError(
                f"--mac-file {path} line {number}: {line[:60]!r} is not an NMDP allele code line "
                "(expected CODE<TAB>EXPANSION, e.g. AB<TAB>01/02, as in numer.v3.txt)"
            )
        expansion = tuple(parts[1].split("/"))
        if codes.get(parts[0], expansion) != expansion:
            raise InputError(
                f"--mac-file {path} line {number}: code {parts[0]} again, with another expansion "
                f"({'/'.join(codes[parts[0]])} and {parts[1]}); give NMDP's file as published"
            )
        codes[parts[0]] = expansion
    if not codes:
        raise InputError(f"--mac-file {path}: no allele codes (expected NMDP's numer.v3.txt or alpha.v3.txt)")
    return MacTable(str(path), updated, codes)


def expand_name(text: str, table: MacTable) -> tuple[list[str], list[str]]:
    """One MAC -> (the release's alleles it stands for, notes on what was dropped).

    Raises
    ------
    MacCode
        The code is not in the table, or an allele-specific code is given with another first field.
    NomenclatureError
        Not a MAC.
    """
    m = _NAME.match(text.strip().upper())
    if m is None:
        raise NomenclatureError(f"{text!r} is not an NMDP allele code (e.g. A*01:AB)")
    locus, first, code = m["locus"], m["first"], m["code"]
    expansion = table.codes.get(code)
    if expansion is None:
        raise MacCode(f"{text!r}: code {code} is not in {table.source}", text)
    if any(":" in e for e in expansion):
        counts = Counter(e.split(":")[0] for e in expansion)
        most = max(counts.values())
        expected = min((f for f, n in counts.items() if n == most), key=int)
        if first != expected:
            raise MacCode(
                f"{text!r}: {code} is an allele-specific code ({'/'.join(expansion)}); it is written with "
                f"first field {expected}",
                text,
            )
        names = [f"{locus}*{e}" for e in expansion]
    else:
        names = [f"{locus}*{first}:{e}" for e in expansion]
    table_ = ligand_table()
    kept = [n for n in names if alleles_under(parse_name(n), table_)[0]]
    dropped = [n for n in names if n not in kept]
    notes = [f"{text}: {', '.join(dropped)} not in {table_.release} (left out)"] if dropped else []
    if not kept:
        raise MacCode(f"{text!r}: none of its alleles ({'/'.join(names)}) is in {table_.release}", text)
    return kept, notes


def expand_macs(text: str, table: MacTable) -> tuple[str, list[str]]:
    """A GL String with every MAC replaced by its alleles (an allele list); other names unchanged.

    Examples
    --------
    >>> t = MacTable("numer.v3.txt", "", {"AB": ("01", "02")})
    >>> expand_macs("C*07:AB+C*06:02", t)
    ('C*07:01/C*07:02+C*06:02', [])
    """
    notes: list[str] = []

    def one(name: str) -> list[str]:
        if _NAME.match(name.strip().upper()) is None:
            return [name]
        names, why = expand_name(name, table)
        notes.extend(why)
        return names

    return parse_gl_string(text, "hla").map_names(one), notes
