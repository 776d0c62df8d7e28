from __future__ import annotations

import pytest

from decidua.core.errors import UnitError
from decidua.core.units import Quantity, allowed_units, to_canonical


@pytest.mark.parametrize(
    ("value", "unit", "quantity", "expected"),
    [
        (0.31, "10^9/L", Quantity.CELLS_PER_UL, 310.0),
        (310, "cells/µL", Quantity.CELLS_PER_UL, 310.0),
        (310, "/uL", Quantity.CELLS_PER_UL, 310.0),
        (0.12, "fraction", Quantity.PERCENT, 12.0),
        (2.1, "µIU/mL", Quantity.TSH, 2.1),
        (3.0, "per 100 stromal cells", Quantity.UNK_PER_100_STROMAL, 3.0),
    ],
)
def test_units_convert_exactly(value: float, unit: str, quantity: Quantity, expected: float) -> None:
    assert to_canonical(value, unit, quantity) == pytest.approx(expected)


def test_unknown_unit_is_rejected_with_the_allowed_ones() -> None:
    with pytest.raises(UnitError, match=r"'cells/HPF' is not allowed for unk_per_mm2; allowed: 'cells/mm2'"):
        to_canonical(5, "cells/HPF", Quantity.UNK_PER_MM2)


def test_per_mm2_is_never_converted_to_per_100_stromal_cells() -> None:
    assert "cells/mm2" not in allowed_units(Quantity.UNK_PER_100_STROMAL)
    assert "%" not in allowed_units(Quantity.UNK_PER_MM2)
