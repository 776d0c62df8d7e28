"""MkDocs hook: the reference pages, generated from the code at every build and never committed.

- ``reference/cli.md``: the Typer application's command tree (``decidua.entrypoints.cli.main.app``), each
  command's usage, help, arguments and options;
- ``reference/api.md``: the web application's ``/openapi.json``, from an application created in-process on a
  throwaway SQLite database, its endpoints grouped by tag and its schemas;
- ``reference/knowledge-base.md``: the output of ``decidua kb show --json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

Json = Any  # a value decoded from JSON

# --- Markdown helpers ---------------------------------------------------------------------------------------

_SPECIAL = re.compile(r"([\\`*_\[\]{}|])")
_CODE = re.compile(r"(``.+?``|`[^`]+`)")


def escape(text: str) -> str:
    """Text as Markdown shows it literally (``A*01:01`` is no emphasis, ``<GENE>`` no tag), code spans kept."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = _SPECIAL.sub(r"\\\1", parts[i]).replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts)


def prose(text: str | None) -> str:
    """A docstring or help text as Markdown paragraphs: lines of one paragraph joined, blank lines kept."""
    paragraphs = re.split(r"\n\s*\n", (text or "").strip())
    return "\n\n".join(escape(" ".join(line.strip() for line in p.splitlines())) for p in paragraphs if p.strip())


def cell(text: str | None) -> str:
    """One line of text for a table cell."""
    return prose(text).replace("\n\n", "<br>")


def code(value: Json) -> str:
    """A value as a code span (JSON for anything but text)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- The command line ---------------------------------------------------------------------------------------


def cli_page() -> str:
    """Every command of ``decidua``, depth first, with what ``--help`` says."""
    import typer

    from decidua.entrypoints.cli.main import app

    root = typer.main.get_command(app)
    ctx_class = type(root.make_context("decidua", ["--help"], resilient_parsing=True))
    out = [
        "# Command-line reference",
        "",
        (
            "Generated from the command tree of `decidua` (the Typer application) when the site is built; "
            "`decidua COMMAND --help` prints the same. Exit codes: 0 success, 1 an internal error (a bug: please "
            "report it), 2 a usage or input error (nothing is written); see "
            "[Getting started](../getting-started.md#exit-codes)."
        ),
    ]

    def walk(command: Any, parent: Any, name: str) -> Iterator[str]:
        ctx = ctx_class(command, info_name=name, parent=parent)
        path = ctx.command_path
        subcommands: dict[str, Any] = getattr(command, "commands", {})
        yield f"\n{'#' * min(ctx_depth(ctx) + 1, 3)} `{path}`\n"
        yield f"```text\n{command.get_usage(ctx).strip()}\n```\n"
        yield prose(command.help) + "\n"
        params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
        arguments = [p for p in params if p.param_type_name == "argument"]
        options = [p for p in params if p.param_type_name == "option" and p.name != "help"]
        for title, group in (("Arguments", arguments), ("Options", options)):
            rows = []
            for param in group:
                record = param.get_help_record(ctx)
                if record is None:
                    continue
                names, help_text = record
                rows.append([code(names), cell(help_text)])
            if rows:
                yield table([title.lower()[:-1], "help"], rows) + "\n"
        if subcommands:
            yield table(
                ["command", "what it does"],
                [[f"`{path} {n}`", cell(c.get_short_help_str(limit=200))] for n, c in subcommands.items()],
            )
        for sub_name, sub in subcommands.items():
            if not getattr(sub, "hidden", False):
                yield from walk(sub, ctx, sub_name)

    out.extend(walk(root, None, "decidua"))
    return "\n".join(out) + "\n"


def ctx_depth(ctx: Any) -> int:
    """1 for ``decidua`` and its commands, 2 for the commands of a group (``decidua kir classify``)."""
    return max(1, len(ctx.command_path.split()) - 1)


# --- The HTTP API -------------------------------------------------------------------------------------------


def openapi() -> dict[str, Json]:
    """The application's ``/openapi.json``, from an application on a throwaway SQLite database."""
    from decidua.adapters.store import open_store
    from decidua.entrypoints.http import Settings, create_app
    from decidua.knowledge.loader import load_kb

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'docs.sqlite3'}"
        store = open_store(url)
        try:
            spec: dict[str, Json] = create_app(Settings(database_url=url), store, load_kb()).openapi()
        finally:
            store.engine.dispose()
    return spec


def schema_type(schema: dict[str, Json]) -> str:
    """A JSON Schema in a few words: ``CasePublic``, ``array of string``, ``integer or null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(schema_type(s) for s in schema[key])
    if "enum" in schema:
        return " \\| ".join(code(v) for v in schema["enum"])
    if "const" in schema:
        return code(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + schema_type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + schema_type(schema["additionalProperties"])
    return str(kind) + (f" ({schema['format']})" if "format" in schema else "")


def body_type(content: dict[str, Json]) -> str:
    return "; ".join(f"`{media}` {schema_type(c.get('schema', {}))}".rstrip() for media, c in content.items())


def operation_md(method: str, path: str, op: dict[str, Json]) -> str:
    out = [f"### `{method.upper()} {path}`", "", f"**{escape(op.get('summary', ''))}**"]
    if op.get("description"):
        out += ["", prose(op["description"])]
    params = op.get("parameters", [])
    if params:
        rows = [
            [
                f"`{p['name']}`",
                p["in"],
                schema_type(p.get("schema", {})),
                "yes" if p.get("required") else "no",
                cell(p.get("description") or p.get("schema", {}).get("description")),
            ]
            for p in params
        ]
        out += ["", table(["parameter", "in", "type", "required", "description"], rows)]
    if "requestBody" in op:
        out += ["", "Request body: " + body_type(op["requestBody"].get("content", {}))]
    responses = [
        [f"`{status}`", cell(r.get("description")), body_type(r.get("content", {}))]
        for status, r in sorted(op.get("responses", {}).items())
    ]
    out += ["", table(["status", "meaning", "body"], responses)]
    return "\n".join(out)


def schema_md(name: str, schema: dict[str, Json]) -> str:
    out = [f"### {name} {{#schema-{name.lower()}}}"]
    if schema.get("description"):
        out += ["", prose(schema["description"])]
    properties: dict[str, Json] = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        rows = [
            [f"`{key}`", schema_type(p), "yes" if key in required else "no", cell(p.get("description"))]
            for key, p in properties.items()
        ]
        out += ["", table(["field", "type", "required", "description"], rows)]
    elif "enum" in schema:
        out += ["", "One of " + schema_type(schema) + "."]
    return "\n".join(out)


def api_page() -> str:
    spec = openapi()
    operations = [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    common = set.intersection(*(set(op.get("tags", [])) for _, _, op in operations)) if operations else set()
    by_tag: dict[str, list[str]] = {}
    for method, path, op in operations:
        tag = next((t for t in op.get("tags", []) if t not in common), "other")
        by_tag.setdefault(tag, []).append(operation_md(method, path, op))
    info = spec["info"]
    out = [
        "# HTTP API reference",
        "",
        (
            f"Generated from the application's `/openapi.json` (OpenAPI {spec['openapi']}, {escape(info['title'])} "
            f"{info['version']}) when the site is built. A running server serves the same document at "
            "`/openapi.json`; how to log in and send the CSRF token is in "
            "[The web application](../web-app.md#the-json-api)."
        ),
    ]
    for tag, ops in by_tag.items():
        out += ["", f"## {tag}", "", "\n\n".join(ops)]
    out += ["", "## Schemas"]
    out += ["", "\n\n".join(schema_md(n, s) for n, s in spec.get("components", {}).get("schemas", {}).items())]
    return "\n".join(out) + "\n"


# --- The knowledge base -------------------------------------------------------------------------------------


def kb_json() -> dict[str, Json]:
    """What ``decidua kb show --json`` prints."""
    command = [sys.executable, "-m", "decidua.entrypoints.cli.main", "kb", "show", "--json"]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    data: dict[str, Json] = json.loads(result.stdout)
    return data


def cites(keys: Iterable[str]) -> str:
    return ", ".join(f"[{key}](#cite-{key})" for key in keys)


def cited(item: dict[str, Json]) -> str:
    """A stance or statement: who says it, what, how it is graded, whether it was checked, and its sources."""
    head = ", ".join(escape(str(item[k])) for k in ("verdict", "strength", "bearing") if item.get(k))
    verified = "checked" if item.get("verified") else "not checked"
    line = f"**{escape(item.get('source', ''))}**" + (f" ({head})" if head else "") + f": {prose(item['text'])}"
    line += f" *{item.get('wording', 'text')}, {verified}*"
    if item.get("cites"):
        line += "; " + cites(item["cites"])
    if item.get("note"):
        line += f". Note: {prose(item['note'])}"
    return line


LISTS_OF_CITED = ("stances", "statements", "overall")
SHOWN_APART = {"id", "title", "summary", "cites", "cells", *LISTS_OF_CITED}


def field(value: Json) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return cell(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(code(v) for v in value) or "none"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "".join(
            "\n    - " + ", ".join(f"{k}: {cites(x) if k == 'cites' else field(x)}" for k, x in v.items())
            for v in value
        )
    return code(value)


def summary_md(summary: dict[str, Json]) -> Iterator[str]:
    for status, text in summary.items():
        if isinstance(text, str):
            yield f"- *{status}*: {prose(text)}"
        else:
            yield f"- *{status}*, the first that holds:"
            yield from (
                f"    - {'when ' + code(v['when']) if 'when' in v else 'otherwise'}: {prose(v['text'])}" for v in text
            )


def cells_md(entry: dict[str, Json]) -> str:
    values = {(c["age"], c["losses"]): c["percent"] for c in entry["cells"]}
    rows = [[str(age)] + [str(values.get((age, n), "")) for n in entry["losses"]] for age in entry["ages"]]
    return table(["age"] + [f"{n} losses" for n in entry["losses"]], rows) + "\n\nAn empty cell is not shipped."


def entry_md(entry: dict[str, Json]) -> str:
    out = [f"### `{entry['id']}` {{#{anchor(entry['id'])}}}", ""]
    if entry.get("title"):
        out += [f"**{escape(entry['title'])}**", ""]
    shown = [(key, v) for key, v in entry.items() if key not in SHOWN_APART and v not in (None, "", [])]
    out += [f"- **{key.replace('_', ' ')}**: {field(v)}" for key, v in shown]
    if entry.get("cites"):
        out.append(f"- **cites**: {cites(entry['cites'])}")
    if entry.get("summary"):
        out += ["", "Summary by status:", "", *summary_md(entry["summary"])]
    if "cells" in entry:
        out += ["", cells_md(entry)]
    for key in LISTS_OF_CITED:
        if entry.get(key):
            out += ["", f"{key.capitalize()}:", "", *(f"- {cited(item)}" for item in entry[key])]
    return "\n".join(out)


def kb_page() -> str:
    kb = kb_json()
    pathway = kb["pathway"]
    out = [
        "# Knowledge base reference",
        "",
        (
            f"The knowledge base in force, **kb_version {kb['kb_version']}**, generated from `decidua kb show --json` "
            "when the site is built (without a clinic's override). How it is organised and how a clinic changes its "
            "numbers: [The knowledge base](../knowledge-base.md). *Checked*: the text was checked against a stored "
            "copy of the source; *not checked*: decidua's paraphrase or an unchecked record."
        ),
        "",
        "## The pathway",
        "",
        prose(pathway["description"]),
        "",
        f"- RPL definition in force: `{pathway['rpl_definition']}`",
        f"- RIF definition in force: `{pathway['rif_definition']}`",
        f"- RPL is unexplained unless one of these is flagged: {field(pathway['unexplained_rpl']['explained_by'])}",
        "- ... and only once these are assessed: " + field(pathway["unexplained_rpl"]["requires_assessed"]),
        "",
        "## Choices",
        "",
        table(
            ["choice", "what", "selected", "alternatives"],
            [
                [f"`{k}`", escape(c["label"]), f"`{c['selected']}`", field(c["options"])]
                for k, c in kb["choices"].items()
            ],
        ),
        "",
        "## Rules",
        "",
        table(
            ["rule", "title", "kind", "parameters", "active"],
            [
                [
                    f"[`{r['id']}`](#{anchor(r['id'])})",
                    cell(r["title"]),
                    r["kind"],
                    cell(r.get("parameters")),
                    field(r["active"]),
                ]
                for r in kb["rules"]
            ],
        ),
    ]
    for name in ("rules", "steps", "options", "prognosis"):
        if name != "rules":
            out += ["", f"## {name.capitalize()}"]
        out += ["", "\n\n".join(entry_md(e) for e in kb[name])]
    out += ["", "## Citations", ""]
    for key, c in kb["citations"].items():
        links = [f"[doi:{c['doi']}](https://doi.org/{c['doi']})" if c.get("doi") else ""]
        links.append(f"[PMID {c['pmid']}](https://pubmed.ncbi.nlm.nih.gov/{c['pmid']}/)" if c.get("pmid") else "")
        links.append(f"<{c['url']}>" if c.get("url") else "")
        mark = "" if c.get("verified") else " *(not checked against a stored record)*"
        extra = " ".join(x for x in links if x)
        out.append(f"- `{key}`{{#cite-{key}}}: {escape(c['text'])}{mark}" + (f" {extra}" if extra else ""))
    if kb.get("overrides"):
        out += ["", "## Overrides in force", "", *(f"- {code(o)}" for o in kb["overrides"])]
    return "\n".join(out) + "\n"


def anchor(entry_id: str) -> str:
    """The id of an entry's heading: ``nk-peripheral-clinic``."""
    return re.sub(r"[^a-z0-9]+", "-", entry_id.lower())


# --- The hook -----------------------------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_page,
    "reference/api.md": api_page,
    "reference/knowledge-base.md": kb_page,
}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path, build in PAGES.items():
        files.append(File.generated(config, path, content=build()))
    return files
