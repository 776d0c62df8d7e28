"""What every CLI command shares: exit codes and the mapping from errors to them.

Exit codes (documented in the README):

* 0: success
* 1: an unexpected internal error (a bug: please report it)
* 2: a usage or input error (bad option, unreadable or invalid file, unknown unit or allele); nothing is written
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer

from decidua.core.errors import DeciduaError, InputError, KnowledgeBaseError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2


class _LazyConsole:
    """A rich ``Console`` made when first used in an invocation: rich loads only for a command that prints through
    it (not for ``--version``, ``--json`` or ``--help``'s import of every command), and each invocation - one per
    process, or one per ``CliRunner.invoke`` in the tests - reads the terminal's settings (``COLUMNS``,
    ``NO_COLOR``) from its own environment."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def reset(self) -> None:
        self._console = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    # ``with console:`` (rich's Live and Progress): special methods are looked up on the class, not through
    # __getattr__
    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._made().__exit__(*exc)


# Text is printed as it is: no markup or emoji codes read in it (an allele code "C*07:AB" must not become an
# emoji, a "[rule, version]" must not vanish as a markup tag); the few styled words pass markup=True and escape
# what they interpolate.
_err = _LazyConsole(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
_out = _LazyConsole(highlight=False, markup=False, emoji=False)
err_console = cast("Console", _err)
out_console = cast("Console", _out)


_plain = [False]  # set by the root command's --plain (or DECIDUA_PLAIN=1) on every invocation


def set_plain(on: bool) -> None:
    """Called by the root command on every invocation: ``--plain``, and fresh consoles for this invocation."""
    _plain[0] = on
    _err.reset()
    _out.reset()


def _cell(value: object) -> str:
    from rich.text import Text

    text = value.plain if isinstance(value, Text) else str(value)
    return " ".join(text.split())  # one line per row: tabs and line breaks inside a cell become spaces


def print_table(table: Table, console: Console = out_console) -> None:
    """A table: for people, with every cell folded onto more lines rather than cut (an allele, a rule id or a
    column name is typed from it); with ``--plain``, tab-separated lines (``# title``, the header, one line per
    row) for grep, cut and spreadsheets."""
    if not _plain[0]:
        for column in table.columns:
            column.overflow = "fold"
        console.print(table)
        return
    lines = [f"# {_cell(table.title)}"] if table.title else []
    if table.show_header:
        lines.append("\t".join(_cell(c.header) for c in table.columns))
    lines += ["\t".join(_cell(v) for v in row) for row in zip(*(c.cells for c in table.columns), strict=True)]
    console.file.write("\n".join(lines) + "\n")


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``message`` to standard error and exit with ``code`` (no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, emoji=False)
    raise typer.Exit(code)


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn decidua's input and knowledge-base errors into exit code 2 with one clear message."""
    try:
        yield
    except (InputError, KnowledgeBaseError) as exc:
        fail(_escape(str(exc)))
    except DeciduaError as exc:  # pragma: no cover - every DeciduaError raised today is one of the above
        fail(_escape(str(exc)), EXIT_INTERNAL)
    except ModuleNotFoundError as exc:  # an optional dependency: name the extra that installs it
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        fail(f"this needs {exc.name}, in decidua's '{extra}' extra: .venv/bin/pip install -e '.\\[{extra}]'")


EXTRAS = {"scipy": "research", "statsmodels": "research", "dask": "cluster", "distributed": "cluster"}
"""Optional dependencies a command may need, and the extra that installs each (pyproject.toml)."""


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def escape(text: str) -> str:
    """``rich.markup.escape`` (rich loaded when text is printed with markup, not when a command module is)."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def print_json(data: object) -> None:
    """Write ``data`` as indented JSON to standard output (plain, no colour, for pipes)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_case_file(out: Path, data: dict[str, Any], inputs: Iterable[Path], source: str = "the case") -> None:
    """Write case data as a YAML case file, atomically, once it reads back as a valid case (else
    :class:`~decidua.core.errors.CaseInvalid`, nothing written). An output that is one of ``inputs`` is refused."""
    import yaml

    from decidua.adapters.batchio import atomic_path
    from decidua.app.casefile import parse_case

    parse_case(data, source)
    with atomic_path(out, inputs=inputs) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def split_csv(value: str | None, *, spaces: bool = True) -> list[str]:
    """A list given as one value, separated by commas or (``spaces``) spaces: ``"a, b,,c d"`` ->
    ``["a", "b", "c", "d"]``; ``None`` -> ``[]``. Lists of column names or conditions split on commas only."""
    if not value:
        return []
    if not spaces:
        return [part.strip() for part in value.split(",") if part.strip()]
    return [part for part in value.replace(",", " ").split() if part]


def refuse_extra(extra: list[str] | None, option: str) -> None:
    """A command's stray words (``--present 2DL1 2DL2`` leaves ``2DL2`` over): exit 2 saying how to give a list."""
    if extra:
        fail(
            f"unexpected {' '.join(extra)!r}: give a list as one value, separated by commas or spaces in quotes, "
            f"e.g. {option} 2DL1,2DL3 or {option} '2DL1 2DL3'"
        )


Handler = Callable[..., None]
