"""The web application's JSON API under ``/api`` (its routes and schemas); the app factory is in
``decidua.entrypoints.http``, the pages in ``decidua.entrypoints.http.pages``."""
