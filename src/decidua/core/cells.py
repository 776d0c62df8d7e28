"""How a cell of a table (CSV, Excel, a batch column, a KIR typing sheet) says yes, no or not tested: one
vocabulary for every reader, case- and space-insensitive.

>>> read_cell(" Pos "), read_cell("absent"), read_cell("N/A"), read_cell(None)
(True, False, None, None)
"""

from __future__ import annotations

YES = frozenset({"1", "+", "true", "t", "yes", "y", "positive", "pos", "present", "p"})
NO = frozenset({"0", "-", "false", "f", "no", "n", "negative", "neg", "absent", "a"})
NOT_TESTED = frozenset({"", "nt", "nd", "na", "n/a", "not tested", "untested", "not done"})
CELL_HELP = (
    "yes: 1, +, true, t, yes, y, positive, pos, present, P; no: 0, -, false, f, no, n, negative, neg, absent, A; "
    "not tested: blank, NT, ND, NA, N/A, not tested, untested, not done"
)
CELL_HELP_SHORT = "yes or no (1/0, true/false, positive/negative, present/absent; blank, NT, ND: not tested)"
WORDS: dict[str, bool | None] = {
    **dict.fromkeys(YES, True),
    **dict.fromkeys(NO, False),
    **dict.fromkeys(NOT_TESTED, None),
}


def read_cell(cell: object) -> bool | None:
    """``True`` (yes, present, positive), ``False`` (no, absent, negative) or ``None`` (not tested, blank).

    Raises
    ------
    ValueError
        For anything else (the message lists what is allowed).
    """
    if cell is None:
        return None
    key = str(cell).strip().lower()
    if key not in WORDS:
        raise ValueError(f"cannot read {cell!r}; {CELL_HELP}")
    return WORDS[key]
