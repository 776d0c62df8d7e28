"""HLA class I typings at the resolutions labs and registries exchange: G, P, lg, lgx, two-field, serological.

Levels, from the shipped tables derived from IPD-IMGT/HLA (``hla_ligands.tsv.gz``: each allele's G and P group
from ``hla_nom_g.txt`` / ``hla_nom_p.txt``; ``hla_serology.tsv.gz`` from WMDA ``rel_dna_ser.txt``):

* ``G``: the G group holding the allele (identical nucleotide sequence over exons 2 and 3, IPD-IMGT/HLA), by the
  release's own group name; an allele in no group stays itself.
* ``P``: the P group (identical protein sequence over exons 2 and 3); an allele in no group, and every null allele
  (the P file lists none), stays itself.
* ``lgx``: the first two fields of the allele's G group; for an allele in no G group, of its P group; otherwise
  of the allele (expression suffix kept). ``lg``: the same with ``g`` appended. These are py-ard's definitions
  (NMDP, ``reducers/lg_reducer.py`` with its default "ping" mode), with one difference: decidua names groups as the
  release does, where py-ard renames the three groups whose official name is not their first member's.
* ``two-field``: the allele's first two fields (the protein), expression suffix kept (``A*01:01:01:02N`` ->
  ``A*01:01N``).
* ``serological``: the serological antigen(s) WMDA ``rel_dna_ser.txt`` gives the allele (``A1``, ``B62``, ``Cw7``),
  with the basis: unambiguous, possible, assumed (the first field's antigen, never tested) or none. IPD-IMGT/HLA
  publishes the file to cross-check serological against DNA typings, "not ... to infer the serological typing
  of alleles which have not been experimentally characterised"; decidua repeats that caution with the result.

A typing of lower resolution than an allele (``A*01:01``, ``A*01``, a G or P group) stands for every expressed
allele under it and reduces to every distinct result of those (an allele list), as in
:func:`decidua.immunogenetics.ligands.alleles_under`. G groups hold null alleles beside expressed ones, so G, lg
and lgx can give a null allele an expressed allele's name; decidua then says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from decidua.core.errors import NomenclatureError, UnknownAllele
from decidua.immunogenetics.glstring import GlString, parse_gl_string
from decidua.immunogenetics.hla import parse_name
from decidua.immunogenetics.ligands import LigandTable, alleles_under, ligand_table, serology_table

_BASIS = "serology basis: "
SEROLOGY_CAUTION = (
    "WMDA rel_dna_ser.txt serves to cross-check serological and DNA typings; IPD-IMGT/HLA does not produce it to "
    "infer the serology of alleles never characterised serologically (basis 'assumed')"
)


class Level(StrEnum):
    G = "G"
    P = "P"
    LG = "lg"
    LGX = "lgx"
    TWO_FIELD = "two-field"
    SEROLOGICAL = "serological"


@dataclass(frozen=True, slots=True)
class Reduction:
    input: str
    level: Level
    output: str
    release: str
    notes: tuple[str, ...] = ()


def _fields(allele: str) -> tuple[str, list[str], str]:
    """``A*01:01:01:02N`` -> ("A", ["01", "01", "01", "02"], "N")."""
    locus, _, rest = allele.partition("*")
    body = rest.rstrip("NLSQCAGP")
    return locus, body.split(":"), rest[len(body) :].rstrip("GP")


def _two(name: str, suffix: str = "") -> str:
    locus, fields, _ = _fields(name)
    return f"{locus}*{':'.join(fields[:2])}{suffix}"


def reduce_allele(allele: str, level: Level, table: LigandTable) -> str:
    """One allele of the release at ``level`` (not serological; see :func:`reduce_name`)."""
    row = table.rows[allele]
    suffix = _fields(allele)[2]
    if level is Level.G:
        return row.g_group or allele
    if level is Level.P:
        return row.p_group or allele
    if level is Level.TWO_FIELD:
        return _two(allele, suffix)
    group = row.g_group or row.p_group
    lgx = _two(group) if group else _two(allele, suffix)
    return lgx + "g" if level is Level.LG else lgx


def _serology(alleles: list[str]) -> tuple[list[str], list[str]]:
    table = serology_table()
    antigens: dict[str, None] = {}
    bases: dict[str, None] = {}
    for allele in alleles:
        basis, found = table.rows.get(allele, ("not listed", ""))
        antigens.update(dict.fromkeys(found.split("/") if found else ()))
        bases[f"{basis} ({found})" if found else basis] = None
    return list(antigens), [f"{_BASIS}{b}" for b in bases]


def reduce_name(text: str, level: Level) -> tuple[list[str], list[str]]:
    """One name (allele, shorter name, G or P group, serological antigen) -> (its results, notes).

    Raises
    ------
    NomenclatureError
        Malformed (an NMDP code raises its subclass ``MacCode``).
    UnknownAllele
        Well formed, but not in the release.
    """
    name = parse_name(text)
    table = ligand_table()
    alleles, why = alleles_under(name, table)
    if not alleles:
        raise UnknownAllele(str(why))
    if level is Level.SEROLOGICAL:
        antigens, notes = _serology(alleles)
        return antigens or [name.key], notes
    out = list(dict.fromkeys(reduce_allele(a, level, table) for a in alleles))
    notes = []
    null = all(a.endswith("N") for a in alleles)
    if null and level in (Level.G, Level.LG, Level.LGX) and not any(o.removesuffix("g").endswith("N") for o in out):
        what = "is a null allele" if name.suffix == "N" else "stands for null alleles only"
        notes.append(f"{name.key} {what} (not expressed); {', '.join(out)} also names expressed alleles")
    return out, notes


def check_loci(text: str, gl: GlString) -> None:
    """Each allele list names one locus, and every haplotype of a '^' block has its loci in the same order
    (``A*01:01~C*07:01+A*02:01~C*05:01``); ``C*07:02/A*02:01`` or ``A*02:01+B*07:02`` are refused.

    Raises
    ------
    NomenclatureError
        Naming the loci that are mixed.
    """
    for location in gl.locations:
        seen: set[str] = set()
        for block in location:
            orders: set[tuple[str, ...]] = set()
            for genotype in block:
                for haplotype in genotype:
                    order = []
                    for alleles in haplotype:
                        loci = {parse_name(n).locus for n in alleles}
                        if len(loci) > 1:
                            raise NomenclatureError(f"{text!r}: an allele list mixes loci {sorted(loci)}")
                        order.append(loci.pop())
                    orders.add(tuple(order))
            if len(orders) > 1:
                shown = " vs ".join("~".join(o) for o in sorted(orders))
                raise NomenclatureError(
                    f"{text!r}: the sides of a genotype name different loci ({shown}); join loci with '^'"
                )
            again = seen & set(next(iter(orders)))
            if again:
                raise NomenclatureError(f"{text!r}: {', '.join(sorted(again))} in two '^' blocks; one block per locus")
            seen |= set(next(iter(orders)))


def reduce_gl(text: str, level: Level) -> Reduction:
    """A name, allele list or GL String with every name reduced to ``level`` (duplicates in a list merged).

    Raises
    ------
    NomenclatureError, UnknownAllele
        As :func:`reduce_name`, for the first name that fails.

    Examples
    --------
    >>> reduce_gl("A*01:01:01:01+A*02:01:01:01", Level.LGX).output
    'A*01:01+A*02:01'
    >>> reduce_gl("C*07:02:01:01", Level.G).output, reduce_gl("C*07:02:01:01", Level.SEROLOGICAL).output
    ('C*07:02:01G', 'Cw7')
    """
    notes: list[str] = []

    def one(name: str) -> list[str]:
        out, why = reduce_name(name, level)
        notes.extend(n for n in why if n not in notes)
        return out

    gl = parse_gl_string(text, "hla")
    check_loci(text, gl)
    output = gl.map_names(one)
    release = ligand_table().release
    if gl.release and not release.endswith(gl.release):
        notes.append(f"the GL String names release {gl.release}; reduced with the tables of {release}")
    if level is Level.SEROLOGICAL:
        release = serology_table().release
        bases = [n.removeprefix(_BASIS) for n in notes if n.startswith(_BASIS)]
        notes = [n for n in notes if not n.startswith(_BASIS)] + [f"{_BASIS}{', '.join(bases)}", SEROLOGY_CAUTION]
    return Reduction(text, level, output, release, tuple(notes))
