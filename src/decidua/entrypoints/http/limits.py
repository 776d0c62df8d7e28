"""Request body limits, in one place: refused with 413 from ``Content-Length`` or while the body streams in,
before anything parses it (a 50 MB JSON body used to hold ~190 MB of memory for seconds before its 422).

The sizes are settings (:class:`decidua.entrypoints.http.settings.Settings`): a JSON body (a case, a login, an
HL7 message), a FHIR Bundle, and the pages' uploads (a case file or an HL7 message, with room for the form around
it). A refused request gets the usual error shape (JSON under ``/api``, a page elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FHIR_IMPORT = "/api/fhir/import"
UPLOAD_PATHS = ("/cases/import",)  # and /cases/{number}/lab
FORM_OVERHEAD = 64 * 1024  # the multipart envelope and the other fields of an upload form


@dataclass(frozen=True, slots=True)
class BodyLimits:
    json: int  # bytes of a JSON body or a form without a file
    fhir: int  # bytes of a FHIR Bundle to import
    upload: int  # bytes of a file (or pasted text) on the pages' import and lab forms

    def for_path(self, path: str) -> int:
        if path == FHIR_IMPORT:
            return self.fhir
        if path in UPLOAD_PATHS or (path.startswith("/cases/") and path.endswith("/lab")):
            return self.upload + FORM_OVERHEAD
        return self.json


class BodyTooLarge(HTTPException):
    """413, raised where the application reads the body: its error handler answers in the route's format."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes for this address")


class BodyLimit:
    """Refuses a body over its path's limit: at once when ``Content-Length`` says so, else when the bytes
    received pass it (a chunked body). Nothing is read past the limit."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        try:
            too_large = declared is not None and int(declared) > limit
        except ValueError:
            too_large = False  # the server refuses a malformed Content-Length itself
        received = 0

        async def limited() -> Message:
            nonlocal received
            if too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


__all__ = ["BodyLimit", "BodyLimits", "BodyTooLarge"]
