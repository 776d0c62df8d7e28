"""Alembic environment: run by ``decidua.adapters.store.migrate.upgrade`` with a connection it passes in."""

from __future__ import annotations

from alembic import context

from decidua.adapters.store.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations through decidua.adapters.store.migrate.upgrade")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic installs its proxy before executing this file; importing it otherwise (doctest collection) does nothing.
if getattr(context, "_proxy", None) is not None:
    run_migrations()
