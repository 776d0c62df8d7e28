from __future__ import annotations

import pytest

from decidua.core.expr import And, Cmp, Col, IsIn, IsNull, Lit, Not, Or, Sum, When, columns, evaluate


@pytest.mark.parametrize(
    ("a", "b", "and_", "or_"),
    [
        (True, True, True, True),
        (True, False, False, True),
        (True, None, None, True),
        (False, None, False, None),
        (None, None, None, None),
    ],
)
def test_kleene_logic(a: bool | None, b: bool | None, and_: bool | None, or_: bool | None) -> None:
    row = {"a": a, "b": b}
    assert evaluate(And((Col("a"), Col("b"))), row) is and_
    assert evaluate(Or((Col("a"), Col("b"))), row) is or_
    assert evaluate(Or((Col("b"), Col("a"))), row) is or_


def test_missing_values_propagate_through_comparisons_and_sums() -> None:
    assert evaluate(Cmp(">", Col("x"), Lit(1)), {}) is None
    assert evaluate(Sum((Col("x"), Col("y"))), {"x": 1, "y": None}) is None
    assert evaluate(Sum((Col("x"), Col("y"))), {"x": 1, "y": 2}) == 3
    assert evaluate(Not(Col("x")), {"x": None}) is None
    assert evaluate(IsNull(Col("x")), {"x": None}) is True
    assert evaluate(IsIn(Col("x"), ("a",)), {"x": None}) is None
    assert evaluate(IsIn(Col("x"), ("a",)), {"x": "b"}) is False


def test_when_takes_otherwise_on_missing_condition() -> None:
    e = When(Col("c"), Lit("then"), Lit("else"))
    assert evaluate(e, {"c": None}) == "else"
    assert evaluate(e, {"c": False}) == "else"
    assert evaluate(e, {"c": True}) == "then"


def test_columns_lists_every_input() -> None:
    e = When(Cmp(">", Col("age"), Lit(35)), Sum((Col("a"), Col("b"))), IsIn(Col("k"), ("x",)))
    assert columns(e) == {"age", "a", "b", "k"}
