"""decidua: decision support for NK-cell and alloimmune causes of recurrent pregnancy loss.

The public API, for programs that use decidua as a library::

    >>> from decidua import assess, load_kb, read_case
    >>> from pathlib import Path
    >>> result = assess(read_case(Path("examples/01-rpl-age36-nk-high.yaml")), load_kb())
    >>> result.finding("nk.peripheral.clinic").status is Status.FLAGGED
    True

Everything else is internal and may change between versions.
"""

from decidua.app.casefile import parse_case, read_case
from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, DeciduaError, InputError, KnowledgeBaseError
from decidua.core.findings import Assessment, Finding, Pathway, Status
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase, load_kb

__version__ = "0.1.0"

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
