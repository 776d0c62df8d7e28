"""The names a program may import from ``decidua`` (as httpx guards its own): sorted, all present, all public."""

from __future__ import annotations

import types

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
