"""The web application's JSON API under ``/api`` (OpenAPI at ``/openapi.json``): module-level routers, one per
subject, each route taking what it needs from :mod:`decidua.entrypoints.http.deps`. Cookie sessions; send
``X-CSRF-Token`` on writes."""

from __future__ import annotations

from fastapi import APIRouter

from decidua.entrypoints.http.api import admin, cases, fhir, meta, session
from decidua.entrypoints.http.api.public import INVALID

# Every 422 has decidua's shape (one problem per field), not FastAPI's default.
router = APIRouter(prefix="/api", tags=["api"], responses={422: INVALID})
router.include_router(meta.router)
router.include_router(session.router)
router.include_router(cases.router)
router.include_router(fhir.router)
router.include_router(admin.router)

__all__ = ["router"]
