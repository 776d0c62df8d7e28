"""Maternal-fetal KIR/HLA-C compatibility: Mendelian embryo HLA-C ligand probabilities and donor ranking.

Extravillous trophoblast, the fetal cells that meet uterine NK cells, expresses HLA-C (with HLA-E and HLA-G,
which are not KIR-C ligands) and no HLA-A or HLA-B. So the fetal ligands for maternal KIR are the embryo's two
HLA-C allotypes: one from the oocyte (the woman's, or an oocyte donor's) and one from the sperm (the partner's,
or a sperm donor's). Each parent passes either haplotype with probability 1/2, independently.

The uterus, and so the NK cells that meet the embryo, is always the woman's: "more C2 than the mother" compares
the embryo with the woman who carries the pregnancy, also when the oocyte came from a donor.

Probabilities are exact (:class:`fractions.Fraction`). A parent whose HLA-C ligand is unknown, ambiguous or
unclassified on either haplotype gives ``None`` (not assessed), never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from itertools import product

from decidua.immunogenetics.ligands import LigandCall, ligand_genotype


class CLigand(StrEnum):
    """KIR ligand carried by one HLA-C haplotype."""

    C1 = "C1"  # HLA-C with Asn80: ligand of KIR2DL2/2DL3
    C2 = "C2"  # HLA-C with Lys80: ligand of KIR2DL1 and KIR2DS1
    NONE = "none"  # null allele: not expressed, no ligand


CGenotype = tuple[CLigand, CLigand]


def genotype_label(a: CLigand, b: CLigand) -> str:
    """``C1C2``-style label of an HLA-C ligand genotype (``C1-`` for C1 with a non-expressed allele).

    Examples
    --------
    >>> genotype_label(CLigand.C2, CLigand.C1), genotype_label(CLigand.NONE, CLigand.C2)
    ('C1C2', 'C2-')
    """
    order = {CLigand.C1: 0, CLigand.C2: 1, CLigand.NONE: 2}
    x, y = sorted((a, b), key=order.__getitem__)
    return "".join("-" if lig is CLigand.NONE else lig.value for lig in (x, y))


def c2_count(genotype: CGenotype) -> int:
    return sum(1 for lig in genotype if lig is CLigand.C2)


def embryo_distribution(oocyte: CGenotype, sperm: CGenotype) -> dict[str, Fraction]:
    """Probability of each embryo HLA-C ligand genotype (the four haplotype combinations are equally likely).

    Examples
    --------
    >>> embryo_distribution((CLigand.C1, CLigand.C2), (CLigand.C1, CLigand.C2))
    {'C1C1': Fraction(1, 4), 'C1C2': Fraction(1, 2), 'C2C2': Fraction(1, 4)}
    """
    out: dict[str, Fraction] = {}
    for a, b in product(oocyte, sperm):
        label = genotype_label(a, b)
        out[label] = out.get(label, Fraction(0)) + Fraction(1, 4)
    return dict(sorted(out.items()))


def p_paternal_c2(sperm: CGenotype) -> Fraction:
    """Probability that the embryo inherits a C2 haplotype from the sperm."""
    return Fraction(c2_count(sperm), 2)


def p_embryo_c2(oocyte: CGenotype, sperm: CGenotype) -> Fraction:
    """Probability that the embryo carries at least one C2."""
    return 1 - Fraction(2 - c2_count(oocyte), 2) * Fraction(2 - c2_count(sperm), 2)


def p_more_c2_than_mother(oocyte: CGenotype, sperm: CGenotype, uterus: CGenotype) -> Fraction:
    """Probability that the embryo carries more C2 than the woman carrying it (Hiby et al. 2010)."""
    mother = c2_count(uterus)
    more = sum(1 for a, b in product(oocyte, sperm) if c2_count((a, b)) > mother)
    return Fraction(more, 4)


@dataclass(frozen=True, slots=True)
class EmbryoOutlook:
    """What a couple's (or donors') HLA-C ligands mean for their embryos in this woman's uterus."""

    oocyte: CGenotype
    sperm: CGenotype
    uterus: CGenotype
    distribution: dict[str, Fraction]
    p_paternal_c2: Fraction
    p_embryo_c2: Fraction
    p_more_c2_than_mother: Fraction


def outlook(oocyte: CGenotype, sperm: CGenotype, uterus: CGenotype) -> EmbryoOutlook:
    return EmbryoOutlook(
        oocyte=oocyte,
        sperm=sperm,
        uterus=uterus,
        distribution=embryo_distribution(oocyte, sperm),
        p_paternal_c2=p_paternal_c2(sperm),
        p_embryo_c2=p_embryo_c2(oocyte, sperm),
        p_more_c2_than_mother=p_more_c2_than_mother(oocyte, sperm, uterus),
    )


@dataclass(frozen=True, slots=True)
class DonorRank:
    donor_id: str
    genotype: CGenotype | None  # None: the donor's HLA-C ligands could not be determined
    rank: int | None
    outlook: EmbryoOutlook | None
    reason: str | None = None


def rank_donors(
    donors: Iterable[tuple[str, CGenotype | None, str | None]], sperm: CGenotype, uterus: CGenotype
) -> tuple[DonorRank, ...]:
    """Rank oocyte donors by the HLA-C2 load they would give the embryos (least first).

    The order is by the probability that an embryo carries more C2 than the recipient, then the probability that
    it carries any C2, then the donor's own C2 count; equal keys share a rank. Donors whose ligands are unknown
    come last, unranked, with the reason.
    """
    known: list[tuple[tuple[Fraction, Fraction, int], DonorRank]] = []
    unknown: list[DonorRank] = []
    for donor_id, genotype, reason in donors:
        if genotype is None:
            unknown.append(DonorRank(donor_id, None, None, None, reason))
            continue
        view = outlook(genotype, sperm, uterus)
        key = (view.p_more_c2_than_mother, view.p_embryo_c2, c2_count(genotype))
        known.append((key, DonorRank(donor_id, genotype, None, view)))
    known.sort(key=lambda kv: kv[0])
    ranked: list[DonorRank] = []
    previous: tuple[Fraction, Fraction, int] | None = None
    rank = 0
    for i, (key, item) in enumerate(known, start=1):
        if key != previous:
            rank, previous = i, key
        ranked.append(DonorRank(item.donor_id, item.genotype, rank, item.outlook))
    return (*ranked, *unknown)


@dataclass(frozen=True, slots=True)
class ResolvedC:
    """An HLA-C typing resolved to its two haplotype ligands, or the reason it could not be."""

    text: str
    genotype: CGenotype | None
    reason: str | None
    release: str | None


def resolve_hla_c(text: str) -> ResolvedC:
    """Resolve an HLA-C genotype (GL String, e.g. ``HLA-C*07:02+HLA-C*06:02``) to its two ligands.

    Raises
    ------
    NomenclatureError, UnknownAllele
        For malformed or unknown names (an input error, not an undetermined result).
    """
    calls = ligand_genotype(text)
    ligands = [c_ligand(c) for c in calls]
    reasons = [c_reason(c) for c in calls if c_ligand(c) is None]
    release = next((c.release for c in calls if c.release), None)
    if reasons:
        return ResolvedC(text, None, "; ".join(reasons), release)
    a, b = ligands
    assert a is not None
    assert b is not None
    return ResolvedC(text, (a, b), None, release)


def c_ligand(call: LigandCall) -> CLigand | None:
    """The HLA-C ligand of a call, or None when it is not C1, C2 or a null allele."""
    return _C_LIGANDS.get(call.ligand.value)


def c_reason(call: LigandCall) -> str:
    detail = f": {call.reason}" if call.reason else ""
    return f"{call.input} is {call.ligand.value}{detail}"


_C_LIGANDS = {"C1": CLigand.C1, "C2": CLigand.C2, "none": CLigand.NONE}
