"""What the pages share: rendering a page or the case form, safe redirects after login, form helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from decidua.core.errors import InputInvalid, Problem
from decidua.entrypoints.http.deps import AppContext, render
from decidua.entrypoints.http.pages.forms import CONDITION_LABELS, SECTIONS, form_state
from decidua.entrypoints.http.pages.views import STATUS_LABELS

LOGIN_CSRF_COOKIE = "decidua_login_csrf"
MAX_UPLOAD = 5 * 1024 * 1024  # an imported file, or pasted text


def page(ctx: AppContext, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return render(ctx, request, name, status, status_labels=STATUS_LABELS, **values)


def form_page(
    ctx: AppContext,
    request: Request,
    data: dict[str, Any],
    problems: Sequence[Problem] = (),
    case_id: int | None = None,
    status: int = 200,
    base_version: int | None = None,
) -> HTMLResponse:
    """The structured case form, filled with ``data`` and the ``problems`` found in it."""
    return page(
        ctx,
        request,
        "case_form.html",
        status,
        state=form_state(data, problems),
        sections=SECTIONS,
        condition_labels=CONDITION_LABELS,
        case_id=case_id,
        base_version=base_version,
    )


def safe_next(target: str | None) -> str:
    """Only a local path may follow the login (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    parts = urlsplit(target)
    return "/cases" if parts.scheme or parts.netloc else target


def problems_text(exc: InputInvalid) -> str:
    """The problems of a refused form, one after the other (a password is never quoted back)."""
    return "; ".join(f"{p.path}: {p.allowed}" if p.value is None else p.to_string() for p in exc.problems)


def text_items(form: FormData) -> list[tuple[str, str]]:
    """A form's text fields (uploads left out), in order, repeated names kept."""
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
