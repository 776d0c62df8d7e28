"""Maternal-fetal KIR/HLA-C compatibility for one case: the view behind ``decidua match`` and the report.

Findings (and so the category) come from the knowledge base's ``immunogenetics`` rules evaluated by the
one-patient engine; this module adds what a table of statuses cannot hold: the embryo ligand distribution,
the receptor-ligand pairs that meet at the implantation site, each typed embryo, and the donor ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from decidua.core.case import Case
from decidua.core.findings import Finding, Status
from decidua.engines.assess import assess
from decidua.engines.extract import chosen_oocyte_donor, gamete_sources
from decidua.immunogenetics.compatibility import (
    CGenotype,
    DonorRank,
    EmbryoOutlook,
    ResolvedC,
    c2_count,
    genotype_label,
    outlook,
    rank_donors,
    resolve_hla_c,
)
from decidua.immunogenetics.kir import KirGene, KirProfile, classify_typing
from decidua.knowledge.loader import KnowledgeBase

UNDETERMINED = "undetermined"
NO_RISK_COMBINATION = "no_risk_combination"


@dataclass(frozen=True, slots=True)
class Pair:
    """A maternal receptor and a fetal ligand that can meet, with the chance an embryo carries the ligand."""

    receptor: str
    ligand: str
    effect: str
    strength: str
    receptor_present: bool | None  # None: the receptor gene was not typed
    p_embryo_ligand: Fraction | None  # None: embryo ligands undetermined
    note: str | None
    citations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EmbryoCheck:
    embryo_id: str
    typing: str | None
    genotype: str | None  # ligand genotype label, e.g. "C1C2"
    c2_more_than_mother: bool | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    kb_version: str
    woman_kir: KirProfile | None
    woman: ResolvedC | None
    oocyte_source: ResolvedC | None
    oocyte_donor: str | None  # the oocyte donor whose HLA-C the figures use (None: own oocytes, or none chosen)
    sperm_source: ResolvedC | None
    outlook: EmbryoOutlook | None
    pairs: tuple[Pair, ...]
    category: str
    findings: tuple[Finding, ...]
    donors: tuple[DonorRank, ...]
    embryos: tuple[EmbryoCheck, ...]
    citations: tuple[str, ...]
    warnings: tuple[str, ...]


def _resolve(text: str | None) -> ResolvedC | None:
    return None if text is None else resolve_hla_c(text)


def _p_ligand(view: EmbryoOutlook | None, ligand: str) -> Fraction | None:
    if view is None:
        return None
    return sum((p for label, p in view.distribution.items() if ligand in label), Fraction(0))


def _present(profile: KirProfile | None, receptor: str) -> bool | None:
    if profile is None:
        return None
    gene = KirGene(receptor)
    if gene in profile.present:
        return True
    return False if gene in profile.absent else None


def category_of(findings: tuple[Finding, ...], kb: KnowledgeBase) -> str:
    """The category of the first flagged rule that names one; otherwise no risk combination, if all decided."""
    rules = [r for r in kb.active_rules if r.category is not None]
    by_id = {f.rule_id: f for f in findings}
    for rule in rules:
        if by_id[rule.id].status is Status.FLAGGED:
            return str(rule.category)
    if all(by_id[r.id].status is Status.WITHIN_RANGE for r in rules):
        return NO_RISK_COMBINATION
    return UNDETERMINED


def match(case: Case, kb: KnowledgeBase) -> MatchResult:
    """Compatibility of the woman's KIR with the HLA-C of the embryos she may carry.

    ``case`` must have passed validation (the case-file reader checks the genotypes).
    """
    g = case.genotypes
    profile = None if g.woman_kir is None else classify_typing(g.woman_kir)
    woman = _resolve(g.woman_hla_c)
    oocyte_text, sperm_text = gamete_sources(case)
    oocyte, sperm = _resolve(oocyte_text), _resolve(sperm_text)
    uterus: CGenotype | None = woman.genotype if woman else None
    view = None
    if uterus and oocyte and oocyte.genotype and sperm and sperm.genotype:
        view = outlook(oocyte.genotype, sperm.genotype, uterus)

    warnings = list(profile.warnings if profile else ())
    for role, resolved in (("woman", woman), ("oocyte source", oocyte), ("sperm source", sperm)):
        if resolved is not None and resolved.genotype is None:
            warnings.append(f"{role} HLA-C undetermined: {resolved.reason}")
    if g.oocytes == "donor" and oocyte_text is None and len(g.oocyte_donors) > 1:
        warnings.append("several oocyte donors and none chosen (oocyte_donor_id): see the donor ranking")

    pairs = tuple(
        Pair(
            receptor=i.receptor,
            ligand=i.ligand,
            effect=i.effect,
            strength=i.strength,
            receptor_present=_present(profile, i.receptor),
            p_embryo_ligand=_p_ligand(view, i.ligand),
            note=i.note,
            citations=i.cites,
        )
        for i in kb.interactions
    )

    donors: tuple[DonorRank, ...] = ()
    if g.oocyte_donors and uterus and sperm and sperm.genotype:
        entries: list[tuple[str, CGenotype | None, str | None]] = []
        for d in g.oocyte_donors:
            resolved = _resolve(d.hla_c)
            if resolved is None:
                entries.append((d.id, None, "HLA-C not typed"))
            else:
                entries.append((d.id, resolved.genotype, resolved.reason))
        donors = rank_donors(entries, sperm.genotype, uterus)

    embryos = []
    for e in g.embryos:
        resolved = _resolve(e.hla_c)
        if resolved is None or resolved.genotype is None:
            reason = "HLA-C not typed" if resolved is None else resolved.reason
            embryos.append(EmbryoCheck(e.id, e.hla_c, None, None, reason))
            continue
        more = None if uterus is None else c2_count(resolved.genotype) > c2_count(uterus)
        embryos.append(EmbryoCheck(e.id, e.hla_c, genotype_label(*resolved.genotype), more))

    findings = tuple(f for f in assess(case, kb).findings if f.group == "immunogenetics")
    cited = {k for f in findings for k in f.citations} | {k for p in pairs for k in p.citations}
    return MatchResult(
        kb_version=kb.kb_version,
        woman_kir=profile,
        woman=woman,
        oocyte_source=oocyte,
        oocyte_donor=None if (donor := chosen_oocyte_donor(case)) is None else donor.id,
        sperm_source=sperm,
        outlook=view,
        pairs=pairs,
        category=category_of(findings, kb),
        findings=findings,
        donors=donors,
        embryos=tuple(embryos),
        citations=tuple(sorted(cited)),
        warnings=tuple(dict.fromkeys(warnings)),
    )
