"""The code systems, LOINC and UCUM codes decidua writes and reads, and the small builders of codings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CODE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua-observation"
RULE_SYSTEM = "https://decidua.invalid/fhir/CodeSystem/decidua-rule"
CASE_ID_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/case-id"
KB_SYSTEM = "https://decidua.invalid/fhir/NamingSystem/kb-version"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
GLSTRING = "http://glstring.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GENOTYPE_PROFILE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/genotype"
CONDITION_SYSTEMS = {
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "icd11": "http://id.who.int/icd/release/11/mms",
    "snomed": "http://snomed.info/sct",
    "other": "https://decidua.invalid/fhir/CodeSystem/free-text-condition",
}

# LOINC codes used (checked against LOINC's published names, release 2.82; see the README):
HGNC = "http://www.genenames.org"  # the HL7 Genomics Reporting IG's system for HGNC gene ids (since 2023)
# HGNC ids: HLA-C checked against the NMDP HLA Reporting IG's value set; HLA-C and the KIR genes against three
# copies of HGNC's complete gene set (2024, 2025, 2026) that agree. KIR2DL5 (the A/B paralogues not told apart)
# is an alias of both KIR2DL5A and KIR2DL5B in HGNC, so it has no one id and is given by name only.
HGNC_GENES = {
    "HLA-C": "HGNC:4933",
    "KIR2DL1": "HGNC:6329",
    "KIR2DL2": "HGNC:6330",
    "KIR2DL3": "HGNC:6331",
    "KIR2DL4": "HGNC:6332",
    "KIR2DL5A": "HGNC:16345",
    "KIR2DL5B": "HGNC:16346",
    "KIR2DP1": "HGNC:16344",
    "KIR2DS1": "HGNC:6333",
    "KIR2DS2": "HGNC:6334",
    "KIR2DS3": "HGNC:6335",
    "KIR2DS4": "HGNC:6336",
    "KIR2DS5": "HGNC:6337",
    "KIR3DL1": "HGNC:6338",
    "KIR3DL2": "HGNC:6339",
    "KIR3DL3": "HGNC:16312",
    "KIR3DP1": "HGNC:16343",
    "KIR3DS1": "HGNC:6340",
}
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
# Codes of the RPL classification, written on a Condition when the definition in force is met: SNOMED CT
# 102878001 "Recurrent miscarriage (disorder)" (display as in a published FHIR value set; ClinVar maps MedGen
# C0000809 "Recurrent abortion" to it); ICD-10-CM N96 "Recurrent pregnancy loss" (for a woman not pregnant now:
# its Excludes1 sends a current pregnancy to O26.2-).
RPL_SNOMED = ("102878001", "Recurrent miscarriage (disorder)")
RPL_ICD10_CM = ("N96", "Recurrent pregnancy loss")
GENOTYPE_DISPLAY_NAME = ("84413-4", "Genotype display name")  # as in the HL7 Genomics Reporting IG
GENE_STUDIED = ("48018-6", "Gene studied [ID]")


@dataclass(frozen=True, slots=True)
class LabCode:
    """How one measured value of a case is coded as its own Observation."""

    display: str
    loinc: tuple[str, str] | None  # (code, LOINC long common name); None: no LOINC term fits, local code only


# Case path -> coding. A LOINC code is used only where its component, specimen and scale match the value.
LAB_RESULTS: dict[str, LabCode] = {
    "nk.peripheral.nk_percent": LabCode(
        "NK cells (CD3-CD56+), % of lymphocytes, blood",
        ("107067-1", "CD19-CD3-CD56+ (NK)/Cells in Blood by Flow cytometry (FC)"),
    ),
    "nk.peripheral.absolute_count": LabCode(
        "NK cells, absolute count, blood",
        ("9728-7", "CD3-CD16+CD56+ (Natural killer) cells [#/volume] in Blood"),
    ),
    "nk.peripheral.cd56_bright_percent": LabCode("CD56bright NK cells, % of NK cells, blood", None),
    "nk.peripheral.cd56_dim_percent": LabCode("CD56dim NK cells, % of NK cells, blood", None),
    "nk.peripheral.cd16_positive_percent": LabCode("CD16+ NK cells, % of NK cells, blood", None),
    "nk.peripheral.cytotoxicity.percent": LabCode("NK cytotoxicity, % target cells killed", None),
    "nk.uterine.density": LabCode("Uterine NK (CD56+) density, endometrium", None),
    "investigations.thyroid.tsh": LabCode(
        "TSH, serum or plasma", ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma")
    ),
}
BY_LOINC = {lab.loinc[0]: path for path, lab in LAB_RESULTS.items() if lab.loinc}

# Unit spellings decidua accepts (decidua.core.units) -> UCUM code. Per-100-cell counts are UCUM "%".
UCUM_CODES: dict[str, str] = {
    "%": "%",
    "percent": "%",
    "fraction": "1",
    **{f"cells/{mu}L": "/uL" for mu in ("u", "µ", "μ")},
    **{f"/{mu}L": "/uL" for mu in ("u", "µ", "μ")},
    **{f"{{cells}}/{mu}L": "{cells}/uL" for mu in ("u", "µ", "μ")},
    "cells/mm3": "/mm3",
    "/mm3": "/mm3",
    "10^9/L": "10*9/L",
    "10*9/L": "10*9/L",
    "x10^9/L": "10*9/L",
    "per 100 stromal cells": "%",
    "/100 stromal cells": "%",
    "% of stromal cells": "%",
    "cells/mm2": "/mm2",
    "/mm2": "/mm2",
    "cells/mm^2": "/mm2",
    "cells/mm²": "/mm2",
    "mIU/L": "m[IU]/L",
    "m[IU]/L": "m[IU]/L",
    **{f"{mu}IU/mL": "u[IU]/mL" for mu in ("u", "µ", "μ")},
    **{f"{mu}[IU]/mL": "u[IU]/mL" for mu in ("u", "µ", "μ")},
}


def make_quantity(value: float, unit: str) -> dict[str, Any]:
    """A valueQuantity: the unit as reported, with its UCUM code when decidua knows it."""
    out: dict[str, Any] = {"value": value, "unit": unit}
    code = UCUM_CODES.get(unit.strip())
    if code is not None:
        out |= {"system": UCUM, "code": code}
    return out


def make_coding(code: str, system: str = CODE_SYSTEM, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def make_concept(code: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [make_coding(code)], "text": text or code.replace("_", " ")}


def lab_concept(path: str) -> dict[str, Any]:
    lab = LAB_RESULTS[path]
    coding = [make_coding(path, CODE_SYSTEM, lab.display)]
    if lab.loinc:
        coding.insert(0, make_coding(lab.loinc[0], LOINC, lab.loinc[1]))
    return {"coding": coding, "text": lab.display}


LABORATORY = [{"coding": [make_coding("laboratory", OBSERVATION_CATEGORY, "Laboratory")]}]
