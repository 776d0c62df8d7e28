"""Entry points: the command line (Typer) and the HTTP application (FastAPI: JSON API and server-rendered pages).

They parse, call the application layer (:mod:`decidua.app`) and render; no use case is written here."""
