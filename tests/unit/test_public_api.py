"""The names a program may import from ``decidua`` (as httpx guards its own): sorted, all present, all public."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

import decidua


def test_the_public_api_is_what_all_lists() -> None:
    assert decidua.__all__ == sorted(decidua.__all__)
    for name in decidua.__all__:
        assert hasattr(decidua, name), name
    # the subpackages are attributes once imported; every other public name is in __all__
    public = {n for n, v in vars(decidua).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(decidua.__all__) - {"__version__"}


def test_the_public_api_assesses_a_case() -> None:
    case = decidua.parse_case({"case_id": "API-1", "woman": {"age_years": 30}, "pregnancies": []})
    result = decidua.assess(case, decidua.load_kb())
    assert isinstance(result, decidua.Assessment)
    assert result.pathway.rpl is False


def test_importing_decidua_loads_nothing_until_a_name_is_used() -> None:
    """``import decidua`` runs before every ``decidua.*`` import (the command line's included): it loads no module
    of decidua and no library; a public name loads its module when first used."""
    probe = (
        "import json, sys; import decidua; before = sorted(sys.modules); from decidua import assess, load_kb; "
        "print(json.dumps([before, sorted(sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after = json.loads(done.stdout)
    assert [m for m in before if m.startswith("decidua.")] == []
    assert not {m.split(".")[0] for m in before} & {"pydantic", "yaml", "polars", "rich", "typer"}
    assert {"decidua.engines.assess", "decidua.knowledge.loader"} <= set(after)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'assesss'"):
        decidua.assesss  # noqa: B018  (reading the misspelt name is the test)
    assert set(decidua.__all__) <= set(dir(decidua))
