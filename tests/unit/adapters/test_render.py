"""The terminal text of an assessment and of the knowledge base: nothing is cut at any width."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from decidua.entrypoints.cli.main import app

from conftest import EXAMPLES

BOX = re.compile(r"[\u2500-\u257f\s]")  # the scope panel's frame and all white space


def printed(args: list[str], width: int) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(width), "DECIDUA_PLAIN": ""})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [["assess", str(EXAMPLES / "09-egg-donation-donor-ranking.yaml")], ["kb", "show"]],
    ids=["assess", "kb show"],
)
@pytest.mark.parametrize("width", [12, 20, 23, 30, 60])
def test_every_character_is_printed_at_any_width(args: list[str], width: int) -> None:
    """Narrow consoles fold lines (a paragraph indented by 4 is wrapped at 20 columns at least, then folded again to
    the console's width); the characters are those of a wide console, in order."""
    narrow, wide = printed(args, width), printed(args, 200)
    assert max(map(len, narrow.splitlines())) <= width
    assert BOX.sub("", narrow) == BOX.sub("", wide)
