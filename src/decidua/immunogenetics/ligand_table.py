"""Derive the KIR-ligand table from an IPD-IMGT/HLA release (the ``decidua hla build-table`` step).

For every HLA-A, -B and -C protein record, number the residues by aligning the record to a full-length
reference of its locus (a record whose conserved Asn86-Gln87-Ser88 lies elsewhere than the alignment puts it
has an insertion or deletion near the motif and is left unclassified), read mature residues 76-83 and classify
them:

* HLA-C: Asn80 -> C1, Lys80 -> C2, anything else -> unclassified.
* HLA-B: Val76 with Asn80 -> C1 (the C1 motif of B*46:01 and B*73:01; Moesta et al. J Immunol 2008, Hilton et
  al. Cell Rep 2017); otherwise Bw4 when residues 82-83 are Leu-Arg and Bw6 when they are Arg-Gly (the public
  epitopes are defined by residues 77-83); Bw4 is split by residue 80: Ile -> Bw4-80I, Thr -> Bw4-80T.
* HLA-A: Bw4 as for HLA-B (A*23, A*24, A*25, A*32 carry it); without Bw4 ``none`` (HLA-A carries no
  serological Bw6), except the HLA-A*03 and A*11 allotypes, ``A3/A11`` (KIR3DL2 ligands, peptide-dependent).
* A null allele (suffix N) is not expressed and presents no ligand: ``none``.

Numbering: full-length records begin with the 24-residue leader, so mature residue N is record position 24 + N.
Partial records (about a quarter of HLA-C: exons 2-3 only) begin elsewhere; each record is placed against the
reference by voting over the offsets at which 8-residue words of the reference's mature residues 1-120 occur in
it, which is robust to the few substitutions between alleles. A record whose offset cannot be found, or that
does not cover residues 76-83, is ``unclassified`` with that reason.

The derived facts (allele name -> ligand and residues 76-83) are written to a small gzipped TSV whose header
states the release and cites the database; the release files themselves are never copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from decidua.core.errors import InputError

LEADER = 24
REFERENCES = {"A": "A*01:01:01:01", "B": "B*07:02:01:01", "C": "C*01:02:01:01"}
A3_A11_GROUPS = ("03", "11")
CITATIONS = (
    "Barker DJ et al. The IPD-IMGT/HLA Database. Nucleic Acids Research (2023) 51(D1):D948-D955",
    "Robinson J et al. IPD: the Immuno Polymorphism Database. Nucleic Acids Research (2013) 41:D1234-40",
)
_WORD = 8
_HEADER = re.compile(r"^>HLA:(?P<id>HLA\d+) (?P<name>\S+) (?P<length>\d+) bp")


@dataclass(frozen=True, slots=True)
class Record:
    name: str  # e.g. C*07:02:01:01 (no HLA- prefix)
    sequence: str


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    kind: str  # "allele", "G" or "P"
    ligand: str  # a KirLigand value, or for groups the "/"-joined ligands of their expressed members
    motif: str  # mature residues 76-83, "-" where not covered
    note: str
    g_group: str = ""  # alleles: the G group that holds it ("" if none)
    p_group: str = ""  # alleles: the P group that holds it ("" if none)
    leader: str = ""  # alleles: leader residue -21 (M or T; "-" where the record does not cover it)


def read_fasta(text: str) -> Iterator[Record]:
    name: str | None = None
    chunks: list[str] = []
    for line in text.splitlines():
        if line.startswith(">"):
            if name is not None:
                yield Record(name, "".join(chunks))
            m = _HEADER.match(line)
            if m is None:
                raise InputError(f"unexpected FASTA header {line[:80]!r}")
            name, chunks = m.group("name"), []
        elif line.strip():
            chunks.append(line.strip())
    if name is not None:
        yield Record(name, "".join(chunks))


def offset_against(reference: str, sequence: str) -> int | None:
    """Reference position minus record position, by majority vote of shared 8-residue words; None if none."""
    votes: Counter[int] = Counter()
    index: dict[str, list[int]] = {}
    for i in range(len(sequence) - _WORD + 1):
        index.setdefault(sequence[i : i + _WORD], []).append(i)
    for ref_pos in range(LEADER, min(len(reference), LEADER + 120) - _WORD + 1):
        for rec_pos in index.get(reference[ref_pos : ref_pos + _WORD], ()):
            votes[ref_pos - rec_pos] += 1
    if not votes:
        return None
    top = votes.most_common(2)
    best, count = top[0]
    if count < 3 or (len(top) > 1 and top[1][1] == count):
        return None  # too little shared sequence, or two placements equally good
    return best


def motif_76_83(reference: str, record: Record) -> tuple[str, str]:
    """Mature residues 76-83 of ``record`` ('-' where not covered) and a note ('' if all is well)."""
    offset = offset_against(reference, record.sequence)
    if offset is None:
        return "-" * 8, "could not be aligned to the reference"
    # An insertion or deletion near the motif moves it: the conserved Asn86-Gln87-Ser88 found elsewhere than the
    # alignment puts it (a dozen Q and N alleles of 3.58.0) leaves the motif unnumbered rather than misread.
    expected = LEADER + 86 - 1 - offset
    found = [i for i in range(max(0, expected - 8), expected + 9) if record.sequence.startswith("NQS", i)]
    if found and expected not in found:
        return "-" * 8, "an insertion or deletion near residues 76-88: the motif cannot be numbered"
    out = []
    for mature in range(76, 84):
        pos = LEADER + mature - 1 - offset
        out.append(record.sequence[pos] if 0 <= pos < len(record.sequence) else "-")
    motif = "".join(out)
    note = "" if "-" not in motif else "record does not cover residues 76-83"
    return motif, note


def classify_motif(locus: str, motif: str) -> tuple[str, str]:
    """(ligand, note) from mature residues 76-83 (motif[0] is residue 76)."""
    r76, r80, r82_83 = motif[0], motif[4], motif[6:8]
    if "-" in motif or any(c not in "ACDEFGHIKLMNPQRSTVWY" for c in motif):
        return "unclassified", f"residues 76-83 {motif!r} incomplete or not standard"
    if locus == "C":
        if r80 == "N":
            return "C1", ""
        if r80 == "K":
            return "C2", ""
        return "unclassified", f"HLA-C residue 80 is {r80}, neither Asn (C1) nor Lys (C2)"
    if locus == "B" and r76 == "V" and r80 == "N":
        return "C1", ""
    if locus == "A" and r82_83 != "LR":  # Bw6 is an HLA-B epitope: without Bw4 no epitope of this family
        return "none", "HLA-A without the Bw4 motif: no Bw4/Bw6-family KIR-ligand epitope"
    if r82_83 == "LR":
        if r80 == "I":
            return "Bw4-80I", ""
        if r80 == "T":
            return "Bw4-80T", ""
        return "unclassified", f"Bw4 motif with residue 80 {r80}, neither Ile nor Thr"
    if r82_83 == "RG":
        return "Bw6", ""
    return "unclassified", f"residues 82-83 {r82_83}: neither Bw4 (Leu-Arg) nor Bw6 (Arg-Gly)"


def classify_allele(locus: str, name: str, motif: str) -> tuple[str, str]:
    """(ligand, note) of an expressed allele: the motif's, except that HLA-A*03 and A*11 allotypes are KIR3DL2
    ligands (``A3/A11``) whatever their residues 77-83 (they do not carry Bw4)."""
    ligand, note = classify_motif(locus, motif)
    if locus == "A" and name.split("*")[1].split(":")[0] in A3_A11_GROUPS and ligand in ("none", "Bw6"):
        return "A3/A11", "HLA-A3/A11 allotype: KIR3DL2 ligand (peptide-dependent)"
    return ligand, note


def leader_residue(reference: str, record: Record, position: int = -21) -> str:
    """The leader residue at ``position`` (-24..-1) of a full-length record, '-' when not determinable.

    Only a record that starts at leader residue -24 (Met, placed at offset 0 by the mature-domain alignment) is
    read: a record that starts inside the leader, or whose leader has an insertion or deletion (the alignment
    places its mature domain elsewhere), gives '-' rather than a residue from the wrong position.
    """
    if not record.sequence.startswith("M") or offset_against(reference, record.sequence) != 0:
        return "-"
    return record.sequence[LEADER + position]


def classify_records(records: Iterable[Record]) -> list[Row]:
    records = list(records)
    by_name = {r.name: r for r in records}
    rows = []
    for record in records:
        locus = record.name.split("*")[0]
        reference = by_name[REFERENCES[locus]].sequence
        if not reference.startswith("M") or len(reference) < LEADER + 100:
            raise InputError(f"reference {REFERENCES[locus]} is not a full-length record")
        motif, note = motif_76_83(reference, record)
        leader = leader_residue(reference, record)
        if record.name.endswith("N"):
            rows.append(Row(record.name, "allele", "none", motif, "null allele: not expressed", leader=leader))
            continue
        ligand, why = classify_allele(locus, record.name, motif) if not note else ("unclassified", note)
        rows.append(Row(record.name, "allele", ligand, motif, why, leader=leader))
    return rows


def group_members(text: str) -> dict[str, str]:
    """allele name -> its G (or P) group name, from hla_nom_g.txt / hla_nom_p.txt (class I loci only)."""
    members: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        locus, names, group = line.strip().split(";")
        locus = locus.rstrip("*")
        if locus in REFERENCES and group:
            for m in names.split("/"):
                members[f"{locus}*{m}"] = f"{locus}*{group}"
    return members


def group_rows(text: str, kind: str, alleles: dict[str, str]) -> list[Row]:
    """G or P groups (WMDA format ``C*;07:01:01:01/...;07:01:01G``) -> ligands of their expressed members."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        locus, members, group = line.strip().split(";")
        locus = locus.rstrip("*")
        if locus not in REFERENCES or not group:
            continue
        names = [f"{locus}*{m}" for m in members.split("/")]
        expressed = sorted({alleles[n] for n in names if n in alleles and not n.endswith("N")})
        nulls = [n for n in names if n.endswith("N")]
        note = f"includes {len(nulls)} null allele(s), not distinguishable at this resolution" if nulls else ""
        rows.append(Row(f"{locus}*{group}", kind, "/".join(expressed) or "none", "", note))
    return rows


def release_file(release_dir: Path, name: str) -> Path:
    """A file of the release: at the top of the directory (the release as downloaded) or under ``fasta/`` or
    ``wmda/`` (the layout of the ANHIG/IMGTHLA repository)."""
    for candidate in (release_dir / name, release_dir / "fasta" / name, release_dir / "wmda" / name):
        if candidate.is_file():
            return candidate
    raise InputError(f"{release_dir}: missing release file {name}")


def release_of(release_dir: Path) -> tuple[str, str]:
    """(version, date) from the release's release_version.txt."""
    text = release_file(release_dir, "release_version.txt").read_text("utf-8")
    version = re.search(r"^# version: (.+)$", text, re.M)
    date = re.search(r"^# date: (.+)$", text, re.M)
    if not version:
        raise InputError(f"{release_dir}: release_version.txt names no version")
    return version.group(1).strip(), date.group(1).strip() if date else ""


def derive(release_dir: Path) -> tuple[str, str, list[Row]]:
    """Read a release directory and derive every row of the table."""
    if not release_dir.is_dir():
        raise InputError(f"{release_dir}: not a directory (expected an IPD-IMGT/HLA release)")
    version, date = release_of(release_dir)
    records: list[Record] = []
    for locus in REFERENCES:
        records += read_fasta(release_file(release_dir, f"{locus}_prot.fasta").read_text("utf-8"))
    rows = classify_records(records)
    known = {r.name for r in rows}
    # Alleles named in the release without a protein record (e.g. nulls whose reading frame never starts).
    for line in release_file(release_dir, "Allelelist.txt").read_text("utf-8").splitlines():
        if not line.startswith("HLA"):
            continue
        name = line.split(",")[1].strip()
        if name.split("*")[0] in REFERENCES and name not in known:
            null = name.endswith("N")
            ligand, note = ("none", "null allele: not expressed") if null else ("unclassified", "no protein record")
            rows.append(Row(name, "allele", ligand, "-" * 8, note, leader="-"))
            known.add(name)
    g_text = release_file(release_dir, "hla_nom_g.txt").read_text("utf-8")
    p_text = release_file(release_dir, "hla_nom_p.txt").read_text("utf-8")
    g_of, p_of = group_members(g_text), group_members(p_text)
    rows = [dataclasses.replace(r, g_group=g_of.get(r.name, ""), p_group=p_of.get(r.name, "")) for r in rows]
    alleles = {r.name: r.ligand for r in rows}
    rows += group_rows(g_text, "G", alleles)
    rows += group_rows(p_text, "P", alleles)
    return version, date, rows


def render(version: str, date: str, rows: list[Row], command: str) -> bytes:
    """The gzipped TSV, byte-stable for the same input (no timestamp in the gzip header)."""
    out = io.StringIO()
    out.write(f"# hla_ligands.tsv, written by {command} (do not edit by hand)\n")
    out.write(f"# source: {version} ({date}): A/B/C_prot.fasta, Allelelist.txt, hla_nom_g.txt, hla_nom_p.txt\n")
    for c in CITATIONS:
        out.write(f"# cite: {c}\n")
    out.write("# licence: IPD-IMGT/HLA is CC BY-ND; this file holds facts derived from it, not the release\n")
    out.write(
        "# columns: name, kind (allele/G/P), KIR ligand, mature residues 76-83, note,"
        " G group, P group, leader residue -21\n"
    )
    out.write("name\tkind\tligand\tmotif\tnote\tg_group\tp_group\tleader_21\n")
    for r in rows:
        out.write(f"{r.name}\t{r.kind}\t{r.ligand}\t{r.motif}\t{r.note}\t{r.g_group}\t{r.p_group}\t{r.leader}\n")
    return gzip.compress(out.getvalue().encode("utf-8"), mtime=0)


# --- serological equivalents (WMDA rel_dna_ser.txt) ------------------------------------------------------------

SEROLOGY_FILE = "rel_dna_ser.txt"
_SEROLOGY_PREFIX = {"A": "A", "B": "B", "C": "Cw"}


@dataclass(frozen=True, slots=True)
class SerologyRow:
    name: str  # allele, e.g. A*01:01:01:01
    basis: str  # unambiguous, possible, assumed, null, none (no serological equivalent)
    antigens: str  # "/"-joined antigen names (A1, B62, Cw10); "" for null and none


def _antigens(locus: str, field: str) -> str:
    return "/".join(f"{_SEROLOGY_PREFIX[locus]}{x}" for x in field.split("/") if x not in ("0", "?"))


def serology_rows(text: str) -> list[SerologyRow]:
    """Rows of WMDA ``rel_dna_ser.txt`` (``A*;01:01:01:01;1;;;``: locus; allele; unambiguous antigen; possible
    antigens; assumed antigen; expert-assigned registry search exceptions, not read) for the class I loci.

    IPD-IMGT/HLA's own caution applies and is repeated wherever decidua shows these: the file is a tool for
    checking existing serological and DNA typings against each other, not for inferring the serology of alleles
    that were never characterised serologically ("assumed" is the first field's antigen).
    """
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        parts = line.rstrip("\n").split(";")
        if len(parts) < 5:
            raise InputError(f"{SEROLOGY_FILE} line {number}: expected 6 ';'-separated fields, got {len(parts)}")
        locus, allele, unambiguous, possible, assumed = (p.strip() for p in parts[:5])
        locus = locus.rstrip("*")
        if locus not in _SEROLOGY_PREFIX:
            continue
        name = f"{locus}*{allele}"
        basis, field = next(
            ((b, f) for b, f in (("unambiguous", unambiguous), ("possible", possible), ("assumed", assumed)) if f),
            ("none", ""),
        )
        values = field.split("/") if field else []
        if values == ["0"]:
            rows.append(SerologyRow(name, "null", ""))
        elif "0" in values:  # e.g. a Q allele "0/7": expressed as B7, or not at all
            rows.append(SerologyRow(name, f"{basis} (or null)", _antigens(locus, field)))
        elif basis == "none" or values == ["?"]:
            rows.append(SerologyRow(name, "none", ""))
        else:
            rows.append(SerologyRow(name, basis, _antigens(locus, field)))
    return rows


def broad_rows(text: str) -> list[SerologyRow]:
    """WMDA ``rel_ser_ser.txt`` (``A;9;23/24;``: locus; antigen; its splits; its associated antigens) as rows
    ``A9 includes A23/A24`` for the class I loci, so that a broad antigen stands for the alleles of its splits."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        parts = [p.strip() for p in line.split(";")]
        if len(parts) < 4:
            raise InputError(f"rel_ser_ser.txt line {number}: expected 4 ';'-separated fields, got {len(parts)}")
        locus, antigen, splits, associated = parts[:4]
        prefix = {"A": "A", "B": "B", "Cw": "Cw"}.get(locus)
        if prefix is None:
            continue
        included = [f"{prefix}{x}" for x in (splits.split("/") + associated.split("/")) if x]
        rows.append(SerologyRow(f"{prefix}{antigen}", "includes", "/".join(included)))
    return rows


def derive_serology(release_dir: Path) -> tuple[str, str, list[SerologyRow]] | None:
    """The serology table of a release (``rel_dna_ser.txt``, and ``rel_ser_ser.txt`` when present), or None when
    it has no rel_dna_ser.txt (IPD-IMGT/HLA ships both under ``wmda/``; a directory of the FASTA files alone does
    not hold them)."""
    try:
        path = release_file(release_dir, SEROLOGY_FILE)
    except InputError:
        return None
    version, date = release_of(release_dir)
    rows = serology_rows(path.read_text("utf-8"))
    with contextlib.suppress(InputError):  # without it, broad antigens resolve only to their own alleles
        rows += broad_rows(release_file(release_dir, "rel_ser_ser.txt").read_text("utf-8"))
    return version, date, rows


def render_serology(version: str, date: str, rows: list[SerologyRow], command: str) -> bytes:
    out = io.StringIO()
    out.write(f"# hla_serology.tsv, written by {command} (do not edit by hand)\n")
    out.write(f"# source: {version} ({date}): wmda/{SEROLOGY_FILE}, wmda/rel_ser_ser.txt (rows 'includes')\n")
    for c in CITATIONS:
        out.write(f"# cite: {c}\n")
    out.write("# licence: IPD-IMGT/HLA is CC BY-ND; this file holds facts derived from it, not the release\n")
    out.write("# caution: for cross-checking serological and DNA typings, not for inferring uncharacterised serology\n")
    out.write("name\tbasis\tantigens\n")
    for r in rows:
        out.write(f"{r.name}\t{r.basis}\t{r.antigens}\n")
    return gzip.compress(out.getvalue().encode("utf-8"), mtime=0)
