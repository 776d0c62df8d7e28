"""What needs no patient data: liveness, the knowledge base in force, the case file's JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from decidua.app.accounts import Login
from decidua.app.casefile import case_schema
from decidua.app.presenters import kb_data
from decidua.entrypoints.http.api.public import ERRORS
from decidua.entrypoints.http.api.schemas import HealthPublic
from decidua.entrypoints.http.deps import LOGGED_IN, Ctx

router = APIRouter(tags=["meta"])


@router.get("/health")
def health(ctx: Ctx) -> HealthPublic:
    """Liveness: the knowledge base in force and the database kind (no login needed)."""
    return HealthPublic(status="ok", kb_version=ctx.kb.kb_version, database=ctx.database)


@router.get("/kb", responses=ERRORS)
def knowledge_base(ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> dict[str, Any]:
    """The knowledge base in force: rules, thresholds, choices, options, citations, local overrides."""
    return kb_data(ctx.kb)


@router.get("/schema/case", responses=ERRORS)
def schema(who: Annotated[Login, LOGGED_IN]) -> dict[str, Any]:
    """JSON Schema (2020-12) of the case file."""
    return case_schema()
