"""Settings of the web application: read from ``DECIDUA_*`` environment variables or given by the caller.

Each field is also an environment variable, its name upper-cased after ``DECIDUA_`` (``DECIDUA_MAX_CONNECTIONS``);
``decidua serve`` has an option for the ones a clinic changes (``--max-connections``, ``--header-timeout``,
``--keep-alive``, ``--min-body-rate``, ``--pdf-workers``, ``--pdf-queue``), which wins over the variable. The
limits that keep the server up:

* ``max_connections``, ``header_timeout_seconds``, ``keep_alive_seconds``, ``min_body_rate_bytes``: connections
  (see :mod:`decidua.entrypoints.http.server`): beyond the cap a connection is answered 503 at once; a connection
  whose request headers are not complete within the timeout, or whose body arrives slower than the rate, is
  answered 408 and closed; an idle kept-alive connection is closed after ``keep_alive_seconds``;
* ``max_body_bytes``, ``max_fhir_bytes``: request bodies (see :mod:`decidua.entrypoints.http.limits`; the pages'
  uploads have their own 5 MB), refused with 413 before anything reads them;
* ``pdf_workers``, ``pdf_queue``: PDF reports are rendered by that many worker processes, with at most that many
  more waiting; beyond, a report request is answered 503 with ``Retry-After`` (see
  :mod:`decidua.adapters.report.pool`).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """``sqlite:///<user data dir>/decidua.sqlite3`` (e.g. ``~/.local/share/decidua/decidua.sqlite3`` on Linux)."""
    return f"sqlite:///{Path(user_data_dir('decidua', appauthor=False)) / 'decidua.sqlite3'}"


# Reports rendering or waiting hold a request thread each (the server has 40): this many at most leaves the rest
# for everything else (beyond 40 waiting, a health check waited 33 s for a thread).
MAX_PDF_IN_FLIGHT = 24


def default_pdf_workers() -> int:
    """Half the CPUs, from 1 to 4: the other half keeps answering everything else while reports render."""
    return min(4, max(1, (os.cpu_count() or 2) // 2))


class Settings(BaseSettings):
    """Passed into :func:`decidua.entrypoints.http.app.create_app`; nothing reads settings from a module global."""

    model_config = SettingsConfigDict(env_prefix="DECIDUA_", extra="forbid")

    database_url: str = Field(default_factory=default_database_url)
    session_idle_minutes: float = Field(30.0, gt=0, description="Log out after this long without a request.")
    session_max_hours: float = Field(12.0, gt=0, description="Log out this long after logging in, whatever happens.")
    login_max_failures: int = Field(
        5, ge=1, le=1000, description="Failed logins for one e-mail address from one client that lock it there."
    )
    login_max_failures_all_clients: int = Field(
        50, ge=1, le=100_000, description="Failed logins for one e-mail address from all clients that lock it."
    )
    login_lockout_minutes: float = Field(15.0, gt=0, description="How long a locked e-mail address is refused.")
    secure_cookies: bool = Field(False, description="Send cookies over HTTPS only (set behind TLS).")
    cookie_name: str = "decidua_session"
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Bytes of a request body at most (a case, a login, an HL7 message); more is answered 413 unread.",
    )
    max_fhir_bytes: int = Field(
        20 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Bytes of a FHIR Bundle to import at most; more is answered 413 unread.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Open connections at most; one more is answered 503 and closed (lowered at start to fit the "
        "open-file limit).",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="A request's line and headers must all arrive within this long of the connection opening (or "
        "of the previous response on a kept-alive connection); otherwise 408 and the connection is closed.",
    )
    keep_alive_seconds: int = Field(
        5, ge=1, le=3600, description="Close an idle kept-alive connection after this long."
    )
    min_body_rate_bytes: int = Field(
        8192,
        ge=1,
        le=1_000_000_000,
        description="Once a request's headers are in, its body must arrive at this many bytes per second on "
        "average, after a grace of the header timeout; otherwise 408 and the connection is closed.",
    )
    pdf_workers: int = Field(
        default_factory=default_pdf_workers, ge=1, le=MAX_PDF_IN_FLIGHT, description="Processes rendering PDF reports."
    )
    pdf_queue: int = Field(
        8, ge=0, le=MAX_PDF_IN_FLIGHT, description="PDF reports waiting for a worker at most; one more is answered 503."
    )

    @model_validator(mode="after")
    def _pdf_requests_leave_threads(self) -> Settings:
        if self.pdf_workers + self.pdf_queue > MAX_PDF_IN_FLIGHT:
            raise ValueError(
                f"pdf_workers + pdf_queue: at most {MAX_PDF_IN_FLIGHT} (got {self.pdf_workers + self.pdf_queue}): a "
                "report being rendered or waiting holds one of the server's 40 request threads"
            )
        return self

    kb_override: Path | None = None
