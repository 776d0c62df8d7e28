"""Request and response bodies of the JSON API (pydantic stays here, at the edge): Base / Create / Public."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from decidua.adapters.store import Role
from decidua.app.accounts import MAX_EMAIL_LENGTH, MIN_PASSWORD_LENGTH, check_email


class ProblemPublic(BaseModel):
    """One thing wrong with the input: where (a case path, e.g. ``nk.peripheral.nk_percent``), what, what is allowed."""

    path: str
    value: Any = None
    allowed: str


class ErrorPublic(BaseModel):
    detail: str
    problems: list[ProblemPublic] = []


# --- cases ---
class CaseBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: dict[str, Any] = Field(
        description="The case file as JSON (the same format as `decidua assess`; JSON Schema at /api/schema/case)."
    )


class CaseCreate(CaseBase):
    """A new case; its ``case.case_id`` must not be in use."""


class CaseUpdate(CaseBase):
    """The next version of a case (the earlier versions are kept); ``case.case_id`` cannot change."""

    base_version: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="The version this edit started from: if the case has changed since, nothing is saved (409).",
    )


CASE_ID = Field(description="The case file's pseudonymous case id, which names the case in the API's paths.")
NUMBER = Field(description="The database's number of the case: the audit trail names cases by it.")


class StatusPublic(BaseModel):
    status: str = Field(description="flagged, within_range or not_assessed.")
    word: str = Field(description="The clinician's word for it, by rule kind (met / not met, above / not above, ...).")


class TriagePublic(BaseModel):
    """The statuses of the newest stored assessment of the latest version (never re-assessed for the list)."""

    rpl: StatusPublic
    rif: StatusPublic
    blood_nk: StatusPublic
    uterine_nk: StatusPublic
    kb_version: str | None = Field(description="The knowledge base of that assessment (None: not assessed).")
    assessed_at: dt.datetime | None


class CaseSummaryPublic(BaseModel):
    case_id: str = CASE_ID
    number: int = NUMBER
    latest_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    triage: TriagePublic


class CaseVersionPublic(BaseModel):
    case_id: str = CASE_ID
    version: int
    created_at: dt.datetime
    created_by: int | None = Field(description="The number of the user who stored it (None: the command line).")
    case: dict[str, Any]


class AssessmentPublic(BaseModel):
    case_id: str = CASE_ID
    version: int = Field(description="The case version that was assessed.")
    kb_version: str
    created_at: dt.datetime
    result: dict[str, Any] = Field(description="The assessment, as `decidua assess --format json` prints it.")


class CasePublic(BaseModel):
    case_id: str = CASE_ID
    number: int = NUMBER
    version: CaseVersionPublic
    assessment: AssessmentPublic
    versions: list[int]


class CaseSavedPublic(BaseModel):
    """What a create, an edit or an import stored: the same shape for each."""

    created: bool = Field(description="True for a new case, False for the next version of an existing one.")
    changed: bool = Field(description="False when the input equals the latest version: nothing was stored.")
    case: CasePublic


class LabImportCreate(BaseModel):
    """An HL7 v2 ORU^R01 message with the case's laboratory results (LOINC-coded: the codes read are listed in the
    laboratory guide, docs/laboratory-guide.md)."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(max_length=1_000_000, description="The message, segments separated by CR or LF.")
    skip_unread: bool = Field(False, description="Import what was read even when some OBX segments were not.")
    base_version: int | None = Field(None, ge=1, description="The version the import starts from (409 if older).")


class LabImportPublic(CaseSavedPublic):
    read: int = Field(description="How many results were set.")
    unread: list[str] = Field(description="Each segment that was not read, and why.")


# --- users and sessions ---
class UserBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=MAX_EMAIL_LENGTH)
    role: Role = Role.CLINICIAN


class UserCreate(UserBase):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value)


class UserPublic(UserBase):
    id: int
    active: bool
    created_at: dt.datetime


class UserPatch(BaseModel):
    """What an admin changes about a user: activity, role, or both."""

    model_config = ConfigDict(extra="forbid")

    active: bool | None = Field(None, description="False: the user can no longer log in; their sessions end.")
    role: Role | None = None


class PasswordChange(BaseModel):
    """A user's own password change: the current password, then the new one (12 characters or more)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordReset(BaseModel):
    """An admin sets a user's password (a forgotten password, a lockout): the user's sessions end."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=1024)


class LoginCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class SessionPublic(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="Send it back as the X-CSRF-Token header on every POST, PUT, PATCH, DELETE.")
    idle_timeout_minutes: float


class AuditPublic(BaseModel):
    id: int
    at: dt.datetime
    user_id: int | None
    action: str
    case_number: int | None = Field(description="The case's number (`number` in the case answers); never its case id.")
    outcome: str
    detail: str | None


class HealthPublic(BaseModel):
    status: str
    kb_version: str
    database: str
