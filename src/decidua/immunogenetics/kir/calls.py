"""A KIR typing read into :class:`KirCalls` (each locus present, absent or not tested) from gene lists, a case
file's typing, a ``kir`` GL String or a row of a CSV file; contradictions are refused."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from decidua.core.cells import GENE_CELL_HELP, read_gene_cell
from decidua.core.errors import CaseInvalid, NomenclatureError, Problem
from decidua.immunogenetics.glstring import parse_gl_string
from decidua.immunogenetics.kir.nomenclature import (
    DL5_PARTS,
    GENE_HINT,
    GENE_SPELLINGS,
    LOCI,
    VARIANT_SPELLINGS,
    Call,
    Key,
    Kir2DS4Variant,
    KirAllele,
    KirGene,
    allele_table,
    parse_allele,
    parse_gene,
    parse_key,
    squash,
)

if TYPE_CHECKING:
    from decidua.core.case import KirTyping


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

    def call(self, key: Key) -> Call | None:
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
        self.calls: dict[Key, tuple[Call, str]] = {}
        self.alleles: list[KirAllele] = []
        self.notes: list[str] = []
        self.release: str | None = None
        self.problems: list[Problem] = []

    def add(self, key: Key, call: Call, source: str) -> None:
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
            self.add(parse_key(token), call, source)

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

    def _get(self, key: Key) -> Call | None:
        found = self.calls.get(key)
        return found[0] if found else None

    def _derive(self, absent_unlisted: bool) -> None:
        unlisted = Call.ABSENT if absent_unlisted else Call.UNTESTED
        for whole, parts, label in (
            (KirGene.KIR2DL5, DL5_PARTS, "the KIR2DL5A/KIR2DL5B calls"),
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

# GL String structure: decidua.immunogenetics.glstring (one parser for HLA and KIR).


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
    gl = parse_gl_string(gl_string, "kir")
    if any(re.search(r"[^A-Za-z0-9*]", name) for name in gl.names()):
        raise NomenclatureError(
            f"malformed GL String {gl_string!r}: expected allele names joined by ^ | + ~ /, "
            "optionally after a namespace such as 'kir#2.13.0#'"
        )
    # Per gene location ("?", GL String 1.1): the genes every alternative genotype names, and those some name.
    per_location: list[tuple[set[KirGene], set[KirGene]]] = []
    for loci in gl.locations:
        definite_all: set[KirGene] = set()
        named_all: set[KirGene] = set()
        for genotypes in loci:
            alternatives: list[tuple[set[KirGene], set[KirGene]]] = []
            for genotype in genotypes:
                definite: set[KirGene] = set()
                seen: set[KirGene] = set()
                for allele_list in (alleles for haplotype in genotype for alleles in haplotype):
                    genes: set[KirGene] = set()
                    for name in allele_list:
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
            definite_all |= set.intersection(*(d for d, _ in alternatives))
            named_all |= set.union(*(s for _, s in alternatives))
        per_location.append((definite_all, named_all))
    definite_all = set.intersection(*(d for d, _ in per_location))  # present whichever location holds
    if all(d & set(DL5_PARTS) for d, _ in per_location):  # e.g. KIR2DL5A?KIR2DL5B: a KIR2DL5 either way
        definite_all.add(KirGene.KIR2DL5)
    ambiguous_all = set.union(*(n for _, n in per_location)) - definite_all
    for gene in sorted(definite_all):
        collector.add(gene, Call.PRESENT, "GL String")
    for gene in sorted(ambiguous_all - definite_all):
        collector.add(gene, Call.UNTESTED, "GL String (ambiguous)")
        collector.notes.append(f"{gene.value} is ambiguous in the GL String (not in every alternative): not tested")


# --- a CSV row ------------------------------------------------------------------------------------------------

_CELL_CALLS = {True: Call.PRESENT, False: Call.ABSENT, None: Call.UNTESTED}
CELL_VALUES_HELP = GENE_CELL_HELP


def calls_from_csv_row(row: Mapping[str, object], *, absent_unlisted: bool = False) -> KirCalls:
    """Build calls from one row of a CSV file, given as ``{column: cell}``.

    Columns named after a KIR gene (``KIR2DL1``, ``2DL1``, ``kir_2dl1``; also ``KIR2DS4FL``/``KIR2DS4del``)
    are read; other columns are ignored, except that a column starting with ``KIR`` must name a gene. Cell
    values: :data:`decidua.core.cells.GENE_CELL_HELP` (1/0, +/-, P/A, pos/neg, present/absent, yes/no, true/false;
    blank, NT, ND, NA or ``not tested`` mean not tested, ``None`` too). By default a locus without a column is
    not tested.

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
        squashed = squash(column)
        if squashed not in GENE_SPELLINGS and squashed not in VARIANT_SPELLINGS:
            if column.strip().upper().startswith("KIR"):
                raise NomenclatureError(f"CSV column {column!r} is not a KIR gene; {GENE_HINT}")
            continue
        try:
            call = _CELL_CALLS[read_gene_cell(cell)]
        except ValueError as exc:
            raise NomenclatureError(f"CSV column {column!r}: {exc}") from None
        collector.add(parse_key(column), call, f"column {column!r}")
    return collector.finish(absent_unlisted)
