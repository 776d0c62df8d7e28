"""The README and the documentation site (docs/, mkdocs.yml): what a new user copies must work.

- the README opens with the two commands, and its test command is the one CI runs;
- the apt-get lines install what CI installs;
- every ``decidua`` command line in a code block names commands and options that exist;
- links between the pages resolve, every page is in the site's navigation, and the Python examples run;
- the generated reference pages (docs/hooks.py) cover every command, endpoint and rule.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
import yaml

from decidua.entrypoints.cli.main import app

from conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
MARKDOWN = [README, *PAGES]

TWO_COMMANDS = """\
# Install and run the main job: the web application on an embedded SQLite file (prints its path and the URL):
python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/decidua serve

# Install and run the tests:
python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest
"""

FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_blocks(path: Path, *languages: str) -> list[str]:
    """The fenced code blocks of a Markdown file in these languages, dedented."""
    blocks = []
    for indent, language, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if language in languages:
            blocks.append("\n".join(line.removeprefix(indent) for line in body.splitlines()) + "\n")
    return blocks


def test_readme_opens_with_the_two_commands() -> None:
    assert code_blocks(README, "bash")[0] == TWO_COMMANDS


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ran = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    # CI adds only quietness and the longer Hypothesis profile.
    assert ran.replace(" -q", "").replace("HYPOTHESIS_PROFILE=ci ", "") == TWO_COMMANDS.splitlines()[-1]


@pytest.mark.parametrize("path", [README, DOCS / "getting-started.md"], ids=lambda p: p.name)
def test_the_apt_line_installs_what_ci_installs(path: Path) -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    packages = re.search(r'^APT_PACKAGES="([^"]+)"', ci, re.M)
    assert packages is not None
    wanted = set(packages.group(1).split())
    lines = [line for block in code_blocks(path, "bash") for line in block.splitlines() if "apt-get install" in line]
    assert len(lines) == 1, "one copy-paste line"
    assert wanted <= set(lines[0].split("apt-get install", 1)[1].split())


# --- decidua command lines ----------------------------------------------------------------------------------


def command_lines(path: Path) -> list[list[str]]:
    """Every ``decidua`` command line in the bash and console blocks (continuations joined, prompts removed)."""
    found: list[list[str]] = []
    lines = [line for block in code_blocks(path, "bash") for line in block.replace("\\\n", " ").splitlines()]
    lines += [line[2:] for block in code_blocks(path, "console") for line in block.splitlines() if line[:2] == "$ "]
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in ("&&", "||", "|", ";", "&"):
                words.append(token)
                continue
            if words and words[0] in ("decidua", ".venv/bin/decidua"):
                found.append(words)
            words = []
    return found


def resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command these words name, and the options given to it."""
    command: Any = typer.main.get_command(app)
    options: list[str] = []
    for word in words[1:]:
        subcommands = getattr(command, "commands", {})
        if word.startswith("-"):
            options.append(word.split("=", 1)[0])
        elif word in subcommands and not options:
            command = subcommands[word]
        elif subcommands and not options:
            pytest.fail(f"{' '.join(words)}: no command {word!r}")
    return command, options


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_decidua_command_line_exists(path: Path) -> None:
    for words in command_lines(path):
        command, options = resolve(words)
        line = " ".join(words)
        known = {name for p in command.params for name in (*p.opts, *p.secondary_opts)} | {"--help"}
        assert set(options) <= known, f"{path.name}: {line}: unknown {sorted(set(options) - known)}"
        assert not getattr(command, "commands", None) or "--help" in options, f"{path.name}: {line}: a group"


def test_the_readme_and_getting_started_show_commands() -> None:
    assert len(command_lines(README)) >= 1
    assert len(command_lines(DOCS / "getting-started.md")) >= 5


# --- links, navigation, examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    generated = {DOCS / "reference" / name for name in ("cli.md", "api.md", "knowledge-base.md")}
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:|#", target):
            continue
        file = (path.parent / target.split("#", 1)[0]).resolve()
        assert file.exists() or file in generated, f"{path.name}: broken link {target}"


def test_the_readme_links_every_guide() -> None:
    linked = {(ROOT / target).resolve() for target in LINK.findall(README.read_text(encoding="utf-8"))}
    guides = {page.resolve() for page in PAGES if page.parent == DOCS and page.name != "index.md"}
    assert guides <= linked


def nav_files(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [file for item in items for file in nav_files(item)]


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = nav_files(config["nav"])
    assert sorted(listed) == sorted({*listed, *(str(p.relative_to(DOCS)) for p in PAGES)})
    assert all((DOCS / f).exists() or f.startswith("reference/") for f in listed)


@pytest.mark.parametrize("path", [p for p in PAGES if ">>> " in p.read_text(encoding="utf-8")], ids=lambda p: p.name)
def test_python_examples_in_the_docs_run(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the examples read examples/...
    failed, attempted = doctest.testfile(str(path), module_relative=False, encoding="utf-8", report=True)
    assert attempted > 0
    assert failed == 0


# --- the generated reference pages --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("decidua_docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_and_option(hooks: ModuleType) -> None:
    page = hooks.cli_page()

    def walk(command: Any, path: str) -> None:
        assert f"`{path}`" in page
        for param in command.params:
            assert all(name in page for name in param.opts)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "decidua")


def test_the_api_reference_has_every_endpoint(hooks: ModuleType) -> None:
    spec = hooks.openapi()
    page = hooks.api_page()
    for path, operations in spec["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in page
    for name in spec["components"]["schemas"]:
        assert f"{{#schema-{name.lower()}}}" in page


def test_the_knowledge_base_reference_has_every_rule_and_citation(hooks: ModuleType, kb: Any) -> None:
    page = hooks.kb_page()
    assert f"kb_version {kb.kb_version}" in page
    data = hooks.kb_json()
    for name in ("rules", "steps", "options", "prognosis"):
        for entry in data[name]:
            assert f"### `{entry['id']}` {{#{hooks.anchor(entry['id'])}}}" in page
    for key in data["citations"]:
        assert f"{{#cite-{key}}}" in page


def test_escaped_text_shows_as_written(hooks: ModuleType) -> None:
    assert hooks.escape("A*01:01 and <GENE> in `C*07:AB` {measure}") == (
        r"A\*01:01 and &lt;GENE&gt; in `C*07:AB` \{measure\}"
    )
