"""The web application's JSON API and app factory (``create_app``); the pages live in ``decidua.adapters.web``."""

from __future__ import annotations

from decidua.adapters.api.app import create_app
from decidua.adapters.api.settings import Settings

__all__ = ["Settings", "create_app"]
