"""What the API and the web pages do with cases, shared by both: validate, assess, store.

Every read and write of a patient record runs inside :func:`decidua.app.audit.audited`, which writes exactly one
audit row with the outcome; access failures (``unauthenticated``, ``denied``) are recorded where they are
detected. Audit rows never hold patient data.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from decidua.adapters import fhir
from decidua.adapters.casefile import case_to_data, parse_case
from decidua.adapters.render import assessment_data
from decidua.adapters.store import (
    CaseStore,
    CaseVersion,
    NewAssessment,
    StaleVersion,
    StoredAssessment,
    StoreError,
)
from decidua.app.audit import AuditNote
from decidua.core.case import Case
from decidua.core.errors import CaseInvalid, Problem
from decidua.core.findings import Assessment
from decidua.engines.assess import assess
from decidua.knowledge.loader import KnowledgeBase

# matplotlib (the plots of the case page and the report) keeps global state: one figure at a time per process.
PLOT_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case version with the assessment stored for it under the knowledge base in force."""

    version: CaseVersion
    case: Case
    stored: StoredAssessment
    assessment: Assessment
    versions: list[CaseVersion] = field(default_factory=list)


class CaseService:
    def __init__(self, store: CaseStore, kb: KnowledgeBase, clock: Callable[[], dt.datetime]) -> None:
        self.store = store
        self.kb = kb
        self.clock = clock

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

    def import_bundle(self, bundle: object, by: int | None, note: AuditNote) -> tuple[CaseVersion, bool]:
        """A case from a FHIR Bundle: a new case, or the next version of the case with the same case id."""
        case = fhir.import_bundle(bundle)
        existing = self.store.find_case(case.case_id)
        if existing is None:
            return self.create(case_to_data(case), by, note), True
        note.case_id = existing.id
        return self.update(existing.id, case_to_data(case), by, note=note), False

    def export_bundle(self, case_id: int) -> dict[str, Any]:
        v = self.view(case_id)
        return fhir.export_bundle(v.case, v.assessment, self.kb)


__all__ = ["PLOT_LOCK", "CaseService", "CaseView", "StoreError"]
