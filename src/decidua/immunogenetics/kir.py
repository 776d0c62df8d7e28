"""KIR gene-content genotypes: parse, validate, classify.

A woman's KIR typing (genes present / absent / not tested, IPD-KIR allele names, a ``kir`` GL String or a
row of a CSV file) is read into :class:`KirCalls` and classified by :func:`classify` into a
:class:`KirProfile`: genotype AA or Bx, centromeric and telomeric motifs, B-content score and group,
activating-KIR count and the inhibitory receptors for C1 and C2.

Nothing is guessed. A value the rules cannot decide (a needed gene not tested, a pattern outside the rules)
is ``None`` and a warning says why.

Rules and where they were checked
---------------------------------
*Genotype AA / Bx.* Group A haplotypes carry the framework genes plus KIR2DL1, KIR2DL3, KIR2DS4 and KIR3DL1;
a B haplotype is defined by one or more of KIR2DL2, KIR2DL5 (A or B), KIR2DS1, KIR2DS2, KIR2DS3, KIR2DS5,
KIR3DS1 (Middleton D, Gonzelez F. The extensive polymorphism of KIR genes. Immunology 2010;129:8-19).
Bx = any of these present; AA = all of them absent.

*Centromeric and telomeric motifs* (Cooley S et al. Donor selection for natural killer cell receptor genes
leads to superior survival after unrelated transplantation for acute myelogenous leukemia. Blood
2010;116:2411-2419; the IPD-KIR "KIR B-content group" calculator implements the same rules):

* Cen: KIR2DL3 marks Cen-A, KIR2DL2 and/or KIR2DS2 mark Cen-B.
  Cen-AA = 2DL3 without 2DL2/2DS2; Cen-AB = 2DL3 with 2DL2/2DS2; Cen-BB = 2DL2/2DS2 without 2DL3.
* Tel: KIR3DL1 (with KIR2DS4) marks Tel-A, KIR3DS1 and/or KIR2DS1 mark Tel-B.
  Tel-AA = 3DL1 and 2DS4 without 3DS1/2DS1; Tel-AB = 3DL1 with 3DS1/2DS1;
  Tel-BB = 3DS1/2DS1 without 3DL1 (2DS4 may be present: tB haplotypes rarely carry it).
  3DL1 and 3DS1 segregate as alleles of one locus, which is why 3DL1, not 2DS4, decides A versus B.

The abstract of Cooley 2010 (read from the Blood article page) defines the groups used below: Cen-B/B
homozygosity had the strongest effect ("Best"); two or more B motifs also helped ("Better"); the rest are
"Neutral". The per-gene definitions above were cross-checked against the test vectors of the DKMS CTU
R package CTUtools (github.com/bosefalk/CTUtools, ``KIR_haplotype_Cen`` / ``KIR_haplotype_Tel``), e.g.
3DL1-, 2DS4+, 3DS1+, 2DS1+ gives Tel B/B and 2DL3-, 2DL2+, 2DS2+ gives Cen B/B.

*B-content score* = number of B motifs: Cen AA 0, AB 1, BB 2, plus Tel likewise (0-4).
*Group*: Best = Cen-BB (whatever Tel); Better = score >= 2 without Cen-BB; Neutral = score 0 or 1.

Decisions
---------
* When a gene a rule needs is not tested, every completion (present or absent) of the untested genes is
  tried: the value is reported only if all completions agree, otherwise it is undetermined and the warning
  names the untested genes. So "2DL2 present, 2DS2 not tested, 2DL3 absent" is still Cen-BB.
* Activating KIR counted: KIR2DS1, KIR2DS2, KIR2DS3, KIR2DS4, KIR2DS5, KIR3DS1. KIR2DL4 is *not* counted:
  although it can signal activation (via FcRgamma), it is a framework gene carried by almost everyone and the
  activating-KIR counts in the literature are counts of the KIR-S genes.
* KIR2DS4 variants: the common 22-bp exon-5 deletion variant (``2DS4del``; also written ``2DS4N``,
  ``2DS4D``) encodes a truncated, soluble protein that is not expressed on the cell surface (Maxwell LD et
  al. Tissue Antigens 2002;60:254-258). For gene content (Tel motifs) any KIR2DS4 counts. For the
  activating count, KIR2DS4 counts when a full-length copy (``2DS4FL``) is present, or when the typing does
  not distinguish the variants (the usual gene-level convention); it does not count when only the deleted
  variant is present, and the count is undetermined when the deleted variant is present and the full-length
  one was not tested.
* KIR2DL5A and KIR2DL5B count as KIR2DL5 (the locus most kits report).
* Missing framework genes (KIR3DL3, KIR3DL2, KIR2DL4, KIR3DP1) are reported with a warning, not an error:
  rare haplotypes lack them.

Accepted spellings
------------------
Gene names with or without ``KIR`` and in any case (``2dl1``, ``KIR2DL1``); ``2DL5A``/``2DL5B``;
2DS4 variants ``2DS4FL`` (also ``2DS4-FL``, ``2DS4F``, ``2DS4full``) and ``2DS4del`` (also ``2DS4D``,
``2DS4N``, ``2DS4-del``, ``2DS4deleted``). Allele names as in IPD-KIR (``KIR2DL1*0030201``), also truncated
to 3 or 5 digits (``KIR2DL1*003``), validated against the shipped IPD-KIR release (:func:`allele_table`).

Examples
--------
>>> profile = classify(calls_from_lists(["2DL1", "2DL3", "2DL4", "3DL1", "2DS4", "3DL2", "3DL3", "2DP1", "3DP1"]))
>>> profile.genotype, profile.cen, profile.tel, profile.b_content, profile.b_content_group
(<KirGenotype.AA: 'AA'>, <KirMotif.AA: 'AA'>, <KirMotif.AA: 'AA'>, 0, <BContentGroup.NEUTRAL: 'Neutral'>)
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import TYPE_CHECKING, Any

from decidua.core.errors import CaseInvalid, NomenclatureError, Problem, UnknownAllele

if TYPE_CHECKING:
    from decidua.core.case import KirTyping

__all__ = [
    "ACTIVATING",
    "B_GENES",
    "CELL_VALUES_HELP",
    "FRAMEWORK",
    "LOCI",
    "BContentGroup",
    "Call",
    "Kir2DS4Variant",
    "KirAllele",
    "KirAlleleTable",
    "KirCalls",
    "KirGene",
    "KirGenotype",
    "KirMotif",
    "KirProfile",
    "allele_table",
    "calls_from_csv_row",
    "calls_from_gl_string",
    "calls_from_lists",
    "calls_from_typing",
    "classify",
    "classify_typing",
    "parse_allele",
    "parse_gene",
]


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
_DL5_PARTS = (KirGene.KIR2DL5A, KirGene.KIR2DL5B)
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

_Key = KirGene | Kir2DS4Variant

_VARIANT_SPELLINGS: dict[str, Kir2DS4Variant] = {
    **dict.fromkeys(("2DS4FL", "2DS4F", "2DS4FULL", "2DS4FULLLENGTH"), Kir2DS4Variant.FULL_LENGTH),
    **dict.fromkeys(("2DS4DEL", "2DS4D", "2DS4N", "2DS4DELETED", "2DS4NULL"), Kir2DS4Variant.DELETED),
}
_GENE_SPELLINGS: dict[str, KirGene] = {g.value.removeprefix("KIR"): g for g in KirGene}
_ALLELE = re.compile(r"^(?:KIR)?(?P<gene>[23]D[LSP]\d[AB]?)\*(?P<digits>\d{3}(?:\d{2}){0,2})(?P<suffix>[A-Z]?)$")
_ALLELE_HINT = "expected an IPD-KIR name such as 'KIR2DL1*0030201' (3, 5 or 7 digits, optional N/Q suffix)"
_GENE_HINT = "expected a KIR gene such as 2DL1 or KIR2DL1 (" + ", ".join(_GENE_SPELLINGS) + "; 2DS4FL, 2DS4del)"


def _squash(text: str) -> str:
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
    gene = _GENE_SPELLINGS.get(_squash(name))
    if gene is None:
        raise NomenclatureError(f"unknown KIR gene {name!r}; {_GENE_HINT}")
    return gene


def _parse_key(name: str) -> _Key:
    squashed = _squash(name)
    if squashed in _VARIANT_SPELLINGS:
        return _VARIANT_SPELLINGS[squashed]
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


def _read_table(text: str) -> KirAlleleTable:
    header: dict[str, list[str]] = {}
    alleles: dict[str, KirGene] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(": ")
            header.setdefault(key, []).append(value)
        elif line and line != "allele\tgene":
            name, gene = line.split("\t")
            alleles[name] = KirGene(gene)
    resolvable = set(alleles)
    for name in alleles:
        stem, _, digits = name.partition("*")
        digits = digits.rstrip("NQLSACE")
        resolvable.update(f"{stem}*{digits[:n]}" for n in (3, 5, 7) if n <= len(digits))
    release = header["source"][0].split(" (")[0]
    return KirAlleleTable(release, header["date"][0], tuple(header["cite"]), alleles, frozenset(resolvable))


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
    path = resources.files("decidua.immunogenetics") / "data" / "kir_alleles.tsv"
    return _read_table(path.read_text(encoding="utf-8"))


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
    gene = _GENE_SPELLINGS.get(match["gene"])
    if gene is None:
        raise NomenclatureError(f"malformed KIR allele name {name!r}: unknown gene {match['gene']!r}; {_GENE_HINT}")
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


# --- typed input --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KirCalls:
    """A complete KIR typing: each of the 16 loci is present, absent or not tested.

    ``KIR2DL5A``/``KIR2DL5B`` and the KIR2DS4 variants appear only when the typing distinguished them.
    Build one with :func:`calls_from_lists`, :func:`calls_from_gl_string`, :func:`calls_from_csv_row` or
    :func:`calls_from_typing`; they check for contradictions.
    """

    present: frozenset[KirGene] = frozenset()
    absent: frozenset[KirGene] = frozenset()
    untested: frozenset[KirGene] = frozenset()
    variants_present: frozenset[Kir2DS4Variant] = frozenset()
    variants_absent: frozenset[Kir2DS4Variant] = frozenset()
    alleles: tuple[KirAllele, ...] = ()
    notes: tuple[str, ...] = ()  # said while reading the input, e.g. ambiguities in a GL String
    release: str | None = None  # IPD-KIR release the allele names were checked against

    def call(self, key: _Key) -> Call | None:
        """The call for a gene or 2DS4 variant; ``None`` if the typing did not mention it at all."""
        if isinstance(key, Kir2DS4Variant):
            if key in self.variants_present:
                return Call.PRESENT
            if key in self.variants_absent:
                return Call.ABSENT
            return Call.UNTESTED if self.variants_present | self.variants_absent else None
        if key in self.present:
            return Call.PRESENT
        if key in self.absent:
            return Call.ABSENT
        if key in self.untested:
            return Call.UNTESTED
        return None


class _Collector:
    """Gathers calls from several inputs, refusing contradictions."""

    def __init__(self) -> None:
        self.calls: dict[_Key, tuple[Call, str]] = {}
        self.alleles: list[KirAllele] = []
        self.notes: list[str] = []
        self.release: str | None = None
        self.problems: list[Problem] = []

    def add(self, key: _Key, call: Call, source: str) -> None:
        old = self.calls.get(key)
        if old is None:
            self.calls[key] = (call, source)
        elif old[0] is not call:
            self.problems.append(
                Problem(
                    path=key.value,
                    value=f"{old[0].value} (from {old[1]}) and {call.value} (from {source})",
                    allowed="a gene is either present, absent or not tested",
                )
            )

    def add_token(self, token: str, call: Call, source: str) -> None:
        if "*" in token:
            if call is not Call.PRESENT:
                raise NomenclatureError(
                    f"{token!r} in {source}: only gene names can be listed as {call.value}, not allele names"
                )
            allele = parse_allele(token)
            self.alleles.append(allele)
            self.release = allele_table().release
            self.add(allele.gene, Call.PRESENT, f"{allele.to_string()} in {source}")
        else:
            self.add(_parse_key(token), call, source)

    def finish(self, absent_unlisted: bool) -> KirCalls:
        self._derive(absent_unlisted)
        if self.problems:
            raise CaseInvalid(self.problems, source="KIR typing")
        state = {k: c for k, (c, _) in self.calls.items()}
        genes = {k: c for k, c in state.items() if isinstance(k, KirGene)}
        variants = {k: c for k, c in state.items() if isinstance(k, Kir2DS4Variant)}
        return KirCalls(
            present=frozenset(g for g, c in genes.items() if c is Call.PRESENT),
            absent=frozenset(g for g, c in genes.items() if c is Call.ABSENT),
            untested=frozenset(g for g, c in genes.items() if c is Call.UNTESTED),
            variants_present=frozenset(v for v, c in variants.items() if c is Call.PRESENT),
            variants_absent=frozenset(v for v, c in variants.items() if c is Call.ABSENT),
            alleles=tuple(dict.fromkeys(self.alleles)),
            notes=tuple(dict.fromkeys(self.notes)),
            release=self.release,
        )

    def _get(self, key: _Key) -> Call | None:
        found = self.calls.get(key)
        return found[0] if found else None

    def _derive(self, absent_unlisted: bool) -> None:
        unlisted = Call.ABSENT if absent_unlisted else Call.UNTESTED
        for whole, parts, label in (
            (KirGene.KIR2DL5, _DL5_PARTS, "the KIR2DL5A/KIR2DL5B calls"),
            (KirGene.KIR2DS4, tuple(Kir2DS4Variant), "the KIR2DS4 variant calls"),
        ):
            mentioned = [p for p in parts if self._get(p) is not None]
            if mentioned:  # the typing distinguished the parts: an unlisted one is treated like an unlisted gene
                for part in parts:
                    if self._get(part) is None:
                        self.add(part, unlisted, "not listed")
            calls = [self._get(p) for p in parts]
            if Call.PRESENT in calls:
                if self._get(whole) is Call.UNTESTED:  # a typed part settles a locus left untested
                    del self.calls[whole]
                self.add(whole, Call.PRESENT, label)
            elif mentioned and all(c is Call.ABSENT for c in calls):
                self.add(whole, Call.ABSENT, label)
            elif mentioned and self._get(whole) is None:
                self.add(whole, Call.UNTESTED, label)
        for gene in LOCI:
            if self._get(gene) is None:
                self.add(gene, unlisted, "not listed")


def calls_from_lists(
    present: Iterable[str],
    absent: Iterable[str] = (),
    untested: Iterable[str] = (),
    *,
    gl_string: str | None = None,
    absent_unlisted: bool = True,
) -> KirCalls:
    """Build calls from lists of gene names (``present`` may also hold allele names) and/or a GL String.

    Parameters
    ----------
    present, absent, untested
        Gene names (any spelling :func:`parse_gene` accepts, plus ``2DS4FL``/``2DS4del``); ``present`` may
        also hold IPD-KIR allele names.
    gl_string
        A GL String in the ``kir`` namespace; genes in it are present (see :func:`calls_from_gl_string`).
    absent_unlisted
        Whether loci mentioned nowhere count as absent (the kit typed them all) or as not tested.

    Raises
    ------
    NomenclatureError, UnknownAllele
        For a name that is not a KIR gene or allele.
    CaseInvalid
        For contradictions, e.g. a gene both present and absent.

    Examples
    --------
    >>> calls = calls_from_lists(["KIR2DL1", "2DL3"], untested=["3DS1"])
    >>> sorted(calls.present), KirGene.KIR3DS1 in calls.untested, KirGene.KIR2DL2 in calls.absent
    ([<KirGene.KIR2DL1: 'KIR2DL1'>, <KirGene.KIR2DL3: 'KIR2DL3'>], True, True)
    """
    collector = _Collector()
    for tokens, call in ((present, Call.PRESENT), (absent, Call.ABSENT), (untested, Call.UNTESTED)):
        for token in tokens:
            collector.add_token(token, call, f"the {call.value} list")
    if gl_string is not None:
        _collect_gl(collector, gl_string)
    return collector.finish(absent_unlisted)


def calls_from_typing(typing: KirTyping) -> KirCalls:
    """Build calls from the case model's :class:`decidua.core.case.KirTyping`."""
    return calls_from_lists(
        typing.present,
        typing.absent,
        typing.untested,
        gl_string=typing.gl_string,
        absent_unlisted=typing.absent_unlisted,
    )


# --- GL String ------------------------------------------------------------------------------------------------

# GL String (Milius RP et al. Tissue Antigens 2013;82:106; namespaces and versions: gl.nmdp.org, Milius et al.
# 2015): operators by precedence "^" (loci), "|" (genotype list), "+" (genotype), "~" (haplotype), "/" (allele
# list). A namespace prefix "kir#" may carry a release: "kir#2.13.0#..." or "kir2.13.0#...".
_GL_PREFIX = re.compile(r"^(?P<ns>[A-Za-z]+)(?P<version>\d+(?:\.\d+)*)?#(?:(?P<version2>\d+(?:\.\d+)*)#)?")


def calls_from_gl_string(gl_string: str, *, absent_unlisted: bool = True) -> KirCalls:
    """Build calls from a GL String of KIR alleles.

    A gene is present if every alternative of the genotype list (``|``) and every allele list (``/``) names
    it. A gene named in some alternatives only is ambiguous: it counts as not tested, with a note.

    Raises
    ------
    NomenclatureError
        For a malformed GL String, a namespace other than ``kir``, or a malformed allele name.
    UnknownAllele
        For an allele not in the shipped IPD-KIR release.

    Examples
    --------
    >>> calls = calls_from_gl_string("kir#2.13.0#KIR2DL1*0030201+KIR2DL1*0020101^KIR2DL2*001/KIR2DL3*001")
    >>> KirGene.KIR2DL1 in calls.present, KirGene.KIR2DL2 in calls.untested
    (True, True)
    """
    collector = _Collector()
    _collect_gl(collector, gl_string)
    return collector.finish(absent_unlisted)


def _collect_gl(collector: _Collector, gl_string: str) -> None:
    text = gl_string.strip()
    prefix = _GL_PREFIX.match(text)
    if prefix:
        if prefix["ns"].lower() != "kir":
            raise NomenclatureError(f"GL String {gl_string!r} is in namespace {prefix['ns']!r}; expected 'kir'")
        text = text[prefix.end() :]
    if not text or re.search(r"[^A-Za-z0-9*^|+~/]", text):
        raise NomenclatureError(
            f"malformed GL String {gl_string!r}: expected allele names joined by ^ | + ~ /, "
            "optionally after a namespace such as 'kir#2.13.0#'"
        )
    definite_all: set[KirGene] = set()
    ambiguous_all: set[KirGene] = set()
    for block in text.split("^"):
        alternatives: list[tuple[set[KirGene], set[KirGene]]] = []
        for alternative in block.split("|"):
            definite: set[KirGene] = set()
            seen: set[KirGene] = set()
            for allele_list in re.split(r"[+~]", alternative):
                genes: set[KirGene] = set()
                for name in allele_list.split("/"):
                    if not name:
                        raise NomenclatureError(f"malformed GL String {gl_string!r}: empty element")
                    if "*" in name:
                        allele = parse_allele(name)
                        collector.alleles.append(allele)
                        collector.release = allele_table().release
                        genes.add(allele.gene)
                    else:
                        genes.add(parse_gene(name))
                seen |= genes
                if len(genes) == 1:
                    definite |= genes
            alternatives.append((definite, seen))
        present = set.intersection(*(d for d, _ in alternatives))
        named = set.union(*(s for _, s in alternatives))
        definite_all |= present
        ambiguous_all |= named - present
    for gene in sorted(definite_all):
        collector.add(gene, Call.PRESENT, "GL String")
    for gene in sorted(ambiguous_all - definite_all):
        collector.add(gene, Call.UNTESTED, "GL String (ambiguous)")
        collector.notes.append(f"{gene.value} is ambiguous in the GL String (not in every alternative): not tested")


# --- a CSV row ------------------------------------------------------------------------------------------------

_CELL_VALUES: dict[str, Call] = {
    **dict.fromkeys(("1", "+", "P", "POS", "POSITIVE", "PRESENT", "YES", "Y", "TRUE"), Call.PRESENT),
    **dict.fromkeys(("0", "-", "A", "NEG", "NEGATIVE", "ABSENT", "NO", "N", "FALSE"), Call.ABSENT),
    **dict.fromkeys(("", "NT", "ND", "NA", "N/A", "NOT TESTED", "UNTESTED", "NOT DONE"), Call.UNTESTED),
}
CELL_VALUES_HELP = (
    "present: 1, +, P, pos, positive, present, yes, y, true; absent: 0, -, A, neg, negative, absent, no, n, false; "
    "not tested: blank, NT, ND, NA, N/A, not tested, untested, not done"
)


def calls_from_csv_row(row: Mapping[str, object], *, absent_unlisted: bool = False) -> KirCalls:
    """Build calls from one row of a CSV file, given as ``{column: cell}``.

    Columns named after a KIR gene (``KIR2DL1``, ``2DL1``, ``kir_2dl1``; also ``KIR2DS4FL``/``KIR2DS4del``)
    are read; other columns are ignored, except that a column starting with ``KIR`` must name a gene. Cell
    values (case-insensitive): 1/0, +/-, P/A, pos/neg, present/absent, yes/no, true/false; blank, NT, ND, NA
    or ``not tested`` mean not tested (``None`` too). By default a locus without a column is not tested.

    Raises
    ------
    NomenclatureError
        For an unknown ``KIR...`` column or an unrecognised cell value.
    CaseInvalid
        For contradictions (e.g. ``KIR2DL1`` and ``2DL1`` columns that disagree).

    Examples
    --------
    >>> calls = calls_from_csv_row({"case_id": "c1", "KIR2DL1": "1", "kir_2DL2": "0", "KIR3DS1": ""})
    >>> sorted(calls.present), KirGene.KIR3DS1 in calls.untested, KirGene.KIR2DS1 in calls.untested
    ([<KirGene.KIR2DL1: 'KIR2DL1'>], True, True)
    """
    collector = _Collector()
    for column, cell in row.items():
        squashed = _squash(column)
        if squashed not in _GENE_SPELLINGS and squashed not in _VARIANT_SPELLINGS:
            if column.strip().upper().startswith("KIR"):
                raise NomenclatureError(f"CSV column {column!r} is not a KIR gene; {_GENE_HINT}")
            continue
        value = "" if cell is None else str(cell).strip().upper()
        call = _CELL_VALUES.get(value)
        if call is None:
            raise NomenclatureError(f"CSV column {column!r}: cannot read {cell!r}; {CELL_VALUES_HELP}")
        collector.add(_parse_key(column), call, f"column {column!r}")
    return collector.finish(absent_unlisted)


# --- classification -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KirProfile:
    """What a KIR gene-content typing means. ``None`` = undetermined; ``warnings`` say why.

    .. versionadded:: 0.1.0
    """

    genotype: KirGenotype | None
    cen: KirMotif | None
    tel: KirMotif | None
    b_content: int | None  # 0-4
    b_content_group: BContentGroup | None
    activating_count: int | None  # KIR2DS1-5, KIR3DS1 (see module notes on KIR2DS4)
    has_2ds1: bool | None
    has_c1_receptor: bool | None  # KIR2DL2 or KIR2DL3
    has_c2_receptor: bool | None  # KIR2DL1
    present: tuple[KirGene, ...]
    absent: tuple[KirGene, ...]
    untested: tuple[KirGene, ...]
    kir2ds4_variants: tuple[Kir2DS4Variant, ...] = ()  # variants typed present, if distinguished
    warnings: tuple[str, ...] = ()
    ipd_kir_release: str | None = None  # release allele names were checked against, if any were given

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (values are plain strings, numbers, booleans, lists or ``None``).

        Examples
        --------
        >>> rec = classify(calls_from_lists(["2DL3", "3DL1", "2DS4", "2DS2"])).to_record()
        >>> rec["genotype"], rec["cen"], rec["tel"], rec["b_content"], rec["b_content_group"]
        ('Bx', 'AB', 'AA', 1, 'Neutral')
        """

        def plain(value: StrEnum | None) -> str | None:
            return None if value is None else value.value

        return {
            "genotype": plain(self.genotype),
            "cen": plain(self.cen),
            "tel": plain(self.tel),
            "b_content": self.b_content,
            "b_content_group": plain(self.b_content_group),
            "activating_count": self.activating_count,
            "has_2ds1": self.has_2ds1,
            "has_c1_receptor": self.has_c1_receptor,
            "has_c2_receptor": self.has_c2_receptor,
            "present": [g.value for g in self.present],
            "absent": [g.value for g in self.absent],
            "untested": [g.value for g in self.untested],
            "kir2ds4_variants": [v.value for v in self.kir2ds4_variants],
            "warnings": list(self.warnings),
            "ipd_kir_release": self.ipd_kir_release,
        }


_Rule = Callable[[Mapping[KirGene, bool]], tuple[Any, str]]


def _decide(calls: KirCalls, genes: tuple[KirGene, ...], rule: _Rule) -> tuple[Any, str | None]:
    """Apply ``rule`` to every completion of the untested ``genes``; a value only if all completions agree."""
    unknown = [g for g in genes if calls.call(g) is Call.UNTESTED]
    known = {g: calls.call(g) is Call.PRESENT for g in genes}
    outcomes = [
        rule(known | dict(zip(unknown, combo, strict=True)))
        for combo in itertools.product((True, False), repeat=len(unknown))
    ]
    values = {value for value, _ in outcomes}
    if len(values) == 1 and None not in values:
        return values.pop(), None
    if not unknown:
        return None, outcomes[0][1]
    return None, "needs " + ", ".join(g.value for g in unknown) + " (not tested)"


def _genotype_rule(p: Mapping[KirGene, bool]) -> tuple[KirGenotype, str]:
    return (KirGenotype.BX if any(p[g] for g in B_GENES) else KirGenotype.AA), ""


def _cen_rule(p: Mapping[KirGene, bool]) -> tuple[KirMotif | None, str]:
    a, b = p[KirGene.KIR2DL3], p[KirGene.KIR2DL2] or p[KirGene.KIR2DS2]
    if a:
        return (KirMotif.AB if b else KirMotif.AA), ""
    if b:
        return KirMotif.BB, ""
    return None, "neither KIR2DL3 (Cen-A) nor KIR2DL2/KIR2DS2 (Cen-B) is present: fits no centromeric motif"


def _tel_rule(p: Mapping[KirGene, bool]) -> tuple[KirMotif | None, str]:
    a, b = p[KirGene.KIR3DL1], p[KirGene.KIR3DS1] or p[KirGene.KIR2DS1]
    if a and b:
        return KirMotif.AB, ""
    if b:
        return KirMotif.BB, ""
    if a and p[KirGene.KIR2DS4]:
        return KirMotif.AA, ""
    if a:
        return None, "KIR3DL1 without KIR2DS4 and without KIR3DS1/KIR2DS1: fits no telomeric motif"
    return None, "neither KIR3DL1 (Tel-A) nor KIR3DS1/KIR2DS1 (Tel-B) is present: fits no telomeric motif"


_CEN_GENES = (KirGene.KIR2DL2, KirGene.KIR2DS2, KirGene.KIR2DL3)
_TEL_GENES = (KirGene.KIR3DL1, KirGene.KIR2DS4, KirGene.KIR3DS1, KirGene.KIR2DS1)
_B_MOTIFS = {KirMotif.AA: 0, KirMotif.AB: 1, KirMotif.BB: 2}


def _flag(calls: KirCalls, genes: tuple[KirGene, ...]) -> bool | None:
    """True if any of ``genes`` is present, False if all are absent, else None."""
    found = [calls.call(g) for g in genes]
    if Call.PRESENT in found:
        return True
    return False if all(c is Call.ABSENT for c in found) else None


def _activating(calls: KirCalls, warnings: list[str]) -> int | None:
    others = tuple(g for g in ACTIVATING if g is not KirGene.KIR2DS4)
    missing = [g.value for g in ACTIVATING if calls.call(g) is Call.UNTESTED]
    ds4 = calls.call(KirGene.KIR2DS4)
    full, deleted = calls.call(Kir2DS4Variant.FULL_LENGTH), calls.call(Kir2DS4Variant.DELETED)
    if ds4 is Call.PRESENT and full is Call.UNTESTED and deleted is Call.PRESENT:
        missing.append("KIR2DS4FL (only the deleted variant is known to be present)")
    if missing:
        warnings.append("activating_count undetermined: needs " + ", ".join(missing) + " (not tested)")
        return None
    count = sum(calls.call(g) is Call.PRESENT for g in others)
    if ds4 is Call.PRESENT:
        if full is Call.ABSENT:
            warnings.append(
                "KIR2DS4: only the deleted variant (not expressed on the cell surface): not counted as activating"
            )
        else:
            count += 1
    return count


def classify(calls: KirCalls) -> KirProfile:
    """Classify a KIR typing (rules and decisions: see the module docstring).

    Examples
    --------
    Group A haplotype with the common B haplotype cB02~tB01 (2DS2-2DL2 ... 3DS1-2DL5A-2DS5-2DS1):

    >>> a = ["3DL3", "2DL3", "2DP1", "2DL1", "3DP1", "2DL4", "3DL1", "2DS4", "3DL2"]
    >>> b = ["3DL3", "2DS2", "2DL2", "3DP1", "2DL4", "3DS1", "2DL5A", "2DS5", "2DS1", "3DL2"]
    >>> p = classify(calls_from_lists(a + b))
    >>> p.genotype.value, p.cen.value, p.tel.value, p.b_content, p.b_content_group.value, p.activating_count
    ('Bx', 'AB', 'AB', 2, 'Better', 5)
    """
    warnings: list[str] = list(calls.notes)
    genotype, why = _decide(calls, B_GENES, _genotype_rule)
    if why:
        warnings.append(f"genotype undetermined: {why}")
    cen, why = _decide(calls, _CEN_GENES, _cen_rule)
    if why:
        warnings.append(f"cen undetermined: {why}")
    tel, why = _decide(calls, _TEL_GENES, _tel_rule)
    if why:
        warnings.append(f"tel undetermined: {why}")
    b_content = None if cen is None or tel is None else _B_MOTIFS[cen] + _B_MOTIFS[tel]
    if b_content is None:
        warnings.append("b_content undetermined: needs both cen and tel")
    group: BContentGroup | None
    if cen is KirMotif.BB:
        group = BContentGroup.BEST
    elif b_content is None:
        group = None
        warnings.append("b_content_group undetermined: needs cen (and tel unless cen is BB)")
    else:
        group = BContentGroup.BETTER if b_content >= 2 else BContentGroup.NEUTRAL
    activating = _activating(calls, warnings)
    for gene in FRAMEWORK:
        if calls.call(gene) is Call.ABSENT:
            warnings.append(
                f"framework gene {gene.value} absent: carried by almost every haplotype; "
                "confirm the typing (rare haplotypes lack it)"
            )
    for allele in calls.alleles:
        if allele.null:
            warnings.append(f"{allele.to_string()} is a null allele (not expressed); the gene counts as present")
    c1 = _flag(calls, (KirGene.KIR2DL2, KirGene.KIR2DL3))
    c2 = _flag(calls, (KirGene.KIR2DL1,))
    ds1 = _flag(calls, (KirGene.KIR2DS1,))
    order = {g: i for i, g in enumerate(KirGene)}
    return KirProfile(
        genotype=genotype,
        cen=cen,
        tel=tel,
        b_content=b_content,
        b_content_group=group,
        activating_count=activating,
        has_2ds1=ds1,
        has_c1_receptor=c1,
        has_c2_receptor=c2,
        present=tuple(sorted(calls.present, key=order.__getitem__)),
        absent=tuple(sorted(calls.absent, key=order.__getitem__)),
        untested=tuple(sorted(calls.untested, key=order.__getitem__)),
        kir2ds4_variants=tuple(v for v in Kir2DS4Variant if v in calls.variants_present),
        warnings=tuple(dict.fromkeys(warnings)),
        ipd_kir_release=calls.release,
    )


def classify_typing(typing: KirTyping) -> KirProfile:
    """Classify the case model's :class:`decidua.core.case.KirTyping`.

    Raises
    ------
    NomenclatureError, UnknownAllele, CaseInvalid
        All :class:`decidua.core.errors.InputError`; the message names the rejected value and what is allowed.

    Examples
    --------
    >>> from decidua.core.case import KirTyping
    >>> classify_typing(KirTyping(present=("2DL1", "2DL3", "3DL1", "2DS4"))).genotype
    <KirGenotype.AA: 'AA'>
    """
    return classify(calls_from_typing(typing))
