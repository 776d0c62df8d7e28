"""decidua: decision support for NK-cell and alloimmune causes of recurrent pregnancy loss.

The public API, for programs that use decidua as a library::

    >>> from decidua import assess, load_kb, read_case
    >>> from pathlib import Path
    >>> result = assess(read_case(Path("examples/01-rpl-age36-nk-high.yaml")), load_kb())
    >>> result.finding("nk.peripheral.clinic").status is Status.FLAGGED
    True

Everything else is internal and may change between versions.

The names are loaded when first used (``from decidua import assess`` imports the engine then), so that
``import decidua`` - which every ``decidua.*`` import runs first, the command line's included - costs nothing.
"""

import importlib
import typing

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first use of the name, then kept as an attribute)
_EXPORTS = {
    "Assessment": "decidua.core.findings",
    "Case": "decidua.core.case",
    "CaseInvalid": "decidua.core.errors",
    "DeciduaError": "decidua.core.errors",
    "Finding": "decidua.core.findings",
    "InputError": "decidua.core.errors",
    "KnowledgeBase": "decidua.knowledge.loader",
    "KnowledgeBaseError": "decidua.core.errors",
    "Pathway": "decidua.core.findings",
    "Status": "decidua.core.findings",
    "assess": "decidua.engines.assess",
    "load_kb": "decidua.knowledge.loader",
    "parse_case": "decidua.app.casefile",
    "read_case": "decidua.app.casefile",
}

if typing.TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ below
    from decidua.app.casefile import parse_case, read_case
    from decidua.core.case import Case
    from decidua.core.errors import CaseInvalid, DeciduaError, InputError, KnowledgeBaseError
    from decidua.core.findings import Assessment, Finding, Pathway, Status
    from decidua.engines.assess import assess
    from decidua.knowledge.loader import KnowledgeBase, load_kb

__all__ = [
    "Assessment",
    "Case",
    "CaseInvalid",
    "DeciduaError",
    "Finding",
    "InputError",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Pathway",
    "Status",
    "__version__",
    "assess",
    "load_kb",
    "parse_case",
    "read_case",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'decidua' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
