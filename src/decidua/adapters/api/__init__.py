"""The web application's JSON API under ``/api`` (its routes and schemas); the app factory is in
``decidua.adapters.http``, the pages in ``decidua.adapters.web``."""
