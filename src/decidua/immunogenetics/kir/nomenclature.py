"""KIR nomenclature: the genes and their spellings, the 2DS4 variants, IPD-KIR allele names checked against
the shipped release (:func:`allele_table`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import TYPE_CHECKING

from decidua.core.errors import NomenclatureError, UnknownAllele

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


class KirGene(StrEnum):
    """KIR genes as named by IPD-KIR (Allelelist of release 2.13.0; Marsh SGE et al., KIR nomenclature
    report 2002, Hum Immunol 2003;64:648-654). ``KIR2DL5`` is the locus name SSO/SSP kits report when they
    do not separate the paralogues ``KIR2DL5A`` and ``KIR2DL5B`` (IPD-KIR names alleles only for those).
    """

    KIR2DL1 = "KIR2DL1"
    KIR2DL2 = "KIR2DL2"
    KIR2DL3 = "KIR2DL3"
    KIR2DL4 = "KIR2DL4"
    KIR2DL5 = "KIR2DL5"
    KIR2DL5A = "KIR2DL5A"
    KIR2DL5B = "KIR2DL5B"
    KIR2DS1 = "KIR2DS1"
    KIR2DS2 = "KIR2DS2"
    KIR2DS3 = "KIR2DS3"
    KIR2DS4 = "KIR2DS4"
    KIR2DS5 = "KIR2DS5"
    KIR3DL1 = "KIR3DL1"
    KIR3DL2 = "KIR3DL2"
    KIR3DL3 = "KIR3DL3"
    KIR3DS1 = "KIR3DS1"
    KIR2DP1 = "KIR2DP1"
    KIR3DP1 = "KIR3DP1"


class Kir2DS4Variant(StrEnum):
    """KIR2DS4 full-length versus 22-bp deletion variant (Maxwell LD et al. Tissue Antigens 2002;60:254)."""

    FULL_LENGTH = "KIR2DS4FL"
    DELETED = "KIR2DS4del"


class Call(StrEnum):
    """What the typing says about one gene."""

    PRESENT = "present"
    ABSENT = "absent"
    UNTESTED = "untested"


class KirGenotype(StrEnum):
    """KIR genotype by haplotype group (Uhrberg M et al. Immunity 1997;7:753; Cooley S et al. Blood 2009)."""

    AA = "AA"  # two group A haplotypes: no B-defining gene
    BX = "Bx"  # at least one B haplotype


class KirMotif(StrEnum):
    """Centromeric or telomeric gene-content motif pair (Cooley S et al. Blood 2010;116:2411)."""

    AA = "AA"
    AB = "AB"
    BB = "BB"


class BContentGroup(StrEnum):
    """Donor KIR B-content group (Cooley S et al. Blood 2010;116:2411; IPD-KIR B-content calculator)."""

    NEUTRAL = "Neutral"  # 0 or 1 B motif
    BETTER = "Better"  # 2 or more B motifs, not Cen-B/B
    BEST = "Best"  # Cen-B/B homozygous


# The 16 loci that SSO/SSP kits type (KIR2DL5 standing for 2DL5A and 2DL5B).
LOCI: tuple[KirGene, ...] = tuple(g for g in KirGene if g not in (KirGene.KIR2DL5A, KirGene.KIR2DL5B))
DL5_PARTS = (KirGene.KIR2DL5A, KirGene.KIR2DL5B)
# Middleton & Gonzelez 2010: one or more of these defines a B haplotype.
B_GENES: tuple[KirGene, ...] = (
    KirGene.KIR2DL2,
    KirGene.KIR2DL5,
    KirGene.KIR3DS1,
    KirGene.KIR2DS1,
    KirGene.KIR2DS2,
    KirGene.KIR2DS3,
    KirGene.KIR2DS5,
)
ACTIVATING: tuple[KirGene, ...] = (
    KirGene.KIR2DS1,
    KirGene.KIR2DS2,
    KirGene.KIR2DS3,
    KirGene.KIR2DS4,
    KirGene.KIR2DS5,
    KirGene.KIR3DS1,
)
# Present on (almost) every haplotype; rare haplotypes lack one (Middleton & Gonzelez 2010).
FRAMEWORK: tuple[KirGene, ...] = (KirGene.KIR3DL3, KirGene.KIR3DL2, KirGene.KIR2DL4, KirGene.KIR3DP1)

Key = KirGene | Kir2DS4Variant

VARIANT_SPELLINGS: dict[str, Kir2DS4Variant] = {
    **dict.fromkeys(("2DS4FL", "2DS4F", "2DS4FULL", "2DS4FULLLENGTH"), Kir2DS4Variant.FULL_LENGTH),
    **dict.fromkeys(("2DS4DEL", "2DS4D", "2DS4N", "2DS4DELETED", "2DS4NULL"), Kir2DS4Variant.DELETED),
}
GENE_SPELLINGS: dict[str, KirGene] = {g.value.removeprefix("KIR"): g for g in KirGene}
_ALLELE = re.compile(r"^(?:KIR)?(?P<gene>[23]D[LSP]\d[AB]?)\*(?P<digits>\d{3}(?:\d{2}){0,2})(?P<suffix>[A-Z]?)$")
_ALLELE_HINT = "expected an IPD-KIR name such as 'KIR2DL1*0030201' (3, 5 or 7 digits, optional N/Q suffix)"
GENE_HINT = "expected a KIR gene such as 2DL1 or KIR2DL1 (" + ", ".join(GENE_SPELLINGS) + "; 2DS4FL, 2DS4del)"


def squash(text: str) -> str:
    """Upper-case, drop the ``KIR`` prefix and separators: ``'kir_2DS4-del'`` -> ``'2DS4DEL'``."""
    squashed = re.sub(r"[\s_\-]", "", text.strip().upper())
    return squashed.removeprefix("KIR")


def parse_gene(name: str) -> KirGene:
    """Read a gene name, with or without the ``KIR`` prefix, in any case.

    Raises
    ------
    NomenclatureError
        If ``name`` is not a KIR gene.

    Examples
    --------
    >>> parse_gene("2dl1"), parse_gene("KIR2DL5B")
    (<KirGene.KIR2DL1: 'KIR2DL1'>, <KirGene.KIR2DL5B: 'KIR2DL5B'>)
    """
    gene = GENE_SPELLINGS.get(squash(name))
    if gene is None:
        raise NomenclatureError(f"unknown KIR gene {name!r}; {GENE_HINT}")
    return gene


def parse_key(name: str) -> Key:
    squashed = squash(name)
    if squashed in VARIANT_SPELLINGS:
        return VARIANT_SPELLINGS[squashed]
    return parse_gene(name)


# --- the shipped IPD-KIR allele table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KirAlleleTable:
    """Official IPD-KIR allele names of one release, each mapped to its gene (derived table, see tools/)."""

    release: str  # e.g. "IPD-KIR 2.13.0"
    date: str
    citations: tuple[str, ...]
    alleles: Mapping[str, KirGene]
    resolvable: frozenset[str] = field(repr=False)  # full names and their 3- and 5-digit truncations

    def genes(self) -> frozenset[KirGene]:
        return frozenset(self.alleles.values())


def _header(lines: Iterable[str]) -> dict[str, list[str]]:
    """The ``# key: value`` lines at the top of the table, by key (``cite`` repeats)."""
    header: dict[str, list[str]] = {}
    for line in lines:
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(": ")
        header.setdefault(key, []).append(value)
    return header


def _release(header: dict[str, list[str]]) -> str:
    return header["source"][0].split(" (")[0]


def _read_table(text: str) -> KirAlleleTable:
    lines = text.splitlines()
    header = _header(lines)
    alleles: dict[str, KirGene] = {}
    for line in lines[sum(map(len, header.values())) :]:
        if line and line != "allele\tgene":
            name, gene = line.split("\t")
            alleles[name] = KirGene(gene)
    resolvable = set(alleles)
    for name in alleles:
        stem, _, digits = name.partition("*")
        digits = digits.rstrip("NQLSACE")
        resolvable.update(f"{stem}*{digits[:n]}" for n in (3, 5, 7) if n <= len(digits))
    return KirAlleleTable(_release(header), header["date"][0], tuple(header["cite"]), alleles, frozenset(resolvable))


def _table_path() -> Traversable:
    return resources.files("decidua.immunogenetics") / "data" / "kir_alleles.tsv"


@functools.cache
def allele_table_source() -> tuple[str, tuple[str, ...]]:
    """The release and citations of the shipped table, from its header lines alone (what every assessment
    records; reading the 2,219 names for it would cost a command ~10 ms).

    >>> allele_table_source()[0]
    'IPD-KIR 2.13.0'
    """
    with _table_path().open("r", encoding="utf-8") as f:
        header = _header(f)
    return _release(header), tuple(header["cite"])


@functools.cache
def allele_table() -> KirAlleleTable:
    """Load the shipped IPD-KIR allele table (once; cached).

    Examples
    --------
    >>> allele_table().release
    'IPD-KIR 2.13.0'
    >>> allele_table().alleles["KIR2DL1*0030201"]
    <KirGene.KIR2DL1: 'KIR2DL1'>
    """
    return _read_table(_table_path().read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class KirAllele:
    """One KIR allele name, checked against IPD-KIR."""

    gene: KirGene
    digits: str  # "0030201"; 3, 5 or 7 digits
    suffix: str = ""  # expression suffix: "N" null, "Q" questionable

    @property
    def null(self) -> bool:
        """A null allele: the gene is there but not expressed."""
        return self.suffix == "N"

    def to_string(self) -> str:
        """``'KIR2DL1*0030201'``."""
        return f"{self.gene.value}*{self.digits}{self.suffix}"


def parse_allele(name: str, table: KirAlleleTable | None = None) -> KirAllele:
    """Read an IPD-KIR allele name and check it exists in ``table`` (default: the shipped release).

    Names may omit ``KIR`` and may be truncated to 3 or 5 digits, provided some official allele has them.

    Raises
    ------
    NomenclatureError
        If ``name`` is not of the form gene ``*`` digits.
    UnknownAllele
        If it is well formed but not in the release.

    Examples
    --------
    >>> parse_allele("KIR2DL1*0030201").to_string()
    'KIR2DL1*0030201'
    >>> parse_allele("2ds4*003").gene
    <KirGene.KIR2DS4: 'KIR2DS4'>
    """
    match = _ALLELE.match(name.strip().upper())
    if not match:
        raise NomenclatureError(f"malformed KIR allele name {name!r}: {_ALLELE_HINT}")
    gene = GENE_SPELLINGS.get(match["gene"])
    if gene is None:
        raise NomenclatureError(f"malformed KIR allele name {name!r}: unknown gene {match['gene']!r}; {GENE_HINT}")
    table = table or allele_table()
    if gene not in table.genes():
        hint = "; name the paralogue, KIR2DL5A*... or KIR2DL5B*..." if gene is KirGene.KIR2DL5 else ""
        raise UnknownAllele(f"{name!r}: {table.release} names no alleles of {gene.value}{hint}")
    allele = KirAllele(gene, match["digits"], match["suffix"])
    full = allele.to_string()
    if full not in table.alleles and f"{gene.value}*{allele.digits}" not in table.resolvable:
        raise UnknownAllele(f"{name!r} is not a {gene.value} allele in {table.release} (e.g. {_example(table, gene)})")
    if allele.suffix and full not in table.alleles:
        raise UnknownAllele(f"{name!r}: {table.release} has no allele {full!r} with suffix {allele.suffix!r}")
    return allele


def _example(table: KirAlleleTable, gene: KirGene) -> str:
    return next(name for name, g in table.alleles.items() if g is gene)


# --- KIR3DL1 allotype subgroups -----------------------------------------------------------------------------------

KIR3DL1_SUBTYPES_FILE = "kir3dl1_subtypes.tsv"


@functools.cache
def kir3dl1_subtypes() -> tuple[dict[str, str], tuple[str, ...]]:
    """(first three digits -> subgroup, citations) of the shipped KIR3DL1 table (only alleles checked in a source)."""
    text = (resources.files("decidua.immunogenetics") / "data" / KIR3DL1_SUBTYPES_FILE).read_text("utf-8")
    table: dict[str, str] = {}
    citations: list[str] = []
    for line in text.splitlines():
        if line.startswith("# cite: "):
            citations.append(line.removeprefix("# cite: "))
        elif line and not line.startswith(("#", "allele\t")):
            digits, subgroup = line.split("\t")
            table[digits] = subgroup
    return table, tuple(citations)


def kir3dl1_subtype(allele: KirAllele) -> str | None:
    """The allotype subgroup of a KIR3DL1/KIR3DS1 allele: ``high``, ``low``, ``null`` (not expressed at the cell
    surface), ``3DS1`` (the activating form of the locus), or ``not classified``; ``None`` for other genes.

    Examples
    --------
    >>> [kir3dl1_subtype(parse_allele(n)) for n in ("KIR3DL1*00101", "3DL1*004", "3DL1*005", "3DS1*013")]
    ['high', 'null', 'low', '3DS1']
    """
    if allele.gene is KirGene.KIR3DS1:
        return "3DS1"
    if allele.gene is not KirGene.KIR3DL1:
        return None
    if allele.null:
        return "null"
    return kir3dl1_subtypes()[0].get(allele.digits[:3], "not classified")
