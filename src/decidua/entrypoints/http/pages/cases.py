"""The case pages: list with search, the structured form (new and edit), import, the case view, a version,
reports, FHIR and case-file downloads. Each route parses the form, calls one case use case
(:class:`decidua.app.cases.CaseService`, which audits it) and renders a page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from decidua.adapters import hl7
from decidua.adapters.report.plots import PLOT_LOCK
from decidua.adapters.store import DuplicateCase, StaleVersion
from decidua.app.accounts import Login
from decidua.app.audit import AuditAction
from decidua.app.cases import CaseView, ImportRemoves
from decidua.app.ports import TRIAGE_COLUMNS, CaseFilter
from decidua.app.presenters import TRIAGE_TITLES, WORDS, not_indicated_heading, triage_filter_words
from decidua.core.errors import CaseInvalid, InputError, Problem
from decidua.core.findings import Status
from decidua.entrypoints.http.deps import LOGGED_IN, MAX_ID, CaseId, Ctx, VersionNo, patient
from decidua.entrypoints.http.pages.common import MAX_UPLOAD, form_page, page, text_items
from decidua.entrypoints.http.pages.forms import form_to_data
from decidua.entrypoints.http.pages.views import grouped_findings, plots
from decidua.entrypoints.http.shared import fhir_response, report_response

PAGE_SIZE = 50  # cases per page of the case list
PageNo = Annotated[int, Query(alias="page", ge=1, le=MAX_ID, description="The page of the list, from 1.")]

router = APIRouter(prefix="/cases", include_in_schema=False)


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


ANY_NK_FLAGGED = "flagged"  # ``nk=flagged``: the blood or the uterine NK status is flagged


def _status(value: str | None) -> Status | None:
    """A status filter from the query (``flagged``, ``within_range``, ``not_assessed``); anything else is "any"."""
    return Status(value) if value in tuple(Status) else None


def case_filter(request: Request) -> tuple[CaseFilter, dict[str, str]]:
    """The case list's status filter from the query string, and the query parameters that give it (for links)."""
    params = request.query_params
    where = CaseFilter(
        **{name: _status(params.get(name)) for name in TRIAGE_COLUMNS},
        any_nk_flagged=params.get("nk") == ANY_NK_FLAGGED,
    )
    query = {name: status.value for name, status in where.statuses().items()}
    if where.any_nk_flagged:
        query["nk"] = ANY_NK_FLAGGED
    return where, query


def quick_filters(words: dict[str, dict[Status, str]]) -> list[tuple[str, dict[str, str]]]:
    """The filters a clinician triages with most, one link each: (label, query parameters)."""
    flagged, missing = Status.FLAGGED.value, Status.NOT_ASSESSED.value
    return [
        (f"{TRIAGE_TITLES['rpl']} {words['rpl'][Status.FLAGGED]}", {"rpl": flagged}),
        (f"{TRIAGE_TITLES['rif']} {words['rif'][Status.FLAGGED]}", {"rif": flagged}),
        ("any NK flagged", {"nk": ANY_NK_FLAGGED}),
        (f"NK {words['blood_nk'][Status.NOT_ASSESSED]}", {"blood_nk": missing, "uterine_nk": missing}),
        (f"{TRIAGE_TITLES['rpl']} {words['rpl'][Status.NOT_ASSESSED]}", {"rpl": missing}),
    ]


@router.get("")
def case_list(
    request: Request, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_LIST)], q: str = "", page_no: PageNo = 1
) -> HTMLResponse:
    """Cases, newest first, :data:`PAGE_SIZE` to a page, with the statuses of their latest assessment as stored
    (RPL, RIF, blood and uterine NK, when assessed); ``q`` searches the case id, ``rpl``, ``rif``, ``blood_nk`` and
    ``uterine_nk`` filter by status (``flagged``, ``within_range``, ``not_assessed``) and ``nk=flagged`` keeps the
    cases with either NK status flagged. The database filters and pages; nothing is re-assessed."""
    where, query = case_filter(request)
    found = ctx.service.list_cases(
        who.user.id, q or None, PAGE_SIZE, (page_no - 1) * PAGE_SIZE, clamp=True, where=where
    )
    first = found.offset + 1 if found.cases else 0
    words = triage_filter_words(ctx.kb)
    return page(
        ctx,
        request,
        "cases.html",
        cases=found.cases,
        q=q,
        where=where,
        query=query,
        filtered=where.active(),
        columns=[(name, TRIAGE_TITLES[name], words[name]) for name in TRIAGE_COLUMNS],
        quick=quick_filters(words),
        any_nk_flagged=ANY_NK_FLAGGED,
        total=found.total,
        page_no=found.offset // PAGE_SIZE + 1,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        first=first,
        last=first + len(found.cases) - 1 if found.cases else 0,
    )


@router.get("/new")
def new_case(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
    return form_page(ctx, request, {"woman": {}})


@router.post("/new")
async def create_case(request: Request, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_CREATE)]) -> Response:
    data, problems = form_to_data(text_items(await request.form()))
    try:
        view = await run_in_threadpool(ctx.service.create, data, who.user.id, problems)
    except CaseInvalid as exc:
        return form_page(ctx, request, data, exc.problems, status=422)
    except DuplicateCase as exc:
        return form_page(ctx, request, data, [Problem("case_id", data.get("case_id"), str(exc))], status=409)
    return RedirectResponse(f"/cases/{view.version.case_id}", status_code=303)


@router.get("/import")
def import_form(request: Request, ctx: Ctx, who: Annotated[Login, LOGGED_IN]) -> HTMLResponse:
    return page(ctx, request, "import.html", text="", problems=[], error=None)


@router.post("/import")
async def import_case(request: Request, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_IMPORT)]) -> Response:
    """A case file (YAML or JSON), or a FHIR Bundle, pasted or uploaded."""
    form = await request.form(max_part_size=MAX_UPLOAD + 1)  # pasted text up to the same limit as a file
    text = str(form.get("text") or "")
    upload = form.get("file")
    raw = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) and upload.filename else None
    await form.close()
    if raw is not None and len(raw) > MAX_UPLOAD:
        return page(ctx, request, "import.html", 413, text="", problems=[], error="The file is over 5 MB.")
    if raw is not None:
        text = raw.decode("utf-8", errors="replace")
    replace = form.get("replace") == "on"
    try:
        saved = await run_in_threadpool(partial(ctx.service.import_text, text, who.user.id, replace=replace))
    except CaseInvalid as exc:
        error = str(exc).splitlines()[0]
        return page(ctx, request, "import.html", 422, text=text, problems=exc.problems, error=error)
    except ImportRemoves as exc:
        error = f"The import lacks what version {exc.version} of this case holds; nothing was saved."
        return page(ctx, request, "import.html", 409, text=text, problems=[], removals=exc.removals, error=error)
    except (InputError, DuplicateCase, StaleVersion) as exc:
        status = 422 if isinstance(exc, InputError) else 409
        return page(ctx, request, "import.html", status, text=text, problems=[], error=str(exc))
    return RedirectResponse(f"/cases/{saved.view.version.case_id}", status_code=303)


@router.get("/{case_id}")
def case_view(
    request: Request, case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ)]
) -> HTMLResponse:
    def with_plots(view: CaseView) -> tuple[CaseView, dict[str, str]]:
        with PLOT_LOCK:
            return view, plots(view.case, view.assessment, ctx.kb)

    view, svgs = ctx.service.export(case_id, who.user.id, AuditAction.CASE_READ, with_plots, history=True)
    result = view.stored.result
    return page(
        ctx,
        request,
        "case_view.html",
        view=view,
        result=result,
        groups=grouped_findings(result, ctx.kb),
        plots=svgs,
        refs={r["key"]: i + 1 for i, r in enumerate(result.get("references", []))},
        not_indicated_heading=not_indicated_heading(result["pathway"]["workup_indicated"]),
        words=WORDS,
        case_yaml=_yaml(view.version.data),
        history=view.history,
    )


@router.get("/{case_id}/versions/{version}")
def version_view(
    request: Request,
    case_id: CaseId,
    version: VersionNo,
    ctx: Ctx,
    who: Annotated[Login, patient(AuditAction.CASE_READ)],
) -> HTMLResponse:
    read = ctx.service.version(case_id, who.user.id, version)
    return page(ctx, request, "version.html", v=read.version, text=_yaml(read.version.data), versions=read.versions)


@router.get("/{case_id}/edit")
def edit_form(
    request: Request, case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ)]
) -> HTMLResponse:
    v = ctx.service.version(case_id, who.user.id, purpose="edit form").version
    return form_page(ctx, request, v.data, case_id=case_id, base_version=v.version)


@router.post("/{case_id}/edit")
async def update_case(
    request: Request, case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_UPDATE)]
) -> Response:
    form = await request.form()
    data, problems = form_to_data(text_items(form))
    raw_base = str(form.get("base_version", ""))
    base = int(raw_base) if re.fullmatch(r"[0-9]{1,9}", raw_base) else None
    if base is None:
        problems.append(Problem("base_version", raw_base, "the version the edit started from; reopen the form"))
    try:
        await run_in_threadpool(ctx.service.update, case_id, data, who.user.id, base, problems)
    except CaseInvalid as exc:
        return form_page(ctx, request, data, exc.problems, case_id=case_id, status=422, base_version=base)
    except StaleVersion as exc:
        # What was typed stays on the page; saving it again now deliberately replaces the newer version.
        problem = Problem("base_version", exc.base, str(exc) + "; or save again to store what is shown here")
        return form_page(ctx, request, data, [problem], case_id=case_id, status=409, base_version=exc.latest)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/{case_id}/report.pdf")
def report_pdf(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_PDF)]) -> Response:
    return report_response(ctx, who, case_id, "pdf")


@router.get("/{case_id}/report.html")
def report_html(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_REPORT_HTML)]) -> Response:
    return report_response(ctx, who, case_id, "html")


@router.get("/{case_id}/fhir.json")
def fhir_export(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_FHIR_EXPORT)]) -> Response:
    return fhir_response(ctx, who, case_id)


@router.get("/{case_id}/case.yaml")
def case_file(case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_EXPORT)]) -> Response:
    v = ctx.service.version(case_id, who.user.id, action=AuditAction.CASE_EXPORT).version
    return Response(
        _yaml(v.data),
        media_type="application/yaml",
        headers={"content-disposition": f'attachment; filename="decidua-case-{case_id}-v{v.version}.yaml"'},
    )


@router.get("/{case_id}/lab")
def lab_form(
    request: Request, case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_READ)]
) -> HTMLResponse:
    v = ctx.service.version(case_id, who.user.id, purpose="lab import form").version
    return page(ctx, request, "lab_import.html", v=v, text="", error=None, problems=[])


@router.post("/{case_id}/lab")
async def import_lab(
    request: Request, case_id: CaseId, ctx: Ctx, who: Annotated[Login, patient(AuditAction.CASE_LAB_IMPORT)]
) -> Response:
    """An HL7 v2 ORU^R01 message, pasted or uploaded, merged into the next version of the case."""
    form = await request.form(max_part_size=MAX_UPLOAD + 1)
    text = str(form.get("text") or "")
    upload = form.get("file")
    raw = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) and upload.filename else None
    skip = form.get("skip_unread") == "yes"
    await form.close()

    async def again(status: int, error: str, problems: Sequence[Problem] = ()) -> HTMLResponse:
        read = await run_in_threadpool(ctx.service.version, case_id, who.user.id, purpose="lab import form")
        values = {"v": read.version, "text": text, "error": error, "problems": problems}
        return page(ctx, request, "lab_import.html", status, **values)

    if raw is not None and len(raw) > MAX_UPLOAD:
        return await again(413, "The file is over 5 MB.")
    try:
        if raw is not None:
            text = hl7.decode_message(raw, "the uploaded message")  # by its MSH-18 character set
        await run_in_threadpool(ctx.service.import_lab, case_id, text, who.user.id, skip_unread=skip)
    except CaseInvalid as exc:
        return await again(422, str(exc).splitlines()[0], exc.problems)
    except InputError as exc:
        return await again(422, str(exc))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
