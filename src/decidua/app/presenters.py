"""Assessments and the knowledge base as every output shows them: JSON-ready data (the API, ``--format json``,
the stored assessment, the web page and the report read it) and the words they share.

Every output (the text, the JSON, the web page, the report) shows the same things in the same order: the pathway
(does the RPL / RIF work-up apply to this patient?), the findings with the guidelines' stances, the evidence for
and against and how common a flagged genotype is, the next steps indicated and the options relevant (grouped by the
guidelines' verdict), the prognosis, then apart what is not indicated, under a heading that says why, and the
references. What could not be checked against a source is marked, and said once. The words shared by the outputs
(status and pathway words, headings) are defined here once; the templates read them from :data:`WORDS`.

Pure functions of the domain objects and the knowledge base: no I/O, no framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from decidua.app.ports import NOT_ASSESSED, TRIAGE_COLUMNS, StatusWord
from decidua.core.findings import (
    Assessment,
    Finding,
    Frequency,
    Interpretation,
    NextStep,
    Option,
    Pathway,
    Prognosis,
    Stance,
    Statement,
    Status,
)
from decidua.engines.assess import status_label
from decidua.immunogenetics.releases import releases
from decidua.knowledge.loader import KnowledgeBase
from decidua.knowledge.schema import CountRule, RangeRule, Rule, ThresholdRule


def citation_data(kb: KnowledgeBase, key: str) -> dict[str, Any]:
    c = kb.citation(key)
    return {
        "key": key,
        "text": kb.citation_text(key),
        "doi": c.doi,
        "pmid": c.pmid,
        "url": c.url,
        "verified": c.verified,
    }


PATHWAY_GATE = (
    "The pathway gate decides first whether the work-up applies: RPL met under the RPL definition in force, or RIF "
    "met under the RIF definition in force. Met: the steps meant for that pathway are listed as indicated and the "
    "options as relevant to discuss, each with the guidelines' verdict (which may be against it). Neither met: they "
    "are listed apart as not indicated, with the reason, and the results are shown for information. A history that "
    "is not recorded is 'cannot tell', never 'not met'. Immunomodulatory and anticoagulant options for unexplained "
    "losses or a high NK result are held back while a finding that may explain the losses is flagged or the work-up "
    "before immune causes (antiphospholipid antibodies, uterine anatomy, TSH) is incomplete, and the "
    "immunomodulators also while an NK result is low and none is high. RPL is unexplained when none of the findings "
    "that may explain losses is flagged and the investigations every woman with RPL should have are done."
)


def rule_parameters(rule: Rule) -> str:
    match rule:
        case CountRule():
            upper = f" (not met only if sum({', '.join(rule.count_max)}) < {rule.at_least})" if rule.count_max else ""
            return f"sum({', '.join(rule.count)}) >= {rule.at_least}{upper}"
        case ThresholdRule():
            sign = ">" if rule.direction == "above" else "<"
            bands = "; ".join(f"{b.label}: {sign} {b.value:g}" for b in rule.bands)
            base = f"{rule.input} {sign} {rule.value:g} {rule.unit}"
            return f"{bands}; otherwise {base}" if bands else base
        case RangeRule():
            when = f" ({rule.applies_label})" if rule.applies_label else ""
            return f"{rule.input} outside {rule.low:g}-{rule.high:g} {rule.unit}{when}"
    return "criteria on " + ", ".join(rule.inputs)


def gate_data(kb: KnowledgeBase) -> dict[str, Any]:
    """How the pathway gate works under this knowledge base (``kb show --json``, ``/api/kb``)."""
    u = kb.unexplained_rpl
    return {
        "description": PATHWAY_GATE,
        "rpl_definition": kb.selected["rpl_definition"],
        "rif_definition": kb.selected["rif_definition"],
        "unexplained_rpl": None
        if u is None
        else {"explained_by": list(u.explained_by), "requires_assessed": list(u.requires)},
    }


def kb_data(kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "kb_version": kb.kb_version,
        "overrides": list(kb.overrides),
        "pathway": gate_data(kb),
        "choices": {
            name: {
                "label": c.label,
                "selected": kb.selected[name],
                "options": [r.id for r in kb.rules if r.choice == name],
            }
            for name, c in kb.choices.items()
        },
        "rules": [
            {
                **r.model_dump(mode="json", exclude_none=True),
                "active": r in kb.active_rules,
                "parameters": rule_parameters(r),
            }
            for r in kb.rules
        ],
        "steps": [s.model_dump(mode="json", exclude_none=True) for s in kb.steps],
        "options": [o.model_dump(mode="json", exclude_none=True) for o in kb.options],
        "prognosis": [p.model_dump(mode="json", exclude_none=True) for p in kb.prognosis],
        "citations": {k: citation_data(kb, k) for k in sorted(kb.citations)},
    }


SCOPE = (
    "Decision support for clinicians, not a diagnosis or a prescription. Options are shown with the clinic "
    "protocol and the guidelines' stances; the treating clinician decides."
)
UNVERIFIED_CITATION = "References marked * could not be checked against a record of the source."
UNVERIFIED_STANCE = (
    "Statements marked † could not be checked against a copy of the guideline or source: they are decidua's "
    "paraphrase, or were seen only in a secondary source (the note says which). Read the source before relying on "
    "them."
)

# Display order of finding groups; investigations that flag are shown as alternative explanations.
GROUP_TITLES = {
    "classification": "Classification",
    "alternative": "Alternative explanations to consider first",
    "investigation": "Investigations",
    "nk": "NK cells",
    "autoimmune": "Autoimmunity",
    "immunogenetics": "KIR / HLA-C compatibility",
}
BEARING_LABELS = {"supports": "evidence for", "against": "evidence against", "neutral": "evidence"}
SOURCE_LABELS = {
    "clinic_protocol": "clinic protocol",
    "guideline": "guideline text",
    "study": "study",
    "caveat": "caveat",
}
OPTIONS_FOR = "Options the guidelines recommend, suggest or allow"
OPTIONS_AGAINST = (
    "Options the guidelines advise against, find the evidence insufficient for, or reserve for research (listed "
    "because the findings or the clinic protocol raise them)"
)
OPTIONS_NONE = (
    "Options the guidelines give no verdict on (their stances shown concern a related test; listed because the "
    "findings raise them)"
)
VERDICT_GROUPS = (("for", OPTIONS_FOR), ("against", OPTIONS_AGAINST), ("none", OPTIONS_NONE))
NOT_A_DIRECTIVE = "None is a directive: the treating clinician decides."
# The words every output uses for the pathway and its values (the templates read them from here).
WORDS: dict[str, Any] = {
    "definition": {True: "met", False: "not met", None: "cannot tell"},
    "yes_no": {True: "yes", False: "no", None: "cannot tell"},
    "workup": {True: "applies", False: "does not apply", None: "cannot tell"},
    "status_class": {True: "flagged", False: "within_range", None: "not_assessed"},
    "bearing": BEARING_LABELS,
    "source": SOURCE_LABELS,
    "options_for": OPTIONS_FOR,
    "options_against": OPTIONS_AGAINST,
    "options_none": OPTIONS_NONE,
    "verdict_groups": VERDICT_GROUPS,
    "not_a_directive": NOT_A_DIRECTIVE,
}


def display_group(f: Finding, alternative: bool) -> str:
    return "alternative" if alternative and f.status is Status.FLAGGED else f.group


def not_indicated_heading(workup_indicated: bool | None) -> str:
    """The heading under which items not indicated for this patient are shown apart."""
    if workup_indicated is False:
        return (
            "Not indicated: the patient meets neither the RPL nor the RIF definition in force (shown for information)"
        )
    if workup_indicated is None:
        return "Cannot tell whether indicated: the history needed to apply the RPL/RIF definitions is not recorded"
    return (
        "Not indicated for this patient now: meant for a pathway she does not meet, or held back "
        "(shown for information)"
    )


def status_word(f: Finding) -> str:
    """The status label, with high or low where a range was left."""
    if f.interpretation in (Interpretation.HIGH, Interpretation.LOW) and f.status_label.startswith("outside"):
        return f"{f.status_label} ({'high' if f.interpretation is Interpretation.HIGH else 'low'})"
    return f.status_label


def shown_stances(f: Finding) -> tuple[Stance, ...]:
    """The stances an output prints with a finding: all of them once it is assessed, the principal guideline's
    while it is not (the JSON always carries all)."""
    return f.stances if f.status is not Status.NOT_ASSESSED else f.stances[:1]


def options_by_verdict(options: Sequence[Option]) -> list[tuple[str, list[Option]]]:
    """(heading, options) for each verdict group that has options, in :data:`VERDICT_GROUPS` order."""
    grouped = [(heading, [o for o in options if o.verdict_group == group]) for group, heading in VERDICT_GROUPS]
    return [(heading, group) for heading, group in grouped if group]


def stance_data(s: Stance) -> dict[str, Any]:
    return {
        "source": s.source,
        "text": s.text,
        "verdict": s.verdict,
        "strength": s.strength,
        "wording": s.wording,
        "verified": s.verified,
        "citations": list(s.citations),
        "note": s.note,
    }


def statement_data(s: Statement) -> dict[str, Any]:
    return {
        "source": s.source,
        "text": s.text,
        "strength": s.strength,
        "wording": s.wording,
        "bearing": s.bearing,
        "verified": s.verified,
        "citations": list(s.citations),
    }


def frequency_data(p: Frequency) -> dict[str, Any]:
    return {
        "genotype": p.genotype,
        "population": p.population,
        "percent": p.percent,
        "n": p.n,
        "derived": p.derived,
        "citations": list(p.citations),
    }


def finding_data(f: Finding, kb: KnowledgeBase) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "group": f.group,
        "title": f.title,
        "status": f.status.value,
        "status_label": status_word(f),
        "summary": f.summary,
        "measure": f.measure,
        "threshold_applied": f.threshold_applied,
        "interpretation": f.interpretation.value if f.interpretation else None,
        "inputs": [{"name": i.name, "label": i.label, "value": i.value, "unit": i.unit} for i in f.inputs],
        "missing_inputs": list(f.missing),
        "missing": list(f.missing_labels),
        "thresholds": [
            {"name": t.name, "value": t.value, "unit": t.unit, "applies_when": t.applies_when} for t in f.thresholds
        ],
        "evidence_level": f.evidence_level,
        "citations": [citation_data(kb, k) for k in f.citations],
        "context": list(f.context),
        "stance": stance_data(f.stance) if f.stance else None,
        "stances": [stance_data(s) for s in f.stances],
        "statements": [statement_data(s) for s in f.statements],
        "population": [frequency_data(p) for p in f.population],
        "kb_version": f.kb_version,
    }


def step_data(s: NextStep) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "text": s.text,
        "because": list(s.because),
        "indicated": s.indicated,
        "gate": s.gate,
        "indication": s.indication,
        "citations": list(s.citations),
        "stances": [stance_data(x) for x in s.stances],
    }


def option_data(o: Option) -> dict[str, Any]:
    return {
        "id": o.id,
        "title": o.title,
        "kind": o.kind,
        "because": list(o.because),
        "relevant": o.relevant,
        "gate": o.gate,
        "indication": o.indication,
        "guideline_verdict": o.stance.verdict,
        "verdict_group": o.verdict_group,
        "stances_concern": o.stances_concern,
        "stance": stance_data(o.stance),
        "stances": [stance_data(s) for s in o.stances],
        "statements": [statement_data(s) for s in o.statements],
    }


def prognosis_data(p: Prognosis) -> dict[str, Any]:
    return {
        "id": p.id,
        "title": p.title,
        "measure": p.measure,
        "percent": p.percent,
        "table_age": p.table_age,
        "table_losses": p.table_losses,
        "bracket": [{"age": age, "percent": percent} for age, percent in p.bracket],
        "age": p.age,
        "losses": p.losses,
        "explanation": p.explanation,
        "validity": p.validity,
        "overall": [statement_data(s) for s in p.overall],
        "citations": list(p.citations),
    }


def finding_keys(f: Finding) -> list[str]:
    """The citation keys a finding shows: its own, its stances', and (when assessed) its evidence's."""
    keys = [*f.citations, *(k for s in shown_stances(f) for k in s.citations)]
    if f.status is not Status.NOT_ASSESSED:
        keys += [k for s in f.statements for k in s.citations]
        keys += [k for p in f.population for k in p.citations]
    return keys


def step_keys(step: NextStep) -> list[str]:
    return [*step.citations, *(k for s in step.stances for k in s.citations)]


def option_keys(o: Option) -> list[str]:
    return [*(k for s in o.stances for k in s.citations), *(k for s in o.statements for k in s.citations)]


def prognosis_keys(p: Prognosis) -> list[str]:
    return [*p.citations, *(k for s in p.overall for k in s.citations)]


def cited_keys(a: Assessment) -> list[str]:
    """Every citation key the outputs show, in order of first appearance (findings, steps, options, prognosis)."""
    keys = [k for f in a.findings for k in finding_keys(f)]
    keys += [k for s in a.next_steps for k in step_keys(s)]
    keys += [k for o in a.options for k in option_keys(o)]
    keys += [k for p in a.prognosis for k in prognosis_keys(p)]
    return list(dict.fromkeys(keys))


def _shown_unverified(a: Assessment) -> bool:
    statements: list[Statement] = [s for f in a.findings for s in f.statements]
    statements += [s for o in a.options for s in o.statements] + [s for p in a.prognosis for s in p.overall]
    stances = [s for f in a.findings for s in shown_stances(f)] + [s for step in a.next_steps for s in step.stances]
    stances += [s for o in a.options for s in o.stances]
    return any(not s.verified for s in stances) or any(not s.verified for s in statements)


def verification_notes(a: Assessment, kb: KnowledgeBase) -> list[str]:
    """The sentences saying, once, that some references or statements could not be checked."""
    out = []
    if any(not kb.citation(k).verified for k in cited_keys(a)):
        out.append(UNVERIFIED_CITATION)
    if _shown_unverified(a):
        out.append(UNVERIFIED_STANCE)
    return out


def pathway_data(p: Pathway) -> dict[str, Any]:
    return {
        "rpl": p.rpl,
        "rif": p.rif,
        "workup_indicated": p.workup_indicated,
        "unexplained_rpl": p.unexplained_rpl,
        "explained": p.explained,
        "reason": p.reason,
        "verdict": p.verdict,
    }


def reference_data(a: Assessment) -> list[dict[str, Any]]:
    """The reference-data releases the assessment interpreted allele names with, and how to cite them."""
    cited = {r.label: r for r in releases()}
    return [
        {"release": label, "citations": list(cited[label].citations) if label in cited else []}
        for label in a.reference_data
    ]


def assessment_data(a: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The assessment as JSON-ready data (the ``--format json`` output)."""
    c = a.classification
    findings = {f.rule_id: f for f in a.findings}
    return {
        "case_id": a.case_id,
        "kb_version": a.kb_version,
        "kb_overrides": list(a.kb_overrides),
        "reference_data": reference_data(a),
        "scope": SCOPE,
        "pathway": pathway_data(a.pathway),
        "classification": {
            "rpl": {
                "status": c.rpl.value,
                "status_label": findings[c.rpl_definition].status_label,
                "losses_counted": c.losses_counted,
                "losses_counted_max": c.losses_counted_max,
                "losses_shown": c.losses_shown,
                "counts": c.losses_label,
                "definition": c.rpl_definition,
            },
            "rif": {
                "status": c.rif.value,
                "status_label": findings[c.rif_definition].status_label,
                "failed_transfers": c.failed_transfers,
                "counts": c.transfers_label,
                "definition": c.rif_definition,
            },
        },
        "findings": [finding_data(f, kb) for f in a.findings],
        "next_steps": [step_data(s) for s in a.next_steps],
        "options": [option_data(o) for o in a.options],
        "prognosis": [prognosis_data(p) for p in a.prognosis],
        "warnings": list(a.warnings),
        "references": [citation_data(kb, k) for k in cited_keys(a)],
        "verification": verification_notes(a, kb),
    }


# --- the case list: what it shows of each case's latest assessment ---------------------------------------------

TRIAGE_TITLES = {"rpl": "RPL", "rif": "RIF", "blood_nk": "Blood NK", "uterine_nk": "Uterine NK"}
"""The case list's column headings of :class:`~decidua.app.ports.Triage`."""
NK_RULE_PREFIXES = {"blood_nk": "nk.peripheral.", "uterine_nk": "nk.uterine."}
"""The NK columns of the case list and the rules they sum up (by rule id)."""
STATUS_WORDS = {Status.FLAGGED: "flagged", Status.WITHIN_RANGE: "within range", Status.NOT_ASSESSED: "not assessed"}
"""The status words where no single rule kind applies (a column summing up rules of different kinds)."""
_RANK = {Status.FLAGGED: 0, Status.WITHIN_RANGE: 1, Status.NOT_ASSESSED: 2}
MAX_WORD = 200  # the store's column


def _status_word(item: object) -> StatusWord:
    """A stored finding's (or classification's) status and its word; anything unreadable is not assessed."""
    if not isinstance(item, Mapping):
        return NOT_ASSESSED
    try:
        status = Status(str(item.get("status")))
    except ValueError:
        return NOT_ASSESSED
    word = item.get("status_label")
    return StatusWord(status, (word if isinstance(word, str) and word else STATUS_WORDS[status])[:MAX_WORD])


def _first_by_status(words: Iterable[StatusWord]) -> StatusWord:
    """The status a column of several rules shows: flagged if one is, else within range if one is assessed."""
    return min(words, key=lambda w: _RANK[w.status], default=NOT_ASSESSED)


def triage_words(result: Mapping[str, Any]) -> dict[str, StatusWord]:
    """The case list's statuses of a stored assessment (:func:`assessment_data`), by
    :data:`~decidua.app.ports.TRIAGE_COLUMNS` name, each with the word the case page shows for it: RPL and RIF as
    classified (met / not met / not assessed), blood and uterine NK from their findings (above / not above,
    outside / within the range); a column of several findings is flagged when one is, and not assessed only when
    none is assessed. Missing or unreadable parts are not assessed, never normal."""
    classification = result.get("classification")
    classes = classification if isinstance(classification, Mapping) else {}
    findings = [f for f in result.get("findings") or () if isinstance(f, Mapping)]
    out = {"rpl": _status_word(classes.get("rpl")), "rif": _status_word(classes.get("rif"))}
    for column, prefix in NK_RULE_PREFIXES.items():
        own = [f for f in findings if str(f.get("rule_id", "")).startswith(prefix)]
        out[column] = _first_by_status(_status_word(f) for f in own)
    return {name: out[name] for name in TRIAGE_COLUMNS}


def triage_filter_words(kb: KnowledgeBase) -> dict[str, dict[Status, str]]:
    """The words of the case list's filters, by column: the words of the rules in force (met / not met for the RPL
    and RIF definitions, above / not above for the blood NK cut-off), or :data:`STATUS_WORDS` where a column's
    rules say it in different words (uterine NK: a range and a cut-off)."""
    rules = {
        "rpl": [kb.rule(kb.selected["rpl_definition"])],
        "rif": [kb.rule(kb.selected["rif_definition"])],
        **{c: [r for r in kb.active_rules if r.id.startswith(p)] for c, p in NK_RULE_PREFIXES.items()},
    }
    out: dict[str, dict[Status, str]] = {}
    for column in TRIAGE_COLUMNS:
        said = {tuple(status_label(r, s) for s in Status) for r in rules[column]}
        words = said.pop() if len(said) == 1 else tuple(STATUS_WORDS[s] for s in Status)
        out[column] = dict(zip(Status, words, strict=True))
    return out
