"""``decidua serve``: the web application for clinicians (SQLite file by default, or PostgreSQL)."""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import err_console, escape, fail, input_errors, out_console

if TYPE_CHECKING:
    from decidua.adapters.store import SqlCaseStore

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DECIDUA_DATABASE_URL",
        help="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB (extra 'postgres'). "
        "Default: decidua.sqlite3 in the user data folder.",
        show_default=False,
    ),
]


def database_url_or_default(url: str | None) -> str:
    """The database URL to use: the default SQLite file, a URL as given, or a plain path as a SQLite file.

    A URL of another database, or one that cannot be parsed, exits 2 saying what is allowed.
    """
    if not url:  # the web application's settings (and with them its package) only for the default
        from decidua.entrypoints.http.settings import default_database_url

        return default_database_url()
    if "://" not in url:  # a path: the SQLite file there
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    # "postgresql://" means the psycopg 3 driver (the 'postgres' extra), not SQLAlchemy's psycopg2 default.
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError:
        backend = None
    if backend == "sqlite" and parsed.host:
        fail(
            f"--database-url: {escape(url)} names a host; a SQLite URL is sqlite:/// and the path "
            "(sqlite:////absolute/path, or give the path alone)"
        )
    if backend not in ("sqlite", "postgresql"):
        fail(
            f"--database-url: got {escape(url.split('://')[0])}://...; allowed: a SQLite file (a path, or "
            "sqlite:////absolute/path) or PostgreSQL (postgresql://USER@HOST/DB, extra 'postgres')"
        )
    return url


def _shown_url(url: str) -> str:
    """The URL to type again: a SQLite file's URL, or the PostgreSQL URL with its password as ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _check_port(host: str, port: int) -> None:
    """Exit 2 before saying "running" when another program listens there (uvicorn would exit 3 after it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"--port: cannot listen on {escape(host)}:{port} ({exc.strerror}); allowed: a free port (--port)")


def describe(url: str) -> str:
    """The database for people: the SQLite file's path, or the URL without its password."""
    from sqlalchemy.engine import make_url

    from decidua.adapters.store import sqlite_path

    path = sqlite_path(url)
    if path is not None:
        return f"SQLite file {path.resolve()}"
    return make_url(url).render_as_string(hide_password=True)


def open_store_or_exit(url: str) -> SqlCaseStore:
    """The store at ``url``, migrated; a database that cannot be reached or migrated exits with code 2."""
    from decidua.adapters.store import open_store

    try:
        return open_store(url)
    except ModuleNotFoundError as exc:  # the PostgreSQL driver is an extra
        err_console.print(
            f"[bold red]error:[/] --database-url: {escape(describe(url))} needs the {exc.name} driver; install "
            "decidua with the 'postgres' extra (pip install 'decidua\\[postgres]')",
            highlight=False,
            markup=True,
        )
        raise typer.Exit(2) from None
    except Exception as exc:  # say which database, never its password
        err_console.print(
            f"[bold red]error:[/] --database-url: cannot open {escape(describe(url))} ({type(exc).__name__}); "
            "allowed: a reachable SQLite file path or PostgreSQL server (sqlite:///PATH, postgresql://USER@HOST/DB)",
            highlight=False,
            markup=True,
        )
        raise typer.Exit(2) from None


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
    kb_override: KbOverride = None,
    idle_minutes: Annotated[float, typer.Option(help="Log a user out after this many idle minutes.")] = 30.0,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies/--no-secure-cookies", help="Send cookies over HTTPS only (behind TLS).")
    ] = False,
    trusted_proxy: Annotated[
        str | None,
        typer.Option(
            help="Address(es) of a reverse proxy whose X-Forwarded-For names the client (comma-separated); "
            "without it the client is the address the connection comes from."
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="DECIDUA_MAX_CONNECTIONS",
            help="Open connections at most; one more is answered 503 (default 1000).",
            show_default=False,
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            envvar="DECIDUA_HEADER_TIMEOUT_SECONDS",
            help="Seconds a request's headers may take to arrive; then 408 and the connection is closed (default 10).",
            show_default=False,
        ),
    ] = None,
    keep_alive: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="DECIDUA_KEEP_ALIVE_SECONDS",
            help="Seconds an idle kept-alive connection is kept (default 5).",
            show_default=False,
        ),
    ] = None,
    min_body_rate: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="DECIDUA_MIN_BODY_RATE_BYTES",
            help="Bytes per second a request body must arrive at, on average, after the header timeout's grace; "
            "then 408 and the connection is closed (default 8192).",
            show_default=False,
        ),
    ] = None,
    pdf_workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="DECIDUA_PDF_WORKERS",
            help="Processes rendering PDF reports (default: half the CPUs, 1 to 4).",
            show_default=False,
        ),
    ] = None,
    pdf_queue: Annotated[
        int | None,
        typer.Option(
            min=0,
            envvar="DECIDUA_PDF_QUEUE",
            help="PDF reports waiting for a worker at most; one more is answered 503 with Retry-After (default 8; "
            "workers and queue together at most 24).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the web application: cases, assessments, reports, FHIR import/export (prints the URL)."""
    from pydantic import ValidationError

    from decidua.adapters.report.pool import pdf_pool
    from decidua.entrypoints.http import Settings, create_app
    from decidua.entrypoints.http.server import ServerLimits, serve
    from decidua.knowledge.loader import load_kb

    url = database_url_or_default(database_url)
    with input_errors():
        kb = load_kb(kb_override)
    limits: dict[str, Any] = {
        "max_connections": max_connections,
        "header_timeout_seconds": header_timeout,
        "keep_alive_seconds": keep_alive,
        "min_body_rate_bytes": min_body_rate,
        "pdf_workers": pdf_workers,
        "pdf_queue": pdf_queue,
    }
    try:
        settings = Settings(
            database_url=url,
            session_idle_minutes=idle_minutes,
            secure_cookies=secure_cookies,
            kb_override=kb_override,
            **{name: value for name, value in limits.items() if value is not None},
        )
    except ValidationError as exc:  # a DECIDUA_* variable out of range
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        err_console.print(f"[bold red]error:[/] {escape(problems)}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    store = open_store_or_exit(url)
    # First start: a one-time secret link lets whoever started the server create the first admin.
    setup_token = None if store.has_users() else secrets.token_urlsafe(24)
    app = create_app(settings, store, kb, database=store.engine.dialect.name, setup_token=setup_token)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    out_console.print(f"database: {describe(url)} (migrated to the latest schema)", markup=False, soft_wrap=True)
    out_console.print(f"knowledge base: {kb.kb_version}", markup=False, soft_wrap=True)
    if setup_token is not None:
        same_database = "" if database_url is None else f" --database-url {_shown_url(url)}"
        out_console.print(
            f"no users yet: create the first admin at {base}/setup?token={setup_token}\n"
            f"  (or stop the server and run: decidua users add EMAIL --role admin{same_database})",
            markup=False,
            soft_wrap=True,
        )
    _check_port(host, port)
    pdfs = pdf_pool(settings.pdf_workers, settings.pdf_queue)
    pdfs.start()  # the workers load WeasyPrint now, not during the first report
    out_console.print(f"decidua is running at {base}/  (Ctrl+C stops it)", markup=False, soft_wrap=True)
    # uvicorn's own access log prints query strings (a search may name a case): ours prints the path only.
    # X-Forwarded-For is believed only from a proxy named here: otherwise any client could pick the address its
    # failed logins are counted under.
    try:
        serve(
            app,
            host,
            port,
            ServerLimits(
                settings.max_connections,
                settings.header_timeout_seconds,
                settings.keep_alive_seconds,
                settings.min_body_rate_bytes,
            ),
            access_log=False,
            log_config=None,
            server_header=False,
            proxy_headers=trusted_proxy is not None,
            forwarded_allow_ips=trusted_proxy or "",
        )
    finally:
        pdfs.shutdown()


__all__ = ["DatabaseUrl", "database_url_or_default", "describe", "open_store_or_exit", "serve_command"]
