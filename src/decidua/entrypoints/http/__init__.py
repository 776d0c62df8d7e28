"""What the JSON API and the pages share: the app factory (``create_app``), settings, the request context and
its access checks, the error handlers, and the case service.

``create_app`` and ``Settings`` load on first use: a command that only needs the default database URL
(``decidua users``, ``decidua db``) does not import FastAPI, Jinja2 and the report renderer for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decidua.entrypoints.http.app import create_app
    from decidua.entrypoints.http.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from decidua.entrypoints.http.app import create_app

        return create_app
    if name == "Settings":
        from decidua.entrypoints.http.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
