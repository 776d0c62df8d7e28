"""The case use cases, written once for the API and the web pages: list, create, edit, read, import, export.

Each one writes exactly one audit row (:func:`decidua.app.audit.audited`, the action from
:class:`~decidua.app.audit.AuditAction`) with its outcome, failures included: the entry points only parse the
request, call one method and render what it returns. Audit rows never hold patient data.

Formats that need an adapter (a FHIR Bundle in, a report or a Bundle out) come in as functions: the reader is given
to the service when it is built, and a renderer is passed to :meth:`CaseService.export`, so that a render that
fails is audited as the failed read it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from decidua.app.audit import AuditAction, AuditNote, audited
from decidua.app.casefile import case_to_data, load_text, parse_case
from decidua.app.changes import Removal, removed
from decidua.app.labs import LabImport, merge_lab_values
from decidua.app.ports import (
    AuditRecord,
    CaseFilter,
    CaseNotFound,
    CaseRead,
    CaseStore,
    CaseSummary,
    CaseVersion,
    NewAssessment,
    StaleVersion,
    StoredAssessment,
    StoreError,
)
from decidua.app.presenters import assessment_data
from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, InputError, Problem
from decidua.core.findings import Assessment
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase

T = TypeVar("T")
CaseKey = int | str
"""A stored case named by its number (the database's, which the audit trail uses) or by its case id (the case
file's pseudonymous reference, a ``str``)."""
BundleReader = Callable[[object], Case]
LabReader = Callable[[str], LabImport]
"""Reads a laboratory message (HL7 v2 ORU^R01) into values; raises :class:`~decidua.core.errors.InputError`."""
"""Reads a FHIR Bundle (already parsed JSON) into a case; raises :class:`~decidua.core.errors.InputError`."""


class ImportRemoves(StoreError):
    """An import over a stored case that lacks what its latest version holds: nothing is stored unless the user
    asks to replace the case (the list says what would go)."""

    def __init__(self, version: int, removals: list[Removal]) -> None:
        self.version, self.removals = version, removals
        listed = "; ".join(map(str, removals[:10])) + (f"; and {len(removals) - 10} more" if len(removals) > 10 else "")
        super().__init__(
            f"the import lacks {len(removals)} thing(s) that version {version} of this case holds: {listed}; "
            "nothing was saved: import with replace to store it as the next version without them"
        )


@dataclass(frozen=True, slots=True, eq=False)
class CaseView:
    """A case version with the assessment stored for it under the knowledge base in force (``stored``: what every
    output shows), every version of the case and, when asked for, every assessment stored for it (``history``).

    The case as read (:attr:`case`) and the engine's result (:attr:`assessment`, for the report, FHIR and the
    plots) are made on first use: a read served from the stored assessment parses and assesses nothing.
    """

    version: CaseVersion
    stored: StoredAssessment
    kb: KnowledgeBase = field(repr=False)
    versions: list[CaseVersion] = field(default_factory=list)
    history: list[tuple[int, StoredAssessment]] = field(default_factory=list)  # filled when asked for
    parsed: Case | None = field(default=None, repr=False)
    assessed: Assessment | None = field(default=None, repr=False)

    @property
    def case(self) -> Case:
        """The version's case, as :func:`~decidua.app.casefile.parse_case` reads it."""
        if self.parsed is None:
            object.__setattr__(self, "parsed", parse_case(self.version.data))
        assert self.parsed is not None
        return self.parsed

    @property
    def assessment(self) -> Assessment:
        """The engine's assessment of :attr:`case` under :attr:`kb` (the one ``stored`` holds as data)."""
        if self.assessed is None:
            object.__setattr__(self, "assessed", assess(self.case, self.kb))
        assert self.assessed is not None
        return self.assessed


@dataclass(frozen=True, slots=True)
class VersionView:
    """A case version as it was entered, and every version of the case (numbers and dates for links)."""

    version: CaseVersion
    versions: list[CaseVersion]


@dataclass(frozen=True, slots=True)
class CasePage:
    """A page of the case list: its cases, how many match in all, and where the page starts."""

    cases: list[CaseSummary]
    total: int
    offset: int


@dataclass(frozen=True, slots=True)
class Saved:
    """What a create, edit or import did: the case as now stored, whether it is a new case, and whether anything
    was stored (an edit equal to the latest version stores nothing)."""

    view: CaseView
    created: bool
    changed: bool = True


class CaseService:
    """The case use cases over a :class:`~decidua.app.ports.CaseStore` and the knowledge base in force.

    ``by`` is always the number of the logged-in user (``None`` for the command line's own work).
    """

    def __init__(
        self,
        store: CaseStore,
        kb: KnowledgeBase,
        read_bundle: BundleReader | None = None,
        read_lab: LabReader | None = None,
    ) -> None:
        self.store = store
        self.kb = kb
        self.read_bundle = read_bundle
        self.read_lab = read_lab

    # --- reading -------------------------------------------------------------------------------------------

    def list_cases(
        self,
        by: int | None,
        search: str | None,
        limit: int,
        offset: int = 0,
        *,
        clamp: bool = False,
        where: CaseFilter | None = None,
    ) -> CasePage:
        """``limit`` cases (newest first) from ``offset`` matching ``search`` in their case id and the statuses
        ``where`` asks for, and how many match in all; each with the statuses of its latest assessment as stored
        (nothing is re-assessed). With ``clamp`` an offset past the end shows the last page instead of nothing (the
        pages' links)."""
        with audited(self.store, by, AuditAction.CASE_LIST):
            total = self.store.count_cases(search, where)
            if clamp:
                offset = min(offset, max(0, (total - 1) // limit * limit))
            return CasePage(self.store.list_cases(search, limit, offset, where), total, offset)

    def view(self, case_id: CaseKey, by: int | None, version: int | None = None, *, history: bool = False) -> CaseView:
        """A version (the latest by default) with its assessment under the knowledge base in force; with
        ``history``, every assessment stored for the case too.

        An assessment made under another knowledge-base version is kept; a new one is stored next to it.
        """
        detail = None if version is None else f"version {version}"
        with self._viewed(by, AuditAction.CASE_READ, case_id, version, detail=detail, history=history, last=True) as v:
            return v

    def assessment(self, case_id: CaseKey, by: int | None, version: int | None = None) -> CaseView:
        """The assessment of a version (the latest by default), as :meth:`view` (audited as an assessment read)."""
        with self._viewed(by, AuditAction.CASE_ASSESSMENT, case_id, version, last=True) as view:
            return view

    def version(
        self,
        case_id: CaseKey,
        by: int | None,
        number: int | None = None,
        *,
        action: AuditAction = AuditAction.CASE_READ,
        purpose: str | None = None,
    ) -> VersionView:
        """One stored version as it was entered (the latest by default), without assessing it, and the list of
        versions. ``purpose`` goes into the audit row (e.g. ``edit form``); ``action`` is a read unless it is an
        export of the case file."""
        with audited(self.store, by, action, case_id if isinstance(case_id, int) else None) as note:
            detail = purpose or (f"version {number}" if number is not None else None)
            read, version = self._read(note, case_id, number, None, detail, last=True)
            return VersionView(version, read.versions)

    def versions(self, case_id: CaseKey, by: int | None) -> list[CaseVersion]:
        """Every version of a case, oldest first."""
        with audited(self.store, by, AuditAction.CASE_VERSIONS, case_id if isinstance(case_id, int) else None) as n:
            return self._read(n, case_id, last=True)[0].versions

    def assessments(self, case_id: CaseKey, by: int | None) -> list[tuple[int, StoredAssessment]]:
        """Every stored assessment of a case with the version number it assessed."""
        with self._audited(by, AuditAction.CASE_ASSESSMENTS, case_id) as (_, number):
            self.store.get_case(number)
            return self.store.list_assessments(number)

    def export(
        self,
        case_id: CaseKey,
        by: int | None,
        action: AuditAction,
        render: Callable[[CaseView], T],
        *,
        history: bool = False,
    ) -> T:
        """The latest version (as :meth:`view`) rendered by ``render`` (a report, a FHIR Bundle, a page with
        plots), audited as ``action``: a render that fails leaves a failed row."""
        with self._viewed(by, action, case_id, history=history) as view:
            return render(view)

    # --- writing -------------------------------------------------------------------------------------------

    def create(self, data: object, by: int | None, problems: Iterable[Problem] = ()) -> CaseView:
        """Validate, assess and store a new case (version 1 with its assessment, in one transaction).

        ``problems`` found while reading the input (a form's fields) refuse it before anything else.
        """
        with audited(self.store, by, AuditAction.CASE_CREATE) as note:
            found = list(problems)
            if found:
                raise CaseInvalid(found)
            return self._create(data, by, note)

    def update(
        self,
        case_id: CaseKey,
        data: object,
        by: int | None,
        base_version: int | None = None,
        problems: Iterable[Problem] = (),
    ) -> Saved:
        """Validate, assess and store the next version of a case; the earlier versions stay as they were.

        With ``base_version`` (the version the edit started from) the edit is refused if another one came first.
        A case equal to the latest version is not stored again (``changed`` is false; the audit row says
        ``unchanged``). ``problems`` found while reading the input refuse it, once the case is known to exist.
        """
        with self._audited(by, AuditAction.CASE_UPDATE, case_id) as (note, number):
            found = list(problems)
            if found:
                self.store.get_case(number)
                raise CaseInvalid(found)
            return self._update(number, data, by, note, base_version)

    def import_bundle(
        self, bundle: object, by: int | None, *, base_version: int | None = None, replace: bool = False
    ) -> Saved:
        """A case from a FHIR Bundle: a new case, or the next version of the case with the same case id (as
        :meth:`import_text`)."""
        with audited(self.store, by, AuditAction.CASE_FHIR_IMPORT) as note:
            return self._upsert(self._read_bundle(bundle), by, note, base_version, replace)

    def import_text(
        self, text: str, by: int | None, *, base_version: int | None = None, replace: bool = False
    ) -> Saved:
        """A pasted or uploaded file: a case file (YAML or JSON) or a FHIR Bundle (JSON with ``resourceType:
        Bundle``). Either is a new case, or the next version of the case with its case id: then, with
        ``base_version``, refused if the case changed since that version (:class:`StaleVersion`), and refused if it
        lacks anything the latest version holds (:class:`ImportRemoves`, listing each) unless ``replace``."""
        with audited(self.store, by, AuditAction.CASE_IMPORT) as note:
            data = load_text(text, "yaml", "the import") if text.strip() else None  # YAML reads JSON too
            if data is None:
                raise InputError("paste a case file or a FHIR Bundle, or choose a file")
            if isinstance(data, dict) and data.get("resourceType") == "Bundle":
                note.detail = "fhir"
                return self._upsert(self._read_bundle(data), by, note, base_version, replace)
            return self._upsert(parse_case(data), by, note, base_version, replace)

    def import_lab(
        self, case_id: CaseKey, text: str, by: int | None, *, skip_unread: bool = False, base_version: int | None = None
    ) -> tuple[Saved, LabImport]:
        """Laboratory results merged into the next version of a case (a new peripheral NK sample replaces the
        earlier one's section). A message with segments that could not be read is refused unless ``skip_unread``."""
        with self._audited(by, AuditAction.CASE_LAB_IMPORT, case_id) as (note, number):
            current = self.store.get_version(number)
            if self.read_lab is None:
                raise InputError("this service was built without a laboratory-message reader")
            read = self.read_lab(text)
            if read.unread and not skip_unread:
                raise InputError(
                    f"{len(read.unread)} segment(s) not read ({'; '.join(read.unread)}); fix them, or import the "
                    "rest with skip_unread"
                )
            if not read.values:
                raise InputError("the message holds no result decidua reads")
            merged = merge_lab_values(current.data, read.values)
            return self._update(number, merged, by, note, base_version), read

    # --- the steps ------------------------------------------------------------------------------------------

    @contextmanager
    def _audited(self, by: int | None, action: AuditAction, key: CaseKey) -> Iterator[tuple[AuditNote, int]]:
        """:func:`audited` for a use case on one stored case, named by number or case id: the block gets the note
        and the case's number (a case id that names no case is a :class:`CaseNotFound`, audited as such)."""
        with audited(self.store, by, action, key if isinstance(key, int) else None) as note:
            if isinstance(key, int):
                yield note, key
                return
            found = self.store.find_case(key)
            if found is None:
                raise CaseNotFound(f"no case with case id {key!r}")
            note.case_id = found.id
            yield note, found.id

    def _read(
        self,
        note: AuditNote,
        key: CaseKey,
        version: int | None = None,
        kb_version: str | None = None,
        detail: str | None = None,
        *,
        last: bool = False,
    ) -> tuple[CaseRead, CaseVersion]:
        """A case named by number or case id, in one read of the store (:meth:`CaseStore.read_case`), and the
        version asked for; the case's number and ``detail`` noted for the audit row. A case or version that does
        not exist is a :class:`CaseNotFound`.

        With ``last`` (nothing that could fail follows in the use case) the store writes the ``ok`` audit row with
        the read when it found all it was asked for (the use case's one row: :func:`audited` writes no other)."""
        record = AuditRecord(note.user_id, note.action, detail) if last else None
        read = self.store.read_case(key, version, kb_version, record)
        if read is None:
            raise CaseNotFound(f"no case {key}" if isinstance(key, int) else f"no case with case id {key!r}")
        note.case_id, note.detail, note.written = read.case_id, detail, read.audited
        if read.version is None:
            raise CaseNotFound(f"no case {read.case_id}" + (f" version {version}" if version is not None else ""))
        return read, read.version

    @contextmanager
    def _viewed(
        self,
        by: int | None,
        action: AuditAction,
        key: CaseKey,
        version: int | None = None,
        *,
        detail: str | None = None,
        history: bool = False,
        last: bool = False,
    ) -> Iterator[CaseView]:
        """A version (the latest by default) with its assessment under the knowledge base in force, for a block
        audited as ``action``: one read of the store, plus an assessment stored only when the version has none
        under this knowledge base yet (an assessment under another knowledge base is kept; the new one is stored
        next to it). The stored assessment is served as it is, never recomputed. ``last``: the block does nothing
        that could fail (then a read served from the store writes its audit row with it; see :meth:`_read`)."""
        with audited(self.store, by, action, key if isinstance(key, int) else None) as note:
            read, chosen = self._read(note, key, version, self.kb.kb_version, detail, last=last and not history)
            stored, case, result = read.assessment, None, None
            if stored is None:  # none under the knowledge base in force yet (a new one, or a version never assessed)
                case = parse_case(chosen.data)
                result, new = self._assess(case)
                stored = self.store.add_assessment(chosen.id, new)
            past = self.store.list_assessments(read.case_id) if history else []
            yield CaseView(chosen, stored, self.kb, read.versions, past, case, result)

    def _assess(self, case: Case) -> tuple[Assessment, NewAssessment]:
        result = assess(case, self.kb)
        return result, NewAssessment(self.kb.kb_version, assessment_data(result, self.kb))

    def _stored(self, version: CaseVersion, new: NewAssessment) -> StoredAssessment:
        stored = self.store.get_assessment(version.id, self.kb.kb_version)
        return stored if stored is not None else self.store.add_assessment(version.id, new)

    def _view(self, case_id: int) -> CaseView:
        """The latest version as a read shows it (after an edit that stored nothing), not audited apart."""
        read = self.store.read_case(case_id, None, self.kb.kb_version)
        if read is None or read.version is None:
            raise CaseNotFound(f"no case {case_id}")
        stored = read.assessment
        if stored is None:
            stored = self._stored(read.version, self._assess(parse_case(read.version.data))[1])
        return CaseView(read.version, stored, self.kb, read.versions)

    def _create(self, data: object, by: int | None, note: AuditNote) -> CaseView:
        case = parse_case(data)
        result, new = self._assess(case)
        version = self.store.create_case(case.case_id, case_to_data(case), by, new, note.record())
        note.case_id, note.written = version.case_id, True
        return CaseView(version, self._stored(version, new), self.kb, [version], parsed=case, assessed=result)

    def _update(
        self,
        case_id: int,
        data: object,
        by: int | None,
        note: AuditNote,
        base_version: int | None = None,
        *,
        removals_allowed: bool = True,
    ) -> Saved:
        current = self.store.get_version(case_id)
        if base_version is not None and base_version != current.version:
            raise StaleVersion(base_version, current.version)
        case = parse_case(data)
        if case.case_id != current.reference:
            problem = Problem(
                "case_id", case.case_id, f"the case id of this case is {current.reference!r}; it cannot change"
            )
            raise CaseInvalid([problem])
        stored = case_to_data(case)
        if stored == current.data:
            note.detail = "unchanged"
            return Saved(self._view(case_id), created=False, changed=False)
        if not removals_allowed:
            lost = removed(current.data, stored)
            if lost:
                raise ImportRemoves(current.version, lost)
        result, new = self._assess(case)
        version = self.store.add_version(case_id, stored, by, new, base_version, note.record())
        note.written = True
        versions = self.store.list_versions(case_id)
        view = CaseView(version, self._stored(version, new), self.kb, versions, parsed=case, assessed=result)
        return Saved(view, created=False)

    def _upsert(self, case: Case, by: int | None, note: AuditNote, base_version: int | None, replace: bool) -> Saved:
        existing = self.store.find_case(case.case_id)
        if existing is None:
            return Saved(self._create(case_to_data(case), by, note), created=True)
        note.case_id = existing.id
        return self._update(existing.id, case_to_data(case), by, note, base_version, removals_allowed=replace)

    def _read_bundle(self, bundle: object) -> Case:
        if self.read_bundle is None:
            raise InputError("this service was built without a FHIR reader; FHIR Bundles cannot be imported")
        return self.read_bundle(bundle)


__all__ = [
    "BundleReader",
    "CaseKey",
    "CasePage",
    "CaseService",
    "CaseView",
    "ImportRemoves",
    "LabReader",
    "Saved",
    "VersionView",
]
