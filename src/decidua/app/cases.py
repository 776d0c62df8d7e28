"""The case use cases, written once for the API, the web pages and the command line: validate, assess, store,
read, import.

Every read and write of a patient record runs inside :func:`decidua.app.audit.audited` (in the entry point, which
knows the user and the action), which writes exactly one audit row with the outcome; the note passed here says
which case was touched and how. Audit rows never hold patient data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decidua.app.audit import AuditNote
from decidua.app.casefile import case_to_data, parse_case
from decidua.app.ports import (
    CaseStore,
    CaseVersion,
    NewAssessment,
    StaleVersion,
    StoredAssessment,
)
from decidua.app.presenters import assessment_data
from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, Problem
from decidua.core.findings import Assessment
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case version with the assessment stored for it under the knowledge base in force."""

    version: CaseVersion
    case: Case
    stored: StoredAssessment
    assessment: Assessment
    versions: list[CaseVersion] = field(default_factory=list)


class CaseService:
    """The case use cases over a :class:`~decidua.app.ports.CaseStore` and the knowledge base in force."""

    def __init__(self, store: CaseStore, kb: KnowledgeBase) -> None:
        self.store = store
        self.kb = kb

    def _assess(self, case: Case) -> tuple[Assessment, NewAssessment]:
        result = assess(case, self.kb)
        return result, NewAssessment(self.kb.kb_version, assessment_data(result, self.kb))

    def create(self, data: object, by: int | None, note: AuditNote | None = None) -> CaseVersion:
        """Validate, assess and store a new case (version 1 with its assessment, in one transaction)."""
        case = parse_case(data)
        _, new = self._assess(case)
        version = self.store.create_case(case.case_id, case_to_data(case), by, new)
        if note is not None:
            note.case_id = version.case_id
        return version

    def update(
        self,
        case_id: int,
        data: object,
        by: int | None,
        base_version: int | None = None,
        note: AuditNote | None = None,
    ) -> CaseVersion:
        """Validate, assess and store the next version of a case; the earlier versions stay as they were.

        With ``base_version`` (the version the edit started from) the edit is refused if another one came first.
        A case equal to the latest version is not stored again: the latest version is returned (and the audit
        note says ``unchanged``).
        """
        current = self.store.get_version(case_id)
        if base_version is not None and base_version != current.version:
            raise StaleVersion(base_version, current.version)
        case = parse_case(data)
        if case.case_id != current.reference:
            raise CaseInvalid(
                [
                    Problem(
                        "case_id", case.case_id, f"the case id of this case is {current.reference!r}; it cannot change"
                    )
                ]
            )
        stored = case_to_data(case)
        if stored == current.data:
            if note is not None:
                note.detail = "unchanged"
            return current
        _, new = self._assess(case)
        return self.store.add_version(case_id, stored, by, new, base_version)

    def view(self, case_id: int, version: int | None = None) -> CaseView:
        """A version (the latest by default) with its assessment under the knowledge base in force.

        An assessment made under another knowledge-base version is kept; a new one is stored next to it.
        """
        stored_version = self.store.get_version(case_id, version)
        case = parse_case(stored_version.data)
        result, new = self._assess(case)
        stored = self.store.get_assessment(stored_version.id, self.kb.kb_version)
        if stored is None:
            stored = self.store.add_assessment(stored_version.id, new)
        return CaseView(stored_version, case, stored, result, self.store.list_versions(case_id))

    def import_case(self, case: Case, by: int | None, note: AuditNote) -> tuple[CaseVersion, bool]:
        """A case read from another format (a FHIR Bundle): a new case, or the next version of the case with the
        same case id. ``True`` when it created the case."""
        existing = self.store.find_case(case.case_id)
        if existing is None:
            return self.create(case_to_data(case), by, note), True
        note.case_id = existing.id
        return self.update(existing.id, case_to_data(case), by, note=note), False


__all__ = ["CaseService", "CaseView"]
