"""KIR-ligand groups of HLA class I typings, from the table derived from IPD-IMGT/HLA.

The table (``data/hla_ligands.tsv.gz``, built by :mod:`decidua.immunogenetics.ligand_table`) gives every A, B and
C allele of the release its ligand by the residues at 76-83, and every G and P group the ligands of its expressed
members. A typing of lower resolution (``C*07``, ``C*07:01``) stands for every allele of the release under it;
when all of those agree the ligand is returned, otherwise ``ambiguous`` with the candidates. Without an
expression suffix a name stands for expressed alleles only: ``B*15:01`` is Bw6 even though B*15:01:01:02N (not
expressed) shares its first fields; ``B*15:01:01:02N`` itself is ``none``.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from importlib import resources
from typing import NamedTuple

from decidua.core.errors import NomenclatureError, UnknownAllele
from decidua.immunogenetics.hla import HlaName, parse_allele_list, parse_genotype_list

TABLE_FILE = "hla_ligands.tsv.gz"
SEROLOGY_FILE = "hla_serology.tsv.gz"
_ANTIGEN_PREFIX = {"A": "A", "B": "B", "C": "Cw"}


class KirLigand(StrEnum):
    """KIR-ligand group of an HLA class I allotype (IPD-KIR ligand calculator's vocabulary, plus call states)."""

    C1 = "C1"  # HLA-C Asn80 (and HLA-B*46:01/B*73:01 with Val76 Asn80): ligand of KIR2DL2/2DL3
    C2 = "C2"  # HLA-C Lys80: ligand of KIR2DL1, KIR2DS1
    BW4_80I = "Bw4-80I"  # HLA-A/B Bw4 motif (residues 77-83) with Ile80: strong KIR3DL1 ligand
    BW4_80T = "Bw4-80T"  # Bw4 with Thr80: weaker KIR3DL1 ligand
    BW6 = "Bw6"  # HLA-B Bw6 motif: not a KIR ligand
    A3_A11 = "A3/A11"  # HLA-A*03 and A*11 allotypes: KIR3DL2 ligands (peptide-dependent)
    NONE = "none"  # no KIR-ligand epitope: a null allele (not expressed), or HLA-A without Bw4 (not A3/A11)
    UNCLASSIFIED = "unclassified"  # residues 76-83 outside the rules, or not covered by the record
    AMBIGUOUS = "ambiguous"  # candidates of a typing disagree
    UNKNOWN = "unknown"  # not in the release


@dataclass(frozen=True, slots=True)
class LigandCall:
    input: str
    ligand: KirLigand
    candidates: tuple[KirLigand, ...] = ()  # the disagreeing ligands, when ambiguous
    release: str | None = None
    reason: str | None = None
    leader_21: str | None = None  # leader residue -21 (M or T; "M/T" when candidates differ; None if not sequenced)


class TableRow(NamedTuple):
    kind: str  # allele, G or P
    ligand: str
    motif: str  # mature residues 76-83
    note: str
    g_group: str  # alleles: the G group holding it, "" if none
    p_group: str
    leader_21: str  # alleles: leader residue -21, "-" if the record does not cover it


@dataclass(frozen=True)
class LigandTable:
    release: str
    rows: dict[str, TableRow]
    prefixes: dict[tuple[str, ...], list[str]] = field(repr=False)  # (locus, *fields) -> allele names under it
    groups: dict[str, list[str]] = field(repr=False)  # G or P group name -> its alleles
    citations: tuple[str, ...] = ()  # how the release asks to be cited


def parse_table(text: str) -> LigandTable:
    release = "unknown release"
    rows: dict[str, TableRow] = {}
    prefixes: dict[tuple[str, ...], list[str]] = {}
    groups: dict[str, list[str]] = {}
    citations: list[str] = []
    for line in text.splitlines():
        if line.startswith("# source: "):
            release = line.removeprefix("# source: ").split(" (")[0]
            continue
        if line.startswith("# cite: "):
            citations.append(line.removeprefix("# cite: "))
            continue
        if not line or line.startswith(("#", "name\t")):
            continue
        name, *values = line.split("\t")
        row = rows[name] = TableRow(*values)
        if row.kind == "allele":
            locus, _, rest = name.partition("*")
            fields = rest.rstrip("NLSQCA").split(":")
            for n in range(1, len(fields) + 1):
                prefixes.setdefault((locus, *fields[:n]), []).append(name)
            for group in (row.g_group, row.p_group):
                if group:
                    groups.setdefault(group, []).append(name)
    return LigandTable(release, rows, prefixes, groups, tuple(citations))


@cache
def ligand_table_source() -> tuple[str, tuple[str, ...]]:
    """The release and citations of the shipped table, from its header lines alone (what every assessment
    records; reading the 40,000 rows for it would cost a command ~0.15 s)."""
    release, citations = "unknown release", []
    with (resources.files("decidua.immunogenetics") / "data" / TABLE_FILE).open("rb") as raw, gzip.open(raw, "rt") as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith("# source: "):
                release = line.removeprefix("# source: ").split(" (")[0]
            elif line.startswith("# cite: "):
                citations.append(line.removeprefix("# cite: ").rstrip("\n"))
    return release, tuple(citations)


@cache
def ligand_table() -> LigandTable:
    """The shipped table (read once)."""
    data = (resources.files("decidua.immunogenetics") / "data" / TABLE_FILE).read_bytes()
    return parse_table(gzip.decompress(data).decode("utf-8"))


@dataclass(frozen=True)
class SerologyTable:
    release: str
    rows: dict[str, tuple[str, str]]  # allele -> (basis, "/"-joined antigens)
    by_antigen: dict[str, list[str]] = field(repr=False)  # antigen (A1, B62, Cw7) -> alleles it is given for
    includes: dict[str, list[str]] = field(repr=False, default_factory=dict)  # broad antigen -> splits, associated


@cache
def serology_table() -> SerologyTable:
    """The shipped serological equivalents from WMDA ``rel_dna_ser.txt`` (read once)."""
    data = (resources.files("decidua.immunogenetics") / "data" / SEROLOGY_FILE).read_bytes()
    release = "unknown release"
    rows: dict[str, tuple[str, str]] = {}
    by_antigen: dict[str, list[str]] = {}
    includes: dict[str, list[str]] = {}
    for line in gzip.decompress(data).decode("utf-8").splitlines():
        if line.startswith("# source: "):
            release = line.removeprefix("# source: ").split(" (")[0]
        elif line and not line.startswith(("#", "name\t")):
            name, basis, antigens = line.split("\t")
            if basis == "includes":
                includes[name] = antigens.split("/")
                continue
            rows[name] = (basis, antigens)
            for antigen in filter(None, antigens.split("/")):
                by_antigen.setdefault(antigen, []).append(name)
    return SerologyTable(release, rows, by_antigen, includes)


def alleles_under(name: HlaName, table: LigandTable) -> tuple[list[str], str | None]:
    """The alleles of the release a name stands for, and a note; ``([], why)`` when the release does not know it.

    An allele name stands for itself; a shorter name for every allele under it; a G or P group for its members.
    Without an expression suffix only expressed alleles count (unless all are null: ``C*04:09`` for C*04:09N).
    """
    key = name.key
    if name.antigen:
        antigen = f"{_ANTIGEN_PREFIX.get(name.locus, name.locus)}{int(name.fields[0])}"
        sero = serology_table()
        named = [antigen, *sero.includes.get(antigen, [])]  # a broad antigen stands for its splits too
        given = list(dict.fromkeys(a for n in named for a in sero.by_antigen.get(n, []) if a in table.rows))
        if not given:
            return [], (
                f"{antigen} is not the serological equivalent of any allele in WMDA rel_dna_ser.txt of {table.release}"
            )
        expressed = [a for a in given if not a.endswith("N")]
        via = f" and its splits or associated antigens {'/'.join(named[1:])}" if len(named) > 1 else ""
        return expressed or given, f"{antigen}: the alleles WMDA gives this serological equivalent{via} (any basis)"
    if name.group is not None:
        row = table.rows.get(key)
        if row is None or row.kind != name.group.value:
            return [], f"{key} is not a {name.group.value} group of {table.release}"
        members = table.groups.get(key, [])
        return [n for n in members if not n.endswith("N")] or members, row.note or None
    if key in table.rows:
        return [key], table.rows[key].note or None
    under = table.prefixes.get((name.locus, *name.fields), [])
    if name.suffix:
        under = [n for n in under if n.endswith(name.suffix)]
    else:
        under = [n for n in under if not n.endswith("N")] or under
    if not under:
        return [], f"{name.to_string()} is not an allele of {table.release}"
    notes = {table.rows[n].note for n in under}
    return under, notes.pop() or None if len(notes) == 1 else None


def _call(text: str, names: Iterable[HlaName], table: LigandTable) -> LigandCall:
    ligands: set[str] = set()
    leaders: set[str] = set()
    notes: list[str] = []
    for name in names:
        alleles, note = alleles_under(name, table)
        if not alleles:
            return LigandCall(text, KirLigand.UNKNOWN, release=table.release, reason=note)
        ligands |= {table.rows[a].ligand for a in alleles}
        leaders |= {table.rows[a].leader_21 for a in alleles}
        if note and note not in notes:
            notes.append(note)
    leaders.discard("-")
    leader = "/".join(sorted(leaders)) or None
    if len(ligands) == 1:
        ligand = KirLigand(ligands.pop())
        return LigandCall(text, ligand, release=table.release, reason="; ".join(notes) or None, leader_21=leader)
    candidates = tuple(sorted((KirLigand(x) for x in ligands), key=list(KirLigand).index))
    return LigandCall(
        text,
        KirLigand.AMBIGUOUS,
        candidates,
        table.release,
        f"candidate alleles are {', '.join(c.value for c in candidates)}",
        leader,
    )


@lru_cache(maxsize=65536)
def ligand_of(text: str) -> LigandCall:
    """KIR-ligand group of one name or allele list (``C*07:01/C*07:02``).

    Raises
    ------
    NomenclatureError
        For a malformed name (unknown but well-formed names give ``unknown``).

    Examples
    --------
    >>> ligand_of("HLA-C*07:02").ligand, ligand_of("C*06:02").ligand, ligand_of("B*57:01").ligand
    (<KirLigand.C1: 'C1'>, <KirLigand.C2: 'C2'>, <KirLigand.BW4_80I: 'Bw4-80I'>)
    >>> ligand_of("B*15:01:01:02N").ligand, ligand_of("C*07:01/C*06:02").ligand
    (<KirLigand.NONE: 'none'>, <KirLigand.AMBIGUOUS: 'ambiguous'>)
    """
    return _call(text, parse_allele_list(text), ligand_table())


def ligands_for(names: Iterable[str]) -> dict[str, LigandCall]:
    """Calls for many names, each distinct name parsed and looked up once (for cohorts)."""
    return {name: ligand_of(name) for name in set(names)}


@lru_cache(maxsize=65536)
def genotype_side(text: str, locus: str = "C") -> LigandCall:
    """The ligand of one side of a genotype (an allele or allele list of ``locus``); cached per distinct text.

    Raises
    ------
    NomenclatureError
        Malformed, or a name of another locus.
    UnknownAllele
        A well-formed name that is not in the release.
    """
    names = parse_allele_list(text)
    wrong = [n for n in names if n.locus != locus]
    if wrong:
        raise NomenclatureError(f"{wrong[0].to_string()} is not an HLA-{locus} allele")
    call = _call(text, names, ligand_table())
    if call.ligand is KirLigand.UNKNOWN:
        raise UnknownAllele(str(call.reason))
    return call


def genotype_sides(text: str) -> list[list[str]]:
    """``A+B|C+D`` -> ``[["A", "B"], ["C", "D"]]`` (namespace removed; each genotype must have two sides).

    Raises
    ------
    NomenclatureError
        When a genotype does not have exactly two sides, or the GL String is malformed.
    """
    parse_genotype_list(text)  # validates the whole GL String
    body = text.strip().rpartition("#")[2]
    genotypes = [[side.strip() for side in g.split("+")] for g in body.split("|")]
    for sides in genotypes:
        if len(sides) != 2:
            raise NomenclatureError(f"{text!r}: give both alleles joined by '+' (a homozygote as C*07:01+C*07:01)")
    return genotypes


def ligand_genotype(text: str, locus: str = "C") -> tuple[LigandCall, LigandCall]:
    """The two ligands of a one-locus genotype GL String, e.g. ``C*07:01+C*06:02``.

    A genotype list (``|``) resolves only when every genotype gives the same pair of ligands.

    Raises
    ------
    NomenclatureError
        Malformed, another locus, or only one allele list (write homozygotes as ``C*07:01+C*07:01``).
    UnknownAllele
        A well-formed name that is not in the release.
    """
    pairs = [(genotype_side(a, locus), genotype_side(b, locus)) for a, b in genotype_sides(text)]
    keys = {tuple(sorted((a.ligand.value, b.ligand.value))) for a, b in pairs}
    if len(keys) == 1:
        return pairs[0]
    ambiguous = LigandCall(
        text,
        KirLigand.AMBIGUOUS,
        release=ligand_table().release,
        reason=f"the genotypes give different ligands: {sorted(keys)}",
    )
    return ambiguous, ambiguous


@dataclass(frozen=True, slots=True)
class LigandAnswer:
    """The ligands of a typing as the command line shows them: one name or allele list (``C1``), a genotype
    (``C1+C2``), or loci joined as the GL String joins them (``C1+C2^Bw4-80I+Bw6``)."""

    ligand: str
    candidates: tuple[str, ...]
    reason: str | None
    leader_21: str | None
    release: str


def ligand_call(text: str) -> LigandAnswer:
    """:func:`ligand_of` for a name or allele list; for a GL String, the ligands of each locus's genotype joined
    as the GL String joins them (haplotypes, ``~``, are refused: give each locus's genotype, joined by ``^``).

    Raises
    ------
    NomenclatureError
        Malformed, a haplotype, or a genotype whose sides name different loci.

    Examples
    --------
    >>> ligand_call("C*07:02+C*06:02^B*57:01+B*07:02").ligand
    'C1+C2^Bw4-80I+Bw6'
    """
    body = text.strip().rpartition("#")[2]
    release = ligand_table().release
    if not any(op in body for op in "+|^~?"):
        call = ligand_of(text)
        candidates = tuple(c.value for c in call.candidates)
        return LigandAnswer(call.ligand.value, candidates, call.reason, call.leader_21, release)
    if "~" in body or "?" in body:
        raise NomenclatureError(
            f"{text!r}: haplotypes ('~') and open gene locations ('?') are not read here; give each locus's "
            "genotype, joined by '^' (e.g. C*07:02+C*06:02^B*57:01+B*07:02)"
        )
    ligands, leaders, reasons = [], [], []
    seen: set[str] = set()
    for block in body.split("^"):
        names = parse_genotype_list(block)  # one locus, two sides at most
        locus = names[0][0][0].locus
        if locus in seen:
            raise NomenclatureError(f"{text!r}: HLA-{locus} in two '^' blocks; one block per locus")
        seen.add(locus)
        pair: tuple[LigandCall, ...] = (
            ligand_genotype(block, locus) if "+" in block else (_call(block, names[0][0], ligand_table()),)
        )
        ligands.append("+".join(c.ligand.value for c in pair))
        leaders.append("+".join(c.leader_21 or "-" for c in pair))  # "-": not sequenced, or not expressed
        reasons += [c.reason for c in pair if c.reason]
    return LigandAnswer("^".join(ligands), (), "; ".join(dict.fromkeys(reasons)) or None, "^".join(leaders), release)
