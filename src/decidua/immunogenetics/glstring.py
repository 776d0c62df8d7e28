"""GL String structure, one parser for HLA and KIR.

GL String (Milius RP et al., Tissue Antigens 2013;82:106-112, PMID 23849068; namespaces and releases as in the GL
String Code syntax, glstring.org) joins names with operators, by precedence from loosest: ``^`` (loci), ``|``
(genotype list: one of these genotypes), ``+`` (genotype: one per chromosome), ``~`` (haplotype: in phase),
``/`` (allele list: one of these alleles). GL String 1.1 (Mack SJ et al., HLA 2023;102:206-212) adds ``?``:
the sequences could belong to one gene location or another (ambiguity between paralogues); it is read here as
the loosest operator, below ``^``, as the Society for Immune Polymorphism's ``glstring`` library lists it (the
paper's own precedence statement was not available to check). A namespace may come first, with a release:
``hla#3.58.0#...``, ``hla3.58.0#...``, ``kir#2.13.0#...`` or just ``kir#...``.

This module knows the structure only; what a name means is for :mod:`decidua.immunogenetics.hla` and
:mod:`decidua.immunogenetics.kir`, which parse the names they find.

>>> gl = parse_gl_string("hla#3.58.0#C*07:01+C*06:02/C*06:03", "hla")
>>> gl.release, gl.names()
('3.58.0', ('C*07:01', 'C*06:02', 'C*06:03'))
>>> gl.loci[0][0]  # the first genotype: two haplotypes, each of one allele list
((('C*07:01',),), (('C*06:02', 'C*06:03'),))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from decidua.core.errors import NomenclatureError

_NAMESPACE = re.compile(r"^(?P<ns>[A-Za-z]+)(?P<release>\d+(?:\.\d+)*)?#(?:(?P<release2>\d+(?:\.\d+)*)#)?")

AlleleList = tuple[str, ...]  # "/": one of these
Haplotype = tuple[AlleleList, ...]  # "~": in phase
Genotype = tuple[Haplotype, ...]  # "+": one per chromosome
GenotypeList = tuple[Genotype, ...]  # "|": one of these


Loci = tuple[GenotypeList, ...]  # "^": one genotype list per locus


@dataclass(frozen=True, slots=True)
class GlString:
    """A GL String split at its operators: ``locations`` ("?", GL String 1.1: one of these gene assignments; a
    single one without "?") of loci ("^") of genotype lists ("|") of genotypes ("+") of haplotypes ("~") of
    allele lists ("/") of names, each name stripped of surrounding spaces."""

    text: str
    namespace: str | None
    release: str | None
    locations: tuple[Loci, ...]

    @property
    def loci(self) -> Loci:
        """The loci of a GL String without ``?``.

        Raises
        ------
        NomenclatureError
            When the GL String leaves the gene location open (``?``): read :attr:`locations` instead.
        """
        if len(self.locations) > 1:
            raise NomenclatureError(
                f"GL String {self.text!r} leaves the gene location open ('?', GL String 1.1); give one location here"
            )
        return self.locations[0]

    def names(self) -> tuple[str, ...]:
        """Every name, in order."""
        return tuple(
            name
            for loci in self.locations
            for genotypes in loci
            for genotype in genotypes
            for haplotype in genotype
            for alleles in haplotype
            for name in alleles
        )

    def map_names(self, replace: Callable[[str], Iterable[str]]) -> str:
        """The GL String (namespace and release dropped) with each name replaced by the names ``replace`` gives,
        joined as an allele list; a name given twice in one allele list is kept once, in first-seen order."""

        def alleles(names: AlleleList) -> str:
            out: dict[str, None] = {}
            for name in names:
                out.update(dict.fromkeys(replace(name)))
            return "/".join(out)

        return "?".join(
            "^".join(
                "|".join("+".join("~".join(alleles(a) for a in haplotype) for haplotype in genotype) for genotype in gl)
                for gl in loci
            )
            for loci in self.locations
        )


def split_namespace(text: str, namespace: str) -> tuple[str | None, str]:
    """(release or ``None``, the GL String after its namespace). A namespace other than ``namespace`` is refused."""
    s = text.strip()
    found = _NAMESPACE.match(s)
    if found is None:
        return None, s
    if found["ns"].lower() != namespace:
        raise NomenclatureError(f"GL String {text!r} is in namespace {found['ns']!r}; expected {namespace!r}")
    return found["release"] or found["release2"], s[found.end() :]


def parse_gl_string(text: str, namespace: str) -> GlString:
    """Split a GL String of the given namespace (``hla`` or ``kir``) at its operators.

    Raises
    ------
    NomenclatureError
        For an empty GL String, an empty name between operators, or another namespace.
    """
    release, body = split_namespace(text, namespace)
    if not body:
        raise NomenclatureError(f"malformed GL String {text!r}: no names (expected names joined by ^ | + ~ /)")

    def names(part: str) -> AlleleList:
        out = tuple(name.strip() for name in part.split("/"))
        if not all(out):
            raise NomenclatureError(f"malformed GL String {text!r}: an empty name between GL String operators")
        return out

    locations = tuple(
        tuple(
            tuple(
                tuple(tuple(names(alleles) for alleles in haplotype.split("~")) for haplotype in genotype.split("+"))
                for genotype in genotypes.split("|")
            )
            for genotypes in location.split("^")
        )
        for location in body.split("?")
    )
    return GlString(text, namespace, release, locations)
