"""Errors raised by decidua.

The hierarchy, drawn once::

    DeciduaError
    + InputError (ValueError)          bad user input; the CLI exits with code 2
      - InputInvalid                   input with one or more problems, each naming its field
        - CaseInvalid                  a case file that fails validation
      - UnitError                      a unit that is unknown or not allowed for a quantity
      - UnknownAllele                  an HLA/KIR name not in the reference tables
      - NomenclatureError              a malformed HLA/KIR name or GL String
    + KnowledgeBaseError               a knowledge-base file (shipped or override) is invalid
      - MissingCitation                a rule or statement that cites no source

Library code raises these; only adapters decide exit codes and HTTP statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


class DeciduaError(Exception):
    """Base class of every error decidua raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where, what was given, what is allowed."""

    path: str
    value: object
    allowed: str

    def to_string(self) -> str:
        return f"{self.path}: got {shown(self.value)}; {self.allowed}"


MAX_SHOWN = 120  # characters of a rejected value quoted back: enough to recognise it, never a whole document


def shown(value: object) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN` characters (a pasted document or a 5000-digit number)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 1]}…"


class InputError(DeciduaError, ValueError):
    """Input that decidua cannot accept."""


class InputInvalid(InputError):
    """Input (a form, a request) with one or more problems; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], source: str = "input") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = [f"{source} is invalid ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p.to_string()}" for p in self.problems]
        super().__init__("\n".join(lines))


class CaseInvalid(InputInvalid):
    """A case that fails validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], source: str = "case") -> None:
        super().__init__(problems, source)


class UnitError(InputError):
    """A unit that is unknown, or not allowed for the quantity it is given with."""


class NomenclatureError(InputError):
    """A malformed HLA or KIR name, or malformed GL String."""


class MacCode(NomenclatureError):
    """An NMDP multiple allele code (``C*07:AB``): it stands for several alleles and needs NMDP's code table."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class UnknownAllele(InputError):
    """A well-formed name that is not in the reference release in use."""


class KnowledgeBaseError(DeciduaError):
    """A knowledge-base file that cannot be used."""


class MissingCitation(KnowledgeBaseError):
    """A rule or statement without a citation."""
