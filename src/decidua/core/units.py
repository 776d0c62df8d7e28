"""Units of the quantities a case may carry.

Every measured value in a case comes with an explicit unit. A unit is either converted exactly into the
quantity's canonical unit or rejected: nothing is guessed from the size of a number. Unit spellings follow
UCUM (https://ucum.org) where UCUM has one, plus the spellings labs print on their reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from decidua.core.errors import UnitError


class Quantity(StrEnum):
    """Kinds of measured quantity; each has one canonical unit."""

    PERCENT = "percent"  # a share, in % (of lymphocytes, of target cells, ...)
    CELLS_PER_UL = "cells_per_ul"  # absolute blood count
    UNK_PER_100_STROMAL = "unk_per_100_stromal"  # uterine NK cells per 100 stromal cells (= %)
    UNK_PER_MM2 = "unk_per_mm2"  # uterine NK cells per mm2 of endometrial stroma
    TSH = "tsh"  # thyroid-stimulating hormone, mIU/L


@dataclass(frozen=True, slots=True)
class UnitSpec:
    canonical: str
    aliases: tuple[tuple[str, float], ...]  # (spelling, factor to canonical)

    def spellings(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.aliases)


_MU = ("u", "µ", "μ")  # ASCII u, micro sign U+00B5, Greek mu U+03BC


def _micro(template: str, factor: float) -> tuple[tuple[str, float], ...]:
    return tuple((template.format(mu=m), factor) for m in _MU)


UNITS: dict[Quantity, UnitSpec] = {
    Quantity.PERCENT: UnitSpec("%", (("%", 1.0), ("percent", 1.0), ("fraction", 100.0))),
    Quantity.CELLS_PER_UL: UnitSpec(
        "cells/uL",
        _micro("cells/{mu}L", 1.0)
        + _micro("/{mu}L", 1.0)
        + _micro("{{cells}}/{mu}L", 1.0)
        + (("cells/mm3", 1.0), ("/mm3", 1.0), ("10^9/L", 1000.0), ("10*9/L", 1000.0), ("x10^9/L", 1000.0)),
    ),
    Quantity.UNK_PER_100_STROMAL: UnitSpec(
        "per 100 stromal cells",
        (("per 100 stromal cells", 1.0), ("/100 stromal cells", 1.0), ("%", 1.0), ("% of stromal cells", 1.0)),
    ),
    Quantity.UNK_PER_MM2: UnitSpec(
        "cells/mm2", (("cells/mm2", 1.0), ("/mm2", 1.0), ("cells/mm^2", 1.0), ("cells/mm²", 1.0))
    ),
    Quantity.TSH: UnitSpec(
        "mIU/L", (("mIU/L", 1.0), ("m[IU]/L", 1.0), *_micro("{mu}IU/mL", 1.0), *_micro("{mu}[IU]/mL", 1.0))
    ),
}


def to_canonical(value: float, unit: str, quantity: Quantity) -> float:
    """Convert ``value`` given in ``unit`` to the canonical unit of ``quantity``.

    Raises
    ------
    UnitError
        If ``unit`` is not a spelling accepted for ``quantity``.

    Examples
    --------
    >>> to_canonical(0.4, "10^9/L", Quantity.CELLS_PER_UL)
    400.0
    >>> to_canonical(12.0, "%", Quantity.PERCENT)
    12.0
    """
    spec = UNITS[quantity]
    key = unit.strip()
    for spelling, factor in spec.aliases:
        if key == spelling:
            return value * factor
    allowed = ", ".join(repr(s) for s in allowed_units(quantity))
    raise UnitError(f"unit {unit!r} is not allowed for {quantity.value}; allowed: {allowed}")


def allowed_units(quantity: Quantity) -> tuple[str, ...]:
    """Spellings accepted for ``quantity``, canonical first."""
    return UNITS[quantity].spellings()
