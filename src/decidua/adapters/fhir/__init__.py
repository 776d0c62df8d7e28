"""HL7 FHIR R4 interchange: a case and its assessment as a Bundle, and a case back from such a Bundle.

Resources are built as JSON and validated with ``fhir.resources`` (its ``R4B`` models: fhir.resources 7 and later
ship R5 and R4B, and R4B 4.3.0 is a technical correction of R4 4.0.1 that leaves Patient, Observation, Condition,
DiagnosticReport and Bundle, the only resources used here, unchanged; decidua's JSON is therefore valid R4).
Pinning fhir.resources 6 for its R4 models would hold back pydantic 1, which the rest of decidua cannot use.

The Bundle (type ``collection``) holds:

* ``Patient``: identifier = the pseudonymous case id (system :data:`CASE_ID_SYSTEM`), birthDate when known;
* ``Condition``: one per recorded condition (decidua's own codes, ICD-10, ICD-11, SNOMED CT or free codes);
* one ``Observation`` per **lab result** (peripheral NK %, absolute count, subsets, cytotoxicity, uterine NK
  density, TSH), category ``laboratory``, coded with LOINC where a code exists (:data:`LAB_RESULTS`) and always
  with decidua's local code (system :data:`CODE_SYSTEM`, the case path, e.g. ``nk.peripheral.nk_percent``), the
  value as a UCUM ``valueQuantity`` (the unit as reported in ``unit``, its UCUM code in ``code``), the HL7
  interpretation of the knowledge-base rule that reads it and the rule's thresholds as ``referenceRange``;
* one ``Observation`` per **case section** (age, each pregnancy, each embryo transfer, each investigation,
  peripheral and uterine NK), the section's other fields as components and its lab results as ``hasMember``;
* **genotypes** in the HL7 Genomics Reporting style (profile :data:`GENOTYPE_PROFILE`): code LOINC 84413-4
  "Genotype display name", the GL String as ``valueCodeableConcept`` (system ``http://glstring.org``; ``text`` is
  the typing as given), the gene studied (LOINC 48018-6) as a component; the woman's KIR gene content keeps its
  genes present / absent / not tested as components;
* ``DiagnosticReport``: the assessment (code ``assessment``, the kb_version as identifier), whose results are
  one ``Observation`` per finding (rule id, status, HL7 interpretation, summary, citations and stance in notes)
  and the lab, section and genotype Observations.

``import_bundle`` reads the case back (export followed by import gives the same case). It also reads lab
Observations that carry only a LOINC code from :data:`LAB_RESULTS`. Problems name the resource and element
they come from, e.g. ``Observation/nk-peripheral-nk-percent.valueQuantity.unit (nk.peripheral.nk_percent.unit):
got 'cells/HPF'; allowed units: ...``.
"""

from __future__ import annotations

from decidua.adapters.fhir.codes import (
    CASE_ID_SYSTEM,
    CODE_SYSTEM,
    CONDITION_SYSTEMS,
    GENE_STUDIED,
    GENOTYPE_DISPLAY_NAME,
    GENOTYPE_PROFILE,
    GLSTRING,
    INTERPRETATION,
    KB_SYSTEM,
    LAB_RESULTS,
    LOINC,
    RULE_SYSTEM,
    UCUM,
    UCUM_CODES,
    LabCode,
)
from decidua.adapters.fhir.export import export_bundle
from decidua.adapters.fhir.read import import_bundle

__all__ = [
    "CASE_ID_SYSTEM",
    "CODE_SYSTEM",
    "CONDITION_SYSTEMS",
    "GENE_STUDIED",
    "GENOTYPE_DISPLAY_NAME",
    "GENOTYPE_PROFILE",
    "GLSTRING",
    "INTERPRETATION",
    "KB_SYSTEM",
    "LAB_RESULTS",
    "LOINC",
    "RULE_SYSTEM",
    "UCUM",
    "UCUM_CODES",
    "LabCode",
    "export_bundle",
    "import_bundle",
]
