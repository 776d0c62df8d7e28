"""How a cell of a table (CSV, Excel, a batch column, a KIR typing sheet) says yes or no, or present, absent or
not tested: one vocabulary for every reader, case- and space-insensitive.

Two vocabularies, because the same letters mean different things on different sheets: a yes/no column (an
antibody, a condition) reads only unambiguous words, so ``A`` (often "abnormal" on a lab report) and ``ND`` (often
"not detected") are refused there rather than read as "absent" or "not done"; a KIR gene column also reads
``present``/``absent``, ``P``/``A`` and the not-tested words.

>>> read_cell(" Pos "), read_gene_cell("absent"), read_gene_cell("N/A"), read_cell(None)
(True, False, None, None)
"""

from __future__ import annotations

YES = frozenset({"1", "+", "true", "t", "yes", "y", "positive", "pos"})
NO = frozenset({"0", "-", "false", "f", "no", "n", "negative", "neg"})
PRESENT = YES | {"present", "p"}
ABSENT = NO | {"absent", "a"}
NOT_TESTED = frozenset({"", "nt", "nd", "na", "n/a", "not tested", "untested", "not done"})
CELL_HELP = "yes: 1, +, true, t, yes, y, positive, pos; no: 0, -, false, f, no, n, negative, neg"
CELL_HELP_SHORT = "yes or no (1/0, true/false, positive/negative)"
GENE_CELL_HELP = (
    "present: 1, +, P, pos, positive, present, yes, y, true, t; absent: 0, -, A, neg, negative, absent, no, n, "
    "false, f; not tested: blank, NT, ND, NA, N/A, not tested, untested, not done"
)
GENE_CELL_HELP_SHORT = "present or absent (1/0, P/A, yes/no; blank, NT, ND: not tested)"
WORDS: dict[str, bool | None] = {**dict.fromkeys(YES, True), **dict.fromkeys(NO, False)}
GENE_WORDS: dict[str, bool | None] = {
    **dict.fromkeys(PRESENT, True),
    **dict.fromkeys(ABSENT, False),
    **dict.fromkeys(NOT_TESTED, None),
}


def read_cell(cell: object) -> bool | None:
    """``True`` (yes, positive) or ``False`` (no, negative); ``None`` for an empty cell.

    Raises
    ------
    ValueError
        For anything else (the message lists what is allowed).
    """
    return _read(cell, WORDS, CELL_HELP)


def read_gene_cell(cell: object) -> bool | None:
    """``True`` (present), ``False`` (absent) or ``None`` (not tested, blank) for a gene's cell.

    Raises
    ------
    ValueError
        For anything else (the message lists what is allowed).
    """
    return _read(cell, GENE_WORDS, GENE_CELL_HELP)


def _read(cell: object, words: dict[str, bool | None], allowed: str) -> bool | None:
    if cell is None:
        return None
    key = str(cell).strip().lower()
    if key not in words:
        raise ValueError(f"cannot read {cell!r}; {allowed}")
    return words[key]
