"""A laboratory-style report of an assessment, as HTML (Jinja2) and PDF (WeasyPrint).

The report is deterministic: the same case, assessment, knowledge base and report date give the same bytes.
Its SHA-256, printed in the header, is computed over the canonical JSON (sorted keys, no whitespace) of
``{"case": ..., "assessment": ..., "report_date": ...}`` (the case as read back by ``decidua assess``, the
assessment as ``--format json`` prints it); anyone holding the case file can recompute it with
:func:`content_digest` and check that a signed report matches its inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from decidua.adapters.report.plots import (
    EmbryoLigands,
    Receptor,
    interaction_map,
    peripheral_nk_plot,
    uterine_nk_plot,
)
from decidua.app.casefile import case_to_data
from decidua.app.presenters import (
    GROUP_TITLES,
    SCOPE,
    UNVERIFIED_CITATION,
    WORDS,
    assessment_data,
    display_group,
    finding_keys,
    not_indicated_heading,
    option_keys,
    options_by_verdict,
    prognosis_keys,
    reference_data,
    shown_stances,
    status_word,
    step_keys,
    verification_notes,
)
from decidua.core.case import Case, Measurement
from decidua.core.errors import DeciduaError
from decidua.core.findings import Assessment, Finding, Status, Threshold
from decidua.core.units import Quantity, to_canonical
from decidua.core.validation import case_age, uterine_quantity
from decidua.engines.matching import MatchResult, match
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import RangeRule, ThresholdRule

__all__ = ["content_digest", "html_to_pdf", "pdf_engine", "plots_for", "render_html", "render_pdf"]


@cache
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("decidua.adapters.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def content_digest(case: Case, assessment: Assessment, kb: KnowledgeBase, report_date: dt.date) -> str:
    """SHA-256 (hex) of what the report says: case, assessment and report date, as canonical JSON."""
    payload = {
        "case": case_to_data(case),
        "assessment": assessment_data(assessment, kb),
        "report_date": report_date.isoformat(),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ResultRow:
    test: str
    value: str
    unit: str
    reference: str
    flag: str  # HL7 interpretation code: H, L, N, A, or ""
    note: str = ""


def _fmt(v: float) -> str:
    return f"{v:g}"


def _reference(kb: KnowledgeBase, rule_id: str) -> str:
    rule = kb.rule(rule_id)
    if isinstance(rule, RangeRule):
        when = f" ({rule.applies_label})" if rule.applies_label else ""
        return f"{_fmt(rule.low)}-{_fmt(rule.high)}{when}"
    if isinstance(rule, ThresholdRule):
        sign = "≤" if rule.direction == "above" else "≥"
        parts = [f"{sign} {_fmt(b.value)} ({b.label})" for b in rule.bands] + [f"{sign} {_fmt(rule.value)}"]
        parts += [f"population {_fmt(c.low)}-{_fmt(c.high)}" for c in rule.context]
        return "; ".join(parts)
    return ""


def _flag(f: Finding | None) -> str:
    return f.interpretation.value if f is not None and f.interpretation is not None else ""


def _measured(label: str, m: Measurement | None, quantity: Quantity, unit: str, note: str = "") -> ResultRow | None:
    if m is None:
        return None
    return ResultRow(label, _fmt(to_canonical(m.value, m.unit, quantity)), unit, "", "", note)


def results_table(case: Case, assessment: Assessment, kb: KnowledgeBase) -> list[ResultRow]:
    """The measured results, with reference intervals from the knowledge base and HL7 flags from the findings."""
    findings = {f.rule_id: f for f in assessment.findings}
    rows: list[ResultRow | None] = []
    pb = case.nk.peripheral
    if pb is not None:
        rule_id = kb.selected["nk_peripheral_cutoff"]
        rows.append(
            ResultRow(
                "NK cells, CD3-CD56+ (blood)",
                _fmt(to_canonical(pb.nk_percent.value, pb.nk_percent.unit, Quantity.PERCENT)),
                "% of lymphocytes",
                _reference(kb, rule_id),
                _flag(findings.get(rule_id)),
            )
        )
        rows.append(_measured("NK cells, absolute count", pb.absolute_count, Quantity.CELLS_PER_UL, "cells/µL"))
        rows.append(_measured("CD56bright NK", pb.cd56_bright_percent, Quantity.PERCENT, "%"))
        rows.append(_measured("CD56dim NK", pb.cd56_dim_percent, Quantity.PERCENT, "%"))
        rows.append(_measured("CD16+ NK", pb.cd16_positive_percent, Quantity.PERCENT, "%"))
        if pb.cytotoxicity is not None:
            ratio = pb.cytotoxicity.effector_target_ratio
            rows.append(_measured("NK cytotoxicity", pb.cytotoxicity.percent, Quantity.PERCENT, "%", f"E:T {ratio}"))
    u = case.nk.uterine
    if u is not None:
        q = uterine_quantity(u.density.unit)
        rule_id = "nk.uterine.chen2017" if q is Quantity.UNK_PER_100_STROMAL else "nk.uterine.kuon2017"
        unit = "per 100 stromal cells" if q is Quantity.UNK_PER_100_STROMAL else "cells/mm²"
        assert q is not None
        rows.append(
            ResultRow(
                "Uterine NK, CD56+ (endometrium)",
                _fmt(to_canonical(u.density.value, u.density.unit, q)),
                unit,
                _reference(kb, rule_id),
                _flag(findings.get(rule_id)),
                f"cycle day {u.cycle_day}" if u.cycle_day else "cycle day not given",
            )
        )
    thyroid = case.investigations.thyroid
    if thyroid is not None and thyroid.tsh is not None:
        reading = thyroid.tsh_interpretation.value
        flag = {"abnormal": "A", "normal": "N"}.get(reading, "")
        value = _fmt(to_canonical(thyroid.tsh.value, thyroid.tsh.unit, Quantity.TSH))
        rows.append(ResultRow("TSH", value, "mIU/L", "laboratory's own interval", flag))
    return [r for r in rows if r is not None]


def _citation_numbers(
    groups: list[dict[str, Any]], assessment: Assessment, match_result: MatchResult | None
) -> dict[str, int]:
    """Citation keys numbered in order of first appearance in the report, section by section as the template
    prints them: findings as grouped (with the compatibility block), next steps and options indicated, the
    prognosis, then what is not indicated."""
    keys: list[str] = []
    for group in groups:
        keys += [k for f in group["findings"] for k in finding_keys(f)]
        if group["id"] == "immunogenetics" and match_result is not None:
            keys += list(match_result.citations)

    def options(relevant: bool) -> list[str]:
        chosen = [o for o in assessment.options if o.relevant is relevant]
        return [k for _, group in options_by_verdict(chosen) for o in group for k in option_keys(o)]

    keys += [k for s in assessment.next_steps if s.indicated for k in step_keys(s)]
    keys += options(True)
    keys += [k for p in assessment.prognosis for k in prognosis_keys(p)]
    keys += [k for s in assessment.next_steps if not s.indicated for k in step_keys(s)]
    keys += options(False)
    order: dict[str, int] = {}
    for k in keys:
        order.setdefault(k, len(order) + 1)
    return order


def threshold_text(t: Threshold) -> str:
    """``flag above 18 % (older than 35)``: a threshold as the report prints it."""
    value = _fmt(t.value) if isinstance(t.value, int | float) else str(t.value)
    text = f"{t.name.replace('_', ' ')} {value}" + (f" {t.unit}" if t.unit else "")
    if t.applies_when and t.applies_when not in t.name:
        text += f" ({t.applies_when})"
    return text


def plots_for(case: Case, assessment: Assessment, kb: KnowledgeBase, m: MatchResult | None) -> dict[str, str]:
    """The report's plots (inline SVG) by name: peripheral, uterine, interaction (those that apply)."""
    findings = {f.rule_id: f for f in assessment.findings}
    plots: dict[str, str] = {}
    pb = case.nk.peripheral
    rule_id = kb.selected["nk_peripheral_cutoff"]
    if pb is not None and rule_id in findings:
        value = to_canonical(pb.nk_percent.value, pb.nk_percent.unit, Quantity.PERCENT)
        plots["peripheral"] = peripheral_nk_plot(kb, rule_id, case_age(case), value, findings[rule_id].status)
    u = case.nk.uterine
    if u is not None:
        q = uterine_quantity(u.density.unit)
        uid = "nk.uterine.chen2017" if q is Quantity.UNK_PER_100_STROMAL else "nk.uterine.kuon2017"
        if q is not None and uid in findings:
            value = to_canonical(u.density.value, u.density.unit, q)
            plots["uterine"] = uterine_nk_plot(kb, uid, value, findings[uid].status)
    if m is not None and m.outlook is not None:
        receptors = [Receptor(p.receptor, p.ligand, p.effect, p.strength, p.receptor_present) for p in m.pairs]
        embryo = EmbryoLigands.from_distribution({k: float(v) for k, v in m.outlook.distribution.items()})
        plots["interaction"] = interaction_map(receptors, embryo)
    return plots


def _context(case: Case, assessment: Assessment, kb: KnowledgeBase, report_date: dt.date | None) -> dict[str, Any]:
    date = report_date or case.test_date or dt.date.today()
    dated_from = "given" if report_date else "the case's test date" if case.test_date else "today (no test date given)"
    has_genotypes = case.genotypes.woman_kir is not None or case.genotypes.woman_hla_c is not None
    m = match(case, kb) if has_genotypes else None
    alternative = {r.id for r in kb.rules if r.alternative_explanation}
    groups = []
    for group, title in GROUP_TITLES.items():
        items = [f for f in assessment.findings if display_group(f, f.rule_id in alternative) == group]
        if items:
            groups.append({"id": group, "title": title, "findings": items})
    numbers = _citation_numbers(groups, assessment, m)
    pb, u = case.nk.peripheral, case.nk.uterine
    specimens = []
    if pb is not None:
        specimens.append(("Blood NK", pb.date, pb.specimen, pb.method))
    if u is not None:
        specimens.append(("Endometrial biopsy", u.date, f"cycle day {u.cycle_day}" if u.cycle_day else None, u.method))
    return {
        "case": case,
        "age": case_age(case),
        "a": assessment,
        "kb": kb,
        "report_date": date,
        "dated_from": dated_from,
        "digest": content_digest(case, assessment, kb, date),
        "results": results_table(case, assessment, kb),
        "groups": groups,
        "numbers": numbers,
        "cite": lambda keys: ",".join(str(n) for n in sorted({numbers[k] for k in keys})),
        "references": [(n, k, kb.citation(k)) for k, n in sorted(numbers.items(), key=lambda kv: kv[1])],
        "reference_data": reference_data(assessment),
        "plots": plots_for(case, assessment, kb, m),
        "match": m,
        "specimens": specimens,
        "scope": SCOPE,
        "verification": [
            note
            for note in verification_notes(assessment, kb)
            if note != UNVERIFIED_CITATION or any(not kb.citation(k).verified for k in numbers)
        ],
        "not_indicated_heading": not_indicated_heading(assessment.pathway.workup_indicated),
        "words": WORDS,
        "status_word": status_word,
        "shown_stances": shown_stances,
        "Status": Status,
        "pct": lambda p: f"{float(p) * 100:g} %",
        "threshold_text": threshold_text,
    }


class PdfUnavailable(DeciduaError):
    """The PDF engine cannot run on this machine (its system libraries are missing)."""


def render_html(case: Case, assessment: Assessment, kb: KnowledgeBase, report_date: dt.date | None = None) -> str:
    """The report as a self-contained HTML document (inline CSS and SVG)."""
    return _env().get_template("report.html.j2").render(**_context(case, assessment, kb, report_date))


def render_pdf(case: Case, assessment: Assessment, kb: KnowledgeBase, report_date: dt.date | None = None) -> bytes:
    """The report as PDF (A4), rendered from the HTML by WeasyPrint.

    Raises
    ------
    PdfUnavailable
        When WeasyPrint's system libraries (Pango, HarfBuzz) are not installed; the HTML report still works.
    """
    pdf_engine()  # before the HTML: say at once when PDFs cannot be made
    return html_to_pdf(render_html(case, assessment, kb, report_date))


def pdf_engine() -> Any:
    """The ``weasyprint`` module, loaded.

    Raises
    ------
    PdfUnavailable
        As :func:`render_pdf`.
    """
    try:
        import weasyprint  # imported here: it loads system libraries (Pango) at import
    except (OSError, ImportError) as exc:  # libraries missing (OSError), or WeasyPrint itself
        raise PdfUnavailable(
            f"PDF reports need WeasyPrint's system libraries ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
            "on Debian/Ubuntu: apt install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core. "
            "The HTML report works without them."
        ) from None
    return weasyprint


def html_to_pdf(html: str) -> bytes:
    """A report's HTML (:func:`render_html`) as PDF; what the PDF workers run (:mod:`decidua.adapters.report.pool`).

    Raises
    ------
    PdfUnavailable
        As :func:`render_pdf`.
    """
    pdf = pdf_engine().HTML(string=html).write_pdf()
    assert pdf is not None
    return bytes(pdf)
