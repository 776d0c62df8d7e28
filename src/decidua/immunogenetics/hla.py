"""HLA class I nomenclature: WHO allele names, G and P groups, GL Strings, and the messy forms labs send.

Grammar (WHO Nomenclature Committee for Factors of the HLA System; Marsh SGE et al., Tissue Antigens 2010):
``HLA-C*07:02:01:03Q`` is locus ``C``, up to four colon-separated fields (allele group, protein, synonymous
change in the coding region, change outside it) and an optional expression suffix (N null, L low, S secreted,
Q questionable, C cytoplasm, A aberrant). ``C*07:01:01G`` names a G group (same exon 2-3 nucleotides) and
``C*07:01P`` a P group (same exon 2-3 protein).

GL Strings (Milius RP et al., Tissue Antigens 2013;82:106-112) combine names with ``/`` (allele list: one of
these alleles), ``~`` (haplotype), ``+`` (genotype: one from each chromosome), ``|`` (genotype list: one of these
genotypes) and ``^`` (multilocus), from tightest to loosest binding. An optional namespace prefix
(``hla#3.58.0#``) is accepted.

Messy forms are normalised only where they are unambiguous: ``Cw7`` (a serological antigen: the alleles
WMDA's ``rel_dna_ser.txt`` gives that equivalent, by :mod:`decidua.immunogenetics.ligands`), ``C0702`` and
``C*0702`` (the pre-2010 colon-less form: two-digit fields), ``C*070201``.
Colon-less names whose digits cannot be split unambiguously into two-digit fields are rejected. NMDP multiple
allele codes (``C*07:AB``) need NMDP's code table, which decidua does not download: they raise
:class:`~decidua.core.errors.MacCode` (``needs expansion``) unless expanded first with a code file the user
gives (:mod:`decidua.immunogenetics.mac`).

Why not mhcgnomes or py-ard: py-ard answers from a database it downloads at first use (no network here, and a
moving target for reproducible results); mhcgnomes parses names "in the wild" across species and returns
best-effort interpretations, where decidua must reject what it cannot read exactly and must report
pre-2010 ambiguity instead of resolving it. The grammar above is small, so decidua parses it itself and keeps
the reference data (which names exist) in the derived table of :mod:`decidua.immunogenetics.ligands`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from decidua.core.errors import MacCode, NomenclatureError
from decidua.immunogenetics.glstring import parse_gl_string

CLASS_I_LOCI = ("A", "B", "C")
SUFFIXES = "NLSQCA"


class GroupKind(StrEnum):
    G = "G"  # identical exon 2-3 (class I) nucleotide sequence
    P = "P"  # identical exon 2-3 protein sequence


@dataclass(frozen=True, slots=True)
class HlaName:
    """One HLA allele name (1 to 4 fields), G or P group, or serological antigen (a 1-field name).

    Examples
    --------
    >>> parse_name("HLA-C*07:02:01:03").to_string()
    'HLA-C*07:02:01:03'
    >>> parse_name("Cw7").to_string(), parse_name("C0702").to_string()
    ('HLA-C*07', 'HLA-C*07:02')
    """

    locus: str
    fields: tuple[str, ...]
    suffix: str = ""
    group: GroupKind | None = None
    antigen: bool = False  # a serological antigen (Cw7, B62): the alleles WMDA gives that equivalent

    def to_string(self, prefix: bool = True) -> str:
        body = f"{self.locus}*{':'.join(self.fields)}{self.suffix}{self.group.value if self.group else ''}"
        return f"HLA-{body}" if prefix else body

    @property
    def key(self) -> str:
        """The name as the reference tables spell it (no ``HLA-`` prefix)."""
        return self.to_string(prefix=False)


_WHO = re.compile(
    r"^(?P<locus>[A-Z][A-Z0-9]*)\*(?P<fields>\d{2,4}(?::\d{2,4}){0,3})(?P<suffix>[NLSQCA])?(?P<group>[GP])?$"
)
_MAC = re.compile(r"^(?P<locus>[A-Z][A-Z0-9]*)\*\d{2,3}:[A-Z]{2,5}$")
_COLONLESS = re.compile(r"^(?P<locus>[A-Z][A-Z0-9]*)\*?(?P<digits>\d{4,8})(?P<suffix>[NLSQCA])?$")
_SEROLOGY = re.compile(r"^(?P<locus>A|B|CW|C)(?P<antigen>\d{1,2})$")


def parse_name(text: str) -> HlaName:
    """Parse one HLA name (not a GL String).

    Raises
    ------
    NomenclatureError
        For a malformed name, an NMDP code, or an ambiguous colon-less name; the message says what is allowed.
    """
    raw = text
    if re.fullmatch(r"\s*(HLA-)?[A-Za-z0-9]+\*\d{2,4}:\d{2,4}g\s*", text):
        raise NomenclatureError(
            f"{raw!r} is an lg name (two fields of a G group, py-ard's ARD level), which stands for no exact set of "
            "alleles here; give the allele, the G group (e.g. A*02:01:01G) or the two-field name"
        )
    s = text.strip().upper()
    if s.startswith("HLA-"):
        s = s[4:]
    if not s:
        raise NomenclatureError(f"empty HLA name in {raw!r}")
    if _MAC.match(s):
        raise MacCode(
            f"{raw!r} is an NMDP multiple allele code: it needs expansion with NMDP's code table (numer.v3.txt; "
            "`decidua hla ligand/reduce --mac-file`), or give the alleles as a GL String allele list, "
            "e.g. C*07:01/C*07:02",
            s,
        )
    m = None if ":" not in s and _COLONLESS.match(s) else _WHO.match(s)  # "C*0702" is pre-2010, not a 4-digit field
    if m:
        fields = tuple(m.group("fields").split(":"))
        group = GroupKind(m.group("group")) if m.group("group") else None
        if group is GroupKind.G and len(fields) != 3 and len(fields) != 2:
            raise NomenclatureError(f"{raw!r}: a G group has 3 fields (e.g. C*07:01:01G)")
        if group is GroupKind.P and len(fields) != 2:
            raise NomenclatureError(f"{raw!r}: a P group has 2 fields (e.g. C*07:01P)")
        return HlaName(m.group("locus"), fields, m.group("suffix") or "", group)
    m = _SEROLOGY.match(s)
    if m:
        locus = "C" if m.group("locus") in ("C", "CW") else m.group("locus")
        return HlaName(locus, (f"{int(m.group('antigen')):02d}",), antigen=True)
    m = _COLONLESS.match(s)
    if m:
        digits = m.group("digits")
        if len(digits) % 2:
            raise NomenclatureError(
                f"{raw!r}: a colon-less name with {len(digits)} digits cannot be split into fields unambiguously "
                "(a three-digit field?); write it with colons, e.g. B*15:101"
            )
        return HlaName(
            m.group("locus"), tuple(digits[i : i + 2] for i in range(0, len(digits), 2)), m.group("suffix") or ""
        )
    raise NomenclatureError(
        f"{raw!r} is not an HLA allele name; "
        "expected e.g. HLA-C*07:02, C*07:02:01:03, C*07:01:01G, C*07:01P, Cw7 or C0702"
    )


# --- GL Strings --------------------------------------------------------------------------------------------------

AlleleList = tuple[HlaName, ...]  # "/": one of these
Genotype = tuple[AlleleList, ...]  # "+": one allele list per chromosome (haplotypes "~" kept as separate loci)
GenotypeList = tuple[Genotype, ...]  # "|": one of these genotypes


def _names(text: str, alleles: tuple[str, ...]) -> AlleleList:
    names = tuple(parse_name(part) for part in alleles)
    loci = {n.locus for n in names}
    if len(loci) > 1:
        raise NomenclatureError(f"{text!r}: an allele list mixes loci {sorted(loci)}")
    return names


def parse_allele_list(text: str) -> AlleleList:
    """``C*07:01/C*07:02`` (or one name) -> the names; every name must be of one locus."""
    gl = parse_gl_string(text, "hla")
    if len(gl.loci) != 1 or len(gl.loci[0]) != 1 or len(gl.loci[0][0]) != 1 or len(gl.loci[0][0][0]) != 1:
        parse_name(text)  # one name with a stray operator: say what is wrong with it
        raise NomenclatureError(f"{text!r}: expected one allele or an allele list (names joined by '/')")
    return _names(text, gl.loci[0][0][0][0])


def parse_genotype_list(text: str) -> GenotypeList:
    """A one-locus GL String (``|``, ``+``, ``/``) -> genotype list. ``~`` and ``^`` are rejected here.

    Examples
    --------
    >>> [[[n.key for n in al] for al in g] for g in parse_genotype_list("hla#C*07:01+C*06:02/C*06:03")]
    [[['C*07:01'], ['C*06:02', 'C*06:03']]]
    """
    gl = parse_gl_string(text, "hla")
    if len(gl.loci) > 1 or any(len(haplotype) > 1 for genotype in gl.loci[0] for haplotype in genotype):
        raise NomenclatureError(f"{text!r}: give one locus here (no '^' multilocus or '~' haplotype operators)")
    genotypes = []
    for genotype in gl.loci[0]:
        if len(genotype) > 2:
            raise NomenclatureError(f"{text!r}: a genotype has at most two allele lists ('+' once)")
        genotypes.append(tuple(_names(text, haplotype[0]) for haplotype in genotype))
    return tuple(genotypes)


def parse_gl(text: str) -> tuple[HlaName, ...]:
    """Check a full GL String (any operators) and return every name in it, in order.

    Examples
    --------
    >>> [n.key for n in parse_gl("hla#A*01:01~C*07:01+A*02:01~C*05:01|A*01:01~C*07:02+A*02:01~C*05:01")][:3]
    ['A*01:01', 'C*07:01', 'A*02:01']
    """
    return tuple(parse_name(name) for name in parse_gl_string(text, "hla").names())
