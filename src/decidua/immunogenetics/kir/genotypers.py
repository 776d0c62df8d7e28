"""KIR typings from genotyping software: T1K, PING and kir-mapper output files, read into decidua's typing.

Each reader takes the text of one output file and gives, per sample, one :class:`LocusCall` per locus the tool
reports (present, absent or not tested, the alleles called, the copy number where given, the tool's quality
measure) and the :class:`~decidua.core.case.KirTyping` a case file holds. Nothing is guessed:

* a call below the quality threshold, a failed sample or locus, or a locus the file does not report is **not
  tested**, with the reason (a locus the tool did not report is never "absent");
* KIR2DL5A/KIR2DL5B stay as the tool reports them (the classification counts either as KIR2DL5); PING's and
  kir-mapper's combined KIR2DL5 locus is KIR2DL5; PING's combined loci (KIR2DL23, KIR2DS35, KIR3DL1S1) are split
  by the alleles called;
* a framework gene (KIR3DL3, KIR3DP1, KIR2DL4, KIR3DL2) absent or not tested is a warning;
* an allele name not in the shipped IPD-KIR release keeps its gene's call and is left out of the GL String, with a
  warning (the tool may use a newer release); an unknown gene or a malformed line is an error naming the line.

Formats (read from the tools' sources; see the README's "Laboratory inputs" for the versions checked):

* **T1K** ``<prefix>_genotype.tsv``: no header, tab-separated, one line per gene of the reference: gene, number
  of alleles (0-2), then allele, abundance, quality for each of two alleles (``.``, ``0``, ``-1`` when there is
  none), and since late 2023 a ninth column of secondary alleles (ignored). Tied alleles share a field, joined by
  commas. Quality is 0-60 (-log10 p against background); T1K's README recommends ignoring alleles of quality <= 0,
  which is the default threshold here. One file holds one sample (its name: ``--sample`` or the file name).
* **PING** ``manualCopyNumberFrame.csv`` (copy number per locus, R ``write.csv`` layout: first header cell
  empty, one row per sample; ``failed`` for a sample without enough KIR3DL3 reads) or ``finalAlleleCalls.csv``
  (genotypes: alleles joined by ``+``, alternative genotypes by a space, ``LOCUS*null`` for an absent copy,
  ``LOCUS*unresolved``, ``failed``). PING writes no quality measure; a copy number of 0 for a locus whose
  thresholds were never set is indistinguishable from absence (PING's own caveat).
* **kir-mapper** ``copy_numbers.table.txt`` (``kir-mapper ncopy``: ``SAMPLE`` and one column per gene, values
  0-4, 4 meaning 4 or more, ``NA`` for a failed sample) or ``<GENE>.calls.txt`` (``kir-mapper genotype``:
  ``Sample, Copy_number, Calls, Ratio, Missings``; alternative genotypes joined by ``;``). The quality measure
  is ``Ratio`` (the share of the gene's SNPs matching the call; below 1 suggests a new allele): below the
  threshold (default 1) the alleles are left out and the copy number still decides presence.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from decidua.core.case import KirTyping
from decidua.core.errors import InputError, NomenclatureError, UnknownAllele
from decidua.immunogenetics.kir.nomenclature import (
    FRAMEWORK,
    Call,
    KirGene,
    allele_table,
    parse_allele,
    parse_gene,
)


class Tool(StrEnum):
    T1K = "t1k"
    PING = "ping"
    KIR_MAPPER = "kir-mapper"


DEFAULT_MIN_QUALITY: dict[Tool, float | None] = {Tool.T1K: 0.0, Tool.PING: None, Tool.KIR_MAPPER: 1.0}
"""Per tool: a call counts when its quality is above (T1K) or at least (kir-mapper's Ratio) this; PING has none."""

# Loci the tools name that are not one decidua gene.
_COMBINED: dict[str, tuple[KirGene, ...]] = {
    "KIR2DL5AB": (KirGene.KIR2DL5,),  # kir-mapper
    "KIR2DL23": (KirGene.KIR2DL2, KirGene.KIR2DL3),  # PING final calls
    "KIR2DS35": (KirGene.KIR2DS3, KirGene.KIR2DS5),
    "KIR3DL1S1": (KirGene.KIR3DL1, KirGene.KIR3DS1),
}
_NOT_KIR = frozenset({"5UPKIR", "HLA-E", "HLA-G"})  # kir-mapper's reference targets, not KIR genes


@dataclass(frozen=True, slots=True)
class LocusCall:
    """One gene as a tool reported it."""

    gene: KirGene
    call: Call
    alleles: tuple[str, ...] = ()  # a GL String of this gene's alleles ("a+b", "a+b|c+d"), empty when none used
    copy_number: int | None = None
    quality: float | None = None  # the tool's measure (T1K: lowest quality of the called alleles; kir-mapper: Ratio)
    note: str | None = None  # why not tested, or what else the tool said

    def to_record(self) -> dict[str, Any]:
        return {
            "gene": self.gene.value,
            "call": self.call.value,
            "alleles": "|".join(self.alleles) or None,
            "copy_number": self.copy_number,
            "quality": self.quality,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class SampleTyping:
    """A sample's KIR typing as read from one tool's file."""

    tool: Tool
    sample: str
    file: str
    loci: tuple[LocusCall, ...]
    min_quality: float | None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def source(self) -> str:
        """Where the typing came from, as the case records it."""
        threshold = "" if self.min_quality is None else f", quality threshold {self.min_quality:g}"
        return f"{self.tool.value} {self.file}, sample {self.sample}{threshold}"

    def to_typing(self) -> KirTyping:
        """The typing a case file holds: genes by call (loci not reported: not tested), the alleles as a GL String."""
        by_call = {c: tuple(x.gene.value for x in self.loci if x.call is c) for c in Call}
        blocks = [x.alleles for x in self.loci if x.call is Call.PRESENT and x.alleles]
        gl = "^".join("|".join(a) for a in blocks)
        release = allele_table().release.removeprefix("IPD-KIR ")
        return KirTyping(
            present=by_call[Call.PRESENT],
            absent=by_call[Call.ABSENT],
            untested=by_call[Call.UNTESTED],
            gl_string=f"kir#{release}#{gl}" if gl else None,
            absent_unlisted=False,
            source=self.source,
        )

    def to_record(self) -> dict[str, Any]:
        typing = self.to_typing()
        return {
            "tool": self.tool.value,
            "sample": self.sample,
            "file": self.file,
            "min_quality": self.min_quality,
            "loci": [x.to_record() for x in self.loci],
            "warnings": list(self.warnings),
            "typing": {
                "present": list(typing.present),
                "absent": list(typing.absent),
                "untested": list(typing.untested),
                "gl_string": typing.gl_string,
                "absent_unlisted": False,
                "source": typing.source,
            },
        }


def read_genotyper(
    text: str, tool: Tool, file: str, *, sample: str | None = None, min_quality: float | None = None
) -> list[SampleTyping]:
    """Every sample of one output file of ``tool`` (only ``sample`` when given), as the file says it; pass the
    typings of all the files of a run to :func:`merge_samples` for one checked typing per sample.

    ``file`` names the file in messages and in the typing's source. ``min_quality`` overrides the tool's default
    threshold (:data:`DEFAULT_MIN_QUALITY`); PING has no quality measure.

    Raises
    ------
    InputError
        For a file not in the tool's format (naming the line and what was expected), an unknown gene, a sample
        not in the file, or a threshold for a tool without quality measure.
    """
    if min_quality is not None and DEFAULT_MIN_QUALITY[tool] is None:
        raise InputError(f"--min-quality: {tool.value} writes no quality measure; leave it out")
    threshold = DEFAULT_MIN_QUALITY[tool] if min_quality is None else min_quality
    text = text.removeprefix("\ufeff")  # a byte-order mark written by some editors
    if not text.strip():
        raise InputError(f"{file}: the file is empty")
    if tool is Tool.T1K:
        found = [_t1k(text, file, sample or _stem(file), threshold)]
    elif tool is Tool.PING:
        found = _ping(text, file)
    else:
        found = _kir_mapper(text, file, threshold)
    if sample is not None:
        found = [s for s in found if s.sample == sample]
        if not found:
            raise InputError(f"{file}: no sample {sample!r} in the file")
    return found


def merge_samples(typings: Sequence[SampleTyping]) -> list[SampleTyping]:
    """One typing per sample from the files of one run (kir-mapper's copy-number table and its per-gene calls
    files; PING's copy numbers and final calls; one file per sample for T1K): a gene not tested in one file takes
    the call of another; a gene's alleles from the file that has them, its call from every file,
    which must agree; then the framework genes are checked (a warning for each one absent or not typed).

    Raises
    ------
    InputError
        When two files disagree about a gene of a sample, or the files come from different tools.
    """
    tools = {t.tool for t in typings}
    if len(tools) > 1:
        raise InputError(f"files of different tools ({', '.join(sorted(t.value for t in tools))}): read them apart")
    by_sample: dict[str, list[SampleTyping]] = {}
    for t in typings:
        by_sample.setdefault(t.sample, []).append(t)
    for sample, parts in by_sample.items():
        if len(parts) > 1 and parts[0].tool is Tool.T1K:
            files = ", ".join(p.file for p in parts)
            raise InputError(f"sample {sample} in {files}: one {parts[0].tool.value} file per sample")
    out = []
    for sample, parts in by_sample.items():
        loci: dict[KirGene, tuple[LocusCall, str]] = {}
        for part in parts:
            for locus in part.loci:
                known = loci.get(locus.gene)
                if known is not None and Call.UNTESTED in (known[0].call, locus.call):
                    if locus.call is Call.UNTESTED:  # the other file decided it: its call, this file's note
                        locus = LocusCall(locus.gene, known[0].call, note=locus.note)
                    else:
                        known = (LocusCall(locus.gene, locus.call, note=known[0].note), known[1])
                if known is not None and known[0].call is not locus.call:
                    raise InputError(
                        f"sample {sample}: {locus.gene.value} is {known[0].call.value} in {known[1]} "
                        f"but {locus.call.value} in {part.file}"
                    )
                if known is None:
                    loci[locus.gene] = (locus, part.file)
                    continue
                old = known[0]
                notes = [n for n in dict.fromkeys((old.note, locus.note)) if n]
                both = LocusCall(
                    locus.gene,
                    locus.call,
                    old.alleles or locus.alleles,
                    old.copy_number if old.copy_number is not None else locus.copy_number,
                    old.quality if old.quality is not None else locus.quality,
                    "; ".join(notes) or None,
                )
                loci[locus.gene] = (both, known[1])
        files = ", ".join(dict.fromkeys(p.file for p in parts))
        warnings = tuple(dict.fromkeys(w for p in parts for w in p.warnings))
        calls = tuple(c for c, _ in loci.values())
        threshold = next((p.min_quality for p in parts if p.min_quality is not None), None)
        out.append(_finish(SampleTyping(parts[0].tool, sample, files, calls, threshold, warnings)))
    return out


def _stem(file: str) -> str:
    name = re.split(r"[\\/]", file)[-1]
    return re.sub(r"(_genotype)?\.tsv$", "", name)


def _genes(name: str, where: str) -> tuple[KirGene, ...]:
    """The decidua gene(s) of a tool's locus name: one, two for a combined locus, none for the reference targets
    that are not KIR."""
    upper = name.strip().upper()
    if upper in _NOT_KIR:
        return ()
    if upper in _COMBINED:
        return _COMBINED[upper]
    try:
        return (parse_gene(upper),)
    except NomenclatureError:
        raise InputError(f"{where}: {name!r} is not a KIR gene (is this a KIR genotyping file?)") from None


def _one_gene(name: str, where: str) -> KirGene:
    """The one decidua gene of a locus name (a combined locus such as PING's KIR2DL23 is refused here)."""
    genes = _genes(name, where)
    if len(genes) != 1:
        raise InputError(f"{where}: {name!r} is not one KIR gene")
    return genes[0]


def _allele(name: str, gene: KirGene, where: str, warnings: list[str]) -> str | None:
    """An allele name checked against the shipped IPD-KIR release; ``None`` (with a warning) when unknown."""
    try:
        allele = parse_allele(name)
    except UnknownAllele:
        release = allele_table().release
        warnings.append(f"{where}: {name} is not in {release}: {gene.value} kept, allele unused")
        return None
    except NomenclatureError as exc:
        raise InputError(f"{where}: {exc}") from None
    if allele.gene is not gene and not (gene is KirGene.KIR2DL5 and allele.gene.value.startswith("KIR2DL5")):
        raise InputError(f"{where}: allele {name} is not of {gene.value}")
    return allele.to_string()


def _finish(s: SampleTyping) -> SampleTyping:
    warnings = list(s.warnings)
    calls = {x.gene: x.call for x in s.loci}
    for gene in FRAMEWORK:
        call = calls.get(gene)
        if call is Call.ABSENT:
            warnings.append(f"framework gene {gene.value} reported absent: rare, check the typing")
        elif call is None or call is Call.UNTESTED:
            warnings.append(f"framework gene {gene.value} not typed")
    return SampleTyping(s.tool, s.sample, s.file, s.loci, s.min_quality, tuple(dict.fromkeys(warnings)))


# --- T1K ------------------------------------------------------------------------------------------------------


def _t1k(text: str, file: str, sample: str, threshold: float | None) -> SampleTyping:
    loci: dict[KirGene, LocusCall] = {}
    warnings: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{file} line {number}"
        cells = line.rstrip("\n").split("\t")
        if len(cells) not in (8, 9):
            raise InputError(
                f"{where}: expected 8 or 9 tab-separated columns (gene, allele count, then allele, abundance and "
                f"quality twice), got {len(cells)}; is this T1K's _genotype.tsv?"
            )
        gene = _one_gene(cells[0], where)
        if gene in loci:
            raise InputError(f"{where}: {gene.value} a second time: a T1K file holds one sample")
        try:
            count = int(cells[1])
            slots = [(cells[i], float(cells[i + 1]), float(cells[i + 2])) for i in (2, 5)]
        except ValueError:
            raise InputError(f"{where}: the allele count, abundances and qualities must be numbers") from None
        if count not in (0, 1, 2):
            raise InputError(f"{where}: allele count {count}; T1K writes 0, 1 or 2")
        named = [alleles != "." for alleles, _, _ in slots]
        if named != [i < count for i in range(2)]:
            raise InputError(
                f"{where}: allele count {count} but {sum(named)} allele(s) named; T1K names as many as it counts"
            )
        called = [(alleles, q) for alleles, _, q in slots[:count]]
        if count == 0:
            absent = "no allele called (absent; or below T1K's coverage filter, or not expressed in RNA-seq input)"
            loci[gene] = LocusCall(gene, Call.ABSENT, note=absent)
            continue
        good = [(a, q) for a, q in called if threshold is None or q > threshold]
        if not good:
            worst = max(q for _, q in called)
            loci[gene] = LocusCall(
                gene, Call.UNTESTED, quality=worst, note=f"T1K quality {worst:g} <= {threshold:g}: not counted"
            )
            continue
        names = []
        for alleles, _ in good:
            known = [n for a in alleles.split(",") if (n := _allele(a, gene, where, warnings))]
            if known:
                names.append("/".join(known))
        genotype = "+".join(names) if len(names) == len(good) else ""
        note = None
        if len(good) < len(called):
            note = "second allele below the quality threshold: left out"
        elif count == 1 and gene not in FRAMEWORK:
            note = "one allele: T1K cannot tell one copy from two"
        loci[gene] = LocusCall(
            gene, Call.PRESENT, (genotype,) if genotype else (), quality=min(q for _, q in good), note=note
        )
    if not loci:
        raise InputError(f"{file}: no genes; is this T1K's _genotype.tsv?")
    return SampleTyping(Tool.T1K, sample, file, tuple(loci.values()), threshold, tuple(warnings))


# --- PING -----------------------------------------------------------------------------------------------------


def _csv_rows(text: str, file: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(f"{file}: the file is empty")
    header = rows[0]
    body = [(i, r) for i, r in enumerate(rows[1:], 2) if any(c.strip() for c in r)]
    return header, body


def _ping(text: str, file: str) -> list[SampleTyping]:
    header, body = _csv_rows(text, file)
    if not header or header[0].strip() != "":
        raise InputError(
            f"{file} line 1: expected PING's R write.csv header (an empty first cell, then loci), "
            f"got {header[0] if header else 'nothing'!r}"
        )
    loci = header[1:]
    genes = [_genes(name, f"{file} line 1, column {name!r}") for name in loci]
    copy_file = all(len(g) <= 1 for g in genes)  # the final calls have combined columns (KIR2DL23, ...)
    samples = []
    seen: set[str] = set()
    for number, row in body:
        where = f"{file} line {number}"
        if len(row) != len(header):
            raise InputError(f"{where}: {len(row)} cells; the header has {len(header)}")
        sample = row[0].strip()
        if sample in seen:
            raise InputError(f"{where}: sample {sample!r} a second time")
        seen.add(sample)
        warnings: list[str] = []
        calls: list[LocusCall] = []
        for name, gene, cell in zip(loci, genes, row[1:], strict=True):
            at = f"{where}, {name}"
            if not gene:
                continue
            calls += (
                _ping_copy(gene[0], cell, at) if copy_file else _ping_genotype(name, gene, cell.strip(), at, warnings)
            )
        samples.append(SampleTyping(Tool.PING, sample, file, tuple(calls), None, tuple(warnings)))
    return samples


def _ping_copy(gene: KirGene, cell: str, where: str) -> list[LocusCall]:
    value = cell.strip()
    if value.lower() == "failed":
        return [LocusCall(gene, Call.UNTESTED, note="PING: failed (too few KIR3DL3 reads)")]
    if not re.fullmatch(r"[0-6]", value):
        raise InputError(f"{where}: copy number {cell!r}; PING writes 0-6 or failed")
    copies = int(value)
    note = "PING's normalisation locus: 2 copies assumed" if gene is KirGene.KIR3DL3 else None
    return [LocusCall(gene, Call.PRESENT if copies else Call.ABSENT, copy_number=copies, note=note)]


def _ping_genotype(
    name: str, wanted: tuple[KirGene, ...], cell: str, where: str, warnings: list[str]
) -> list[LocusCall]:
    if cell.lower() in ("failed", "na", ""):
        return [LocusCall(g, Call.UNTESTED, note=f"PING: {cell or 'no call'}") for g in wanted]
    alternatives = [alt.split("+") for alt in cell.split()]
    named: list[set[KirGene]] = []
    unresolved: set[KirGene] = set()
    by_gene: dict[KirGene, list[list[str]]] = {g: [] for g in wanted}
    for alt in alternatives:
        present: set[KirGene] = set()
        per_gene: dict[KirGene, list[str]] = {}
        for allele in alt:
            gene_name, star, rest = allele.partition("*")
            if not star:
                raise InputError(f"{where}: {allele!r} is not an allele name (GENE*digits, *null or *unresolved)")
            if rest == "null":
                continue
            gene = _allele_gene(gene_name, wanted, where)
            present.add(gene)
            if rest == "unresolved":
                unresolved.add(gene)
                continue
            checked = _allele(allele, gene, where, warnings)
            if checked:
                per_gene.setdefault(gene, []).append(checked)
        named.append(present)
        for gene, names in per_gene.items():
            by_gene[gene].append(names)
    out = []
    all_null = not any(named)
    for gene in wanted:
        in_all = all(gene in p for p in named)
        in_some = any(gene in p for p in named)
        if len(wanted) > 1 and not in_some and not all_null:
            # a combined column names only the alleles PING called: the other gene's call may have failed
            out.append(
                LocusCall(
                    gene, Call.UNTESTED, note=f"PING {name}: not called in the combined column (absent, or failed)"
                )
            )
            continue
        if in_all:
            alleles = sorted({"+".join(a) for a in by_gene[gene]}) if gene not in unresolved else []
            note = "PING: unresolved (a new or unlisted allele)" if gene in unresolved else None
            out.append(LocusCall(gene, Call.PRESENT, ("|".join(alleles),) if alleles else (), note=note))
        elif in_some:
            out.append(LocusCall(gene, Call.UNTESTED, note=f"PING {name}: present in some alternative genotypes only"))
        else:
            out.append(LocusCall(gene, Call.ABSENT, note=f"PING {name}: null"))
    return out


def _allele_gene(gene_name: str, wanted: Sequence[KirGene], where: str) -> KirGene:
    found = _one_gene(gene_name, where)
    if found in wanted:
        return found
    if found in (KirGene.KIR2DL5A, KirGene.KIR2DL5B) and KirGene.KIR2DL5 in wanted:
        return KirGene.KIR2DL5
    raise InputError(f"{where}: {gene_name} in the column of {', '.join(g.value for g in wanted)}")


# --- kir-mapper -----------------------------------------------------------------------------------------------


def _tsv(text: str) -> list[tuple[int, list[str]]]:
    return [(i, line.split("\t")) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _kir_mapper(text: str, file: str, threshold: float | None) -> list[SampleTyping]:
    rows = _tsv(text)
    header = [h.strip() for h in rows[0][1]]
    if header[:1] == ["SAMPLE"]:
        return _kir_mapper_copies(header, rows[1:], file)
    if header == ["Sample", "Copy_number", "Calls", "Ratio", "Missings"]:
        return _kir_mapper_calls(rows[1:], file, threshold)
    raise InputError(
        f"{file} line 1: expected kir-mapper's copy_numbers.table.txt (SAMPLE, then genes) or a <GENE>.calls.txt "
        f"(Sample, Copy_number, Calls, Ratio, Missings); got {', '.join(header[:6])}"
    )


def _copies(value: str, where: str) -> int | None:
    value = value.strip()
    if value == "NA":
        return None
    if not re.fullmatch(r"[0-4]", value):
        raise InputError(f"{where}: copy number {value!r}; kir-mapper writes 0-4 or NA")
    return int(value)


def _kir_mapper_copies(header: list[str], rows: Iterable[tuple[int, list[str]]], file: str) -> list[SampleTyping]:
    genes = [_genes(name, f"{file} line 1, column {name!r}") for name in header[1:]]
    out: list[SampleTyping] = []
    for number, cells in rows:
        where = f"{file} line {number}"
        if len(cells) != len(header):
            raise InputError(f"{where}: {len(cells)} columns; the header has {len(header)}")
        calls = []
        for name, gene, cell in zip(header[1:], genes, cells[1:], strict=True):
            if not gene:
                continue
            one = gene[0]
            copies = _copies(cell, f"{where}, {name}")
            if copies is None:
                calls.append(LocusCall(one, Call.UNTESTED, note="kir-mapper: NA (reference depth too low)"))
            else:
                note = "4 or more copies" if copies == 4 else None
                calls.append(LocusCall(one, Call.PRESENT if copies else Call.ABSENT, copy_number=copies, note=note))
        sample = cells[0].strip()
        if any(t.sample == sample for t in out):
            raise InputError(f"{where}: sample {sample!r} a second time")
        out.append(SampleTyping(Tool.KIR_MAPPER, sample, file, tuple(calls), None))
    return out


def _kir_mapper_calls(rows: Iterable[tuple[int, list[str]]], file: str, threshold: float | None) -> list[SampleTyping]:
    out: list[SampleTyping] = []
    for number, cells in rows:
        where = f"{file} line {number}"
        if len(cells) != 5:
            raise InputError(f"{where}: {len(cells)} columns; expected 5 (Sample, Copy_number, Calls, Ratio, Missings)")
        sample, cn, calls_text, ratio_text, missings = (c.strip() for c in cells)
        copies = _copies(cn, f"{where}, Copy_number")
        genotypes = [g.split("+") for g in calls_text.split(";")]
        gene_name = genotypes[0][0].partition("*")[0]
        one = _one_gene(gene_name, where)
        if one in (KirGene.KIR2DL5A, KirGene.KIR2DL5B):
            one = KirGene.KIR2DL5  # kir-mapper's KIR2DL5AB locus holds alleles of both paralogues
        if any(sample == t.sample and t.loci[0].gene is one for t in out):
            raise InputError(f"{where}: sample {sample!r} a second time")
        try:
            ratio = None if ratio_text == "NA" else float(ratio_text)
        except ValueError:
            raise InputError(f"{where}, Ratio: {ratio_text!r} is not a number") from None
        warnings: list[str] = []
        if copies is None:
            call = LocusCall(one, Call.UNTESTED, note="kir-mapper: copy number NA")
        elif copies == 0:
            call = LocusCall(one, Call.ABSENT, copy_number=0, quality=ratio)
        else:
            unresolved = any("unresolved" in a for g in genotypes for a in g)
            usable = not unresolved and ratio is not None and (threshold is None or ratio >= threshold)
            names = []
            if usable:
                for g in genotypes:
                    checked = [_allele(a, one, where, warnings) for a in g if not a.endswith("*null")]
                    if checked and all(checked):
                        names.append("+".join(c for c in checked if c))
            note: str | None
            if unresolved:
                note = "kir-mapper: unresolved alleles"
            elif not usable:
                note = f"kir-mapper Ratio {ratio_text} below {threshold or 0:g}: alleles left out (a new allele?)"
            else:
                note = None if missings in ("0", "NA") else f"kir-mapper: {missings} SNP positions missed"
            alleles = ("|".join(names),) if names and len(names) == len(genotypes) else ()
            call = LocusCall(one, Call.PRESENT, alleles, copy_number=copies, quality=ratio, note=note)
        out.append(SampleTyping(Tool.KIR_MAPPER, sample, file, (call,), threshold, tuple(warnings)))
    return out


__all__ = ["DEFAULT_MIN_QUALITY", "LocusCall", "SampleTyping", "Tool", "merge_samples", "read_genotyper"]
