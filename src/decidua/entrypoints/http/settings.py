"""Settings of the web application: read from ``DECIDUA_*`` environment variables or given by the caller."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """``sqlite:///<user data dir>/decidua.sqlite3`` (e.g. ``~/.local/share/decidua/decidua.sqlite3`` on Linux)."""
    return f"sqlite:///{Path(user_data_dir('decidua', appauthor=False)) / 'decidua.sqlite3'}"


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
    kb_override: Path | None = None
