"""The ``decidua`` command line.

Every command and group of commands lives in a module of its own (``entrypoints/cli/<module>.py``), named in
:data:`COMMANDS` and imported when the command runs - or when ``decidua --help`` lists the commands with their
help. ``decidua assess`` imports the assess module alone, not those of ``batch``, ``serve`` or ``users`` and the
libraries they need (start-up time: see ``benchmarks/startup.py``). The command tree is the one Typer builds from
the same functions and sub-applications (``app.command(...)``, ``app.add_typer(...)``); only the moment of import
differs.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from decidua.entrypoints.cli.common import set_plain

HELP = (
    "Decision support for NK-cell and alloimmune causes of recurrent pregnancy loss (RPL) and implantation failure "
    "(RIF). Not a diagnosis, not a prescription."
)


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a command is defined: a module of ``decidua.entrypoints.cli`` and the name in it of the command's
    function, or of the ``typer.Typer`` of a group (whose help is given here, as ``add_typer(help=...)`` would)."""

    module: str
    attribute: str
    help: str | None = None

    def load(self, name: str) -> Any:
        """The Click command Typer makes of it (imports the module)."""
        target = getattr(importlib.import_module(f"decidua.entrypoints.cli.{self.module}"), self.attribute)
        if isinstance(target, typer.Typer):
            group = typer.main.get_group(target)
            group.name = name
            group.help = inspect.cleandoc(self.help or "")
            return group
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        return typer.main.get_command(single)


# In the order ``decidua --help`` lists them.
COMMANDS: dict[str, Entry] = {
    "assess": Entry("assess", "assess_command"),
    "schema": Entry("assess", "schema_command"),
    "batch": Entry("batch", "batch_command"),
    "match": Entry("match", "match_command"),
    "report": Entry("report", "report_command"),
    "serve": Entry("serve", "serve_command"),
    "kb": Entry("kb", "app", "Review the knowledge base in force."),
    "kir": Entry("kir", "app", "Interpret a KIR gene-content typing (AA/Bx, Cen/Tel, B content)."),
    "fhir": Entry("fhir", "app", "HL7 FHIR R4: export a case and its assessment, import a case."),
    "hla": Entry(
        "hla", "app", "HLA class I typings: KIR ligands, leader -21, resolution levels (IPD-IMGT/HLA); HML in."
    ),
    "lab": Entry("lab", "app", "Laboratory results from HL7 v2 ORU^R01 messages (LOINC-coded)."),
    "cohort": Entry(
        "cohort",
        "app",
        "Research on a cohort: reference intervals, cut-off performance, associations, the KIR/HLA-C scan.",
    ),
    "db": Entry("db", "app", "Back up the web application's database to one file, and restore it."),
    "users": Entry(
        "users",
        "app",
        "Accounts of the web application: add (the first admin), list, change role or activity, set a password.",
    ),
}


# Commands that read one case file or the knowledge base, print, and end within a fraction of a second. The console
# script starts with the garbage collector off (:func:`main`): start-up makes some 100,000 objects that live as long as
# the process (modules, classes, the knowledge base's rules), and collecting while they are being made finds nothing
# to free (about 35 ms of the 0.4 s of ``decidua assess``; ``benchmarks/startup.py``). Reference counting still frees
# every object outside a cycle. Any other command, which may run for hours or read a cohort, turns the collector back
# on as soon as it is named, before it imports anything of its own.
QUICK = frozenset({"assess", "schema", "match", "kb"})


class _Commands(MutableMapping[str, Any]):
    """A group's commands by name, in order; an :class:`Entry` is loaded when its command is first looked up."""

    def __init__(self, commands: MutableMapping[str, Any], entries: dict[str, Entry]) -> None:
        self._items: dict[str, Any] = {**entries, **commands}

    def __getitem__(self, name: str) -> Any:
        item = self._items[name]
        if isinstance(item, Entry):
            item = self._items[name] = item.load(name)
        return item

    def __setitem__(self, name: str, command: Any) -> None:
        self._items[name] = command

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class LazyGroup(TyperGroup):
    """The root group: the commands of :data:`COMMANDS`, each imported when looked up (click's documented pattern
    for lazily loaded subcommands, with ``commands`` a mapping that loads on access for code that reads it)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands, COMMANDS)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names alone: listing does not import

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] in QUICK:
            # pydantic's plugins (decidua uses none) not looked for unless PYDANTIC_DISABLE_PLUGINS is set (empty:
            # look): the search reads the metadata of every installed distribution (~10 ms of `decidua assess`)
            os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        else:
            gc.enable()
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="decidua",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(show: bool) -> None:
    if show:
        from decidua import __version__
        from decidua.immunogenetics.releases import releases
        from decidua.knowledge.loader import load_kb

        data = ", ".join(r.label for r in releases())
        typer.echo(f"decidua {__version__}, knowledge base {load_kb().kb_version}, reference data {data}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and the data in use."),
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            envvar="DECIDUA_PLAIN",
            help="Tables as tab-separated lines (header, one line per row, nothing cut): for grep, cut, spreadsheets.",
        ),
    ] = False,
) -> None:
    """Decision support for NK-cell and alloimmune causes of recurrent pregnancy loss (RPL) and implantation failure
    (RIF). Not a diagnosis, not a prescription."""
    set_plain(plain)


def main() -> None:
    """Console-script entry point: the garbage collector off until a command that is not :data:`QUICK` is named."""
    gc.disable()
    app()


if __name__ == "__main__":  # python -m decidua.entrypoints.cli.main
    main()
