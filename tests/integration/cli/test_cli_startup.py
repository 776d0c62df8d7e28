"""Start-up of the command line (issue 17): what importing it, listing its commands or running one loads.

The times are measured by ``benchmarks/startup.py``; these tests pin the behaviour that keeps them low, in fresh
interpreters (a test process has imported everything already): the command modules are imported when their
command runs (``main.COMMANDS``), a command imports the libraries it needs when it runs, and nothing is computed
at import time (the password hasher, which hashes when made, is made by the command that hashes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from decidua.entrypoints.cli.main import COMMANDS, app

from conftest import EXAMPLES, ROOT

# Libraries that only some commands need (and each takes 50 ms to 1 s to import).
HEAVY = frozenset(
    {
        "alembic",
        "argon2",
        "dask",
        "distributed",
        "fastapi",
        "fhir",
        "hl7apy",
        "jinja2",
        "matplotlib",
        "numpy",
        "polars",
        "pyarrow",
        "scipy",
        "sqlalchemy",
        "starlette",
        "statsmodels",
        "uvicorn",
        "weasyprint",
    }
)
KNOWLEDGE = frozenset({"pydantic", "yaml"})  # reading the knowledge base and case files
TERMINAL = frozenset({"rich", "markdown_it"})  # tables and styled text; Typer's help formatting

# Runs the command line in this interpreter with the arguments given, its output discarded, and prints what was
# imported as JSON. "--import-only": import the command line and run nothing.
PROBE = """
import io, json, sys
args = sys.argv[1:]
real, sys.stdout, sys.stderr = sys.stdout, io.StringIO(), io.StringIO()
code = 0
if args == ["--import-only"]:
    import decidua.entrypoints.cli.main
else:
    from decidua.entrypoints.cli.main import app
    try:
        app(args, prog_name="decidua")
    except SystemExit as exc:
        code = exc.code
real.write(json.dumps({"code": code, "modules": sorted(sys.modules), "stderr": sys.stderr.getvalue()}))
"""


def loaded(*args: str) -> tuple[set[str], set[str]]:
    """The top-level packages and the ``decidua`` modules imported by running ``decidua ARGS`` (exit code 0 or
    2, as the test says) in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DECIDUA_", "TYPER_"))}
    env["COLUMNS"] = "100"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["code"] in (0, 2), report["stderr"]
    modules = report["modules"]
    return {m.split(".")[0] for m in modules}, {m for m in modules if m.startswith("decidua.")}


def cli_modules(decidua: set[str]) -> set[str]:
    return {m.removeprefix("decidua.entrypoints.cli.") for m in decidua if m.startswith("decidua.entrypoints.cli.")}


def test_importing_the_command_line_loads_no_command() -> None:
    packages, decidua = loaded("--import-only")
    assert not packages & (HEAVY | KNOWLEDGE | TERMINAL)
    assert cli_modules(decidua) == {"main", "common"}
    assert not {m for m in decidua if m.split(".")[1] in {"app", "adapters", "engines", "knowledge"}}


def test_help_lists_the_commands_without_their_libraries() -> None:
    packages, decidua = loaded("--help")
    assert not packages & HEAVY, sorted(packages & HEAVY)
    assert cli_modules(decidua) >= {"assess", "batch", "kir", "users"}  # listed with their help


def test_help_does_not_read_the_knowledge_base() -> None:
    packages, _ = loaded("--help")
    assert not packages & KNOWLEDGE, sorted(packages & KNOWLEDGE)


def test_assess_imports_its_own_module_and_libraries_only() -> None:
    case = str(EXAMPLES / "01-rpl-age36-nk-high.yaml")
    packages, decidua = loaded("assess", case, "--format", "json")
    assert not packages & (HEAVY | TERMINAL), sorted(packages & (HEAVY | TERMINAL))
    assert cli_modules(decidua) == {"main", "common", "assess"}
    packages, decidua = loaded("assess", case)  # the text: rich renders it
    assert not packages & HEAVY, sorted(packages & HEAVY)
    assert "rich" in packages
    assert cli_modules(decidua) == {"main", "common", "assess"}


def test_version_reads_the_data_without_loading_a_command() -> None:
    packages, decidua = loaded("--version")
    assert not packages & (HEAVY | TERMINAL)
    assert cli_modules(decidua) == {"main", "common"}


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["kb", "show", "--json"], "kb"),
        (["kir", "classify", "--present", "2DL1,2DL3,3DL1", "--json"], "kir"),
        (["hla", "ligand", "C*07:02", "--json"], "hla"),
        (["match", "--woman-kir", "2DL1,2DL3", "--woman-hla-c", "C*07:02+C*06:02", "--json"], "match"),
        (["schema"], "assess"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_a_command_imports_no_other_command(args: list[str], module: str) -> None:
    packages, decidua = loaded(*args)
    assert not packages & (HEAVY | TERMINAL), sorted(packages & (HEAVY | TERMINAL))
    assert cli_modules(decidua) == {"main", "common", module} | ({"assess"} if module in {"kb", "match"} else set())


def test_the_password_hasher_is_made_by_a_command_that_hashes(tmp_path: Path) -> None:
    """``decidua users list`` of a missing database: no argon2 (whose hasher hashes a dummy password when made),
    no web application, no migrations (SQLAlchemy parses the URL)."""
    url = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    packages, decidua = loaded("users", "list", "--database-url", url)
    assert not packages & (HEAVY - {"sqlalchemy"}), sorted(packages & HEAVY)
    assert "decidua.app.accounts" not in decidua


# --- the lazily loaded command tree is the one Typer builds from the same functions ---------------------------


def eager_app() -> typer.Typer:
    """The command line registered the way Typer registers commands when it imports them all at once."""
    import importlib

    from decidua.entrypoints.cli import main

    eager = typer.Typer(name="decidua", help=main.HELP, no_args_is_help=True, add_completion=False)
    eager.callback()(main._options)
    for name, entry in COMMANDS.items():
        target = getattr(importlib.import_module(f"decidua.entrypoints.cli.{entry.module}"), entry.attribute)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=name, help=entry.help)
        else:
            eager.command(name)(target)
    return eager


def paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += paths(sub, (*path, name))
    return found


def test_every_command_loads_under_its_name() -> None:
    root = typer.main.get_command(app)
    assert list(root.commands) == list(COMMANDS)
    for name in COMMANDS:
        assert root.commands[name].name == name


def test_the_lazy_command_tree_is_the_eager_one() -> None:
    runner = CliRunner()
    eager = eager_app()
    tree = paths(typer.main.get_command(app))
    assert tree == paths(typer.main.get_command(eager))
    assert len(tree) > 30
    for path in [*tree, ("nope",), ("kir", "nope"), ("kir",)]:
        args = [*path, "--help"] if path not in {("nope",), ("kir", "nope"), ("kir",)} else list(path)
        lazy_result = runner.invoke(app, args, env={"COLUMNS": "100"})
        eager_result = runner.invoke(eager, args, env={"COLUMNS": "100"})
        assert (lazy_result.exit_code, lazy_result.stdout, lazy_result.stderr) == (
            eager_result.exit_code,
            eager_result.stdout,
            eager_result.stderr,
        ), path


# --- the consoles: made by the first print of an invocation, for that invocation ------------------------------


def test_each_invocation_prints_at_its_own_width() -> None:
    runner = CliRunner()
    narrow = runner.invoke(app, ["kb", "show"], env={"COLUMNS": "60"})
    wide = runner.invoke(app, ["kb", "show"], env={"COLUMNS": "120"})
    assert narrow.exit_code == wide.exit_code == 0
    assert max(map(len, narrow.stdout.splitlines())) <= 60
    assert max(map(len, wide.stdout.splitlines())) > 60


def test_the_console_works_as_a_rich_console_in_a_progress_bar() -> None:
    from rich.progress import BarColumn, Progress

    from decidua.entrypoints.cli.common import err_console, set_plain

    set_plain(False)
    with Progress(BarColumn(), console=err_console) as progress:  # enters and leaves the console (`with console`)
        task = progress.add_task("rows", total=2)
        progress.update(task, completed=2)
    assert err_console.stderr


# --- the garbage collector: off while a quick command starts, on for any other --------------------------------

# Runs the console script's entry point with the arguments given and, as the process ends, prints whether the
# collector is on and the pydantic plugin setting the command ran with (None: not set).
GC_PROBE = """
import atexit, gc, io, os, sys
real, sys.stdout, sys.stderr = sys.stdout, io.StringIO(), io.StringIO()
atexit.register(lambda: real.write(f"{gc.isenabled()} {os.environ.get('PYDANTIC_DISABLE_PLUGINS')!r}"))
sys.argv = ["decidua", *sys.argv[1:]]
from decidua.entrypoints.cli.main import main
main()
"""


def collector(*args: str, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DECIDUA_", "TYPER_", "PYDANTIC_"))}
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE, *args], capture_output=True, text=True, env={**base, **(env or {})}, cwd=ROOT
    )
    return done.stdout


@pytest.mark.parametrize(
    ("args", "on"),
    [
        (["assess", str(EXAMPLES / "01-rpl-age36-nk-high.yaml")], False),
        (["kb", "show"], False),
        (["--version"], False),
        (["batch", "--help"], True),  # may read millions of rows
        (["serve", "--help"], True),  # runs for months
        (["cohort", "scan", "--help"], True),
        (["users", "list", "--database-url", "sqlite:////nonexistent/x.sqlite3"], True),
    ],
    ids=lambda v: v if isinstance(v, bool) else " ".join(v[:2]),
)
def test_only_quick_commands_run_without_the_garbage_collector(args: list[str], on: bool) -> None:
    """... and without pydantic's plugin search; every other command (and what it starts: the PDF workers) keeps
    the user's plugins."""
    plugins = "None" if on or args == ["--version"] else "'__all__'"
    assert collector(*args) == f"{on} {plugins}"


def test_a_pydantic_plugin_setting_of_the_user_is_kept() -> None:
    assert collector("kb", "show", env={"PYDANTIC_DISABLE_PLUGINS": ""}) == "False ''"
