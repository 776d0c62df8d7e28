"""What the JSON API and the pages share: the app factory (``create_app``), settings, the request context and
its access checks, the error handlers, and the case service."""

from __future__ import annotations

from decidua.entrypoints.http.app import create_app
from decidua.entrypoints.http.settings import Settings

__all__ = ["Settings", "create_app"]
