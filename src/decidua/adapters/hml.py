"""NMDP HML (Histoimmunogenetics Markup Language) 1.0.x typing results in: HLA and KIR typings per sample.

HML (github.com/nmdp-bioinformatics/hml, XSDs 1.0, 1.0.1, 1.0.3; namespaces ``http://schemas.nmdp.org/spec/hml/1.0``,
``.../1.0.1``, ``.../1.0.3``) nests ``hml > sample@id > typing@gene-family > allele-assignment@allele-db
@allele-version`` and gives a typing in one of three forms, all read here:

* ``<glstring>`` with the GL String inline (a ``uri`` pointing to a GL Service is refused: decidua does not fetch);
* ``<haploid locus="HLA-C" method="DNA" type="07:01"/>``, one per chromosome (serology, ``method="SER"``, is refused);
* the deprecated ``<genotype-list><diploid-combination><locus-block><allele-list><allele>`` form.

Each typing becomes a GL String in its namespace with the release the file names (``hla#3.58.0#HLA-C*07:01+...``,
``kir#2.13.0#KIR2DL1*003+...``), split per HLA locus; loci other than HLA-A, -B and -C (class II) are left out.
Names are checked with decidua's parsers; an error names the sample and the element (``sample S1, typing 2 (HLA),
allele-assignment 1, glstring 1: ...``). The XML is read with ``defusedxml``: entity declarations and external
references are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from decidua.core.errors import DeciduaError, InputError
from decidua.immunogenetics.glstring import parse_gl_string
from decidua.immunogenetics.hla import parse_genotype_list, parse_gl
from decidua.immunogenetics.kir import calls_from_gl_string
from decidua.immunogenetics.ligands import KirLigand, ligand_of

NAMESPACES = (
    "http://schemas.nmdp.org/spec/hml/1.0",
    "http://schemas.nmdp.org/spec/hml/1.0.1",
    "http://schemas.nmdp.org/spec/hml/1.0.3",
)
HLA_LOCI = ("HLA-A", "HLA-B", "HLA-C")


@dataclass(frozen=True, slots=True)
class HmlTyping:
    """One typing of one sample: a GL String in its namespace, with the release the file names."""

    sample: str
    gene_family: str  # "HLA" or "KIR"
    locus: str | None  # HLA-A, HLA-B or HLA-C; None for KIR (the gene content as a whole)
    gl_string: str  # e.g. "hla#3.58.0#HLA-C*07:01+HLA-C*05:01"
    allele_db: str | None
    allele_version: str | None
    where: str  # the element it came from

    def to_record(self) -> dict[str, str | None]:
        return {
            "sample": self.sample,
            "gene_family": self.gene_family,
            "locus": self.locus,
            "gl_string": self.gl_string,
            "allele_db": self.allele_db,
            "allele_version": self.allele_version,
            "element": self.where,
        }


def read_hml(text: str | bytes, source: str) -> list[HmlTyping]:
    """Every HLA-A/B/C and KIR typing of every sample of an HML document.

    Raises
    ------
    InputError
        For a document that is not HML 1.0.x, a typing in none of the three forms, a GL String on a GL Service, a
        malformed or unknown name: naming ``source``, the sample and the element.
    """
    try:
        root = ElementTree.fromstring(text)
    except DefusedXmlException as exc:
        raise InputError(f"{source}: refused ({type(exc).__name__}): entities and DTDs are not read") from None
    except ElementTree.ParseError as exc:
        raise InputError(f"{source}: not well-formed XML: {exc}") from None
    namespace, _, name = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if name != "hml" or namespace not in NAMESPACES:
        raise InputError(
            f"{source}: the root element is {root.tag!r}; expected <hml> in one of the HML 1.0.x namespaces "
            f"({', '.join(NAMESPACES)})"
        )
    ns = {"h": namespace}
    samples = root.findall("h:sample", ns)
    if not samples:
        raise InputError(f"{source}: no <sample> element")
    out: list[HmlTyping] = []
    seen: set[str] = set()
    for s_no, sample in enumerate(samples, 1):
        sample_id = (sample.get("id") or "").strip()
        if not sample_id:
            raise InputError(f"{source}: sample {s_no}: no id attribute")
        if sample_id in seen:
            raise InputError(f"{source}: sample {sample_id}: appears twice (one <sample> per id)")
        seen.add(sample_id)
        for t_no, typing in enumerate(sample.findall("h:typing", ns), 1):
            family = (typing.get("gene-family") or "").strip().upper()
            where_typing = f"{source}: sample {sample_id}, typing {t_no} ({family or 'no gene-family'})"
            if family not in ("HLA", "KIR"):
                raise InputError(
                    f"{where_typing}: gene-family {typing.get('gene-family')!r}; decidua reads HLA and KIR"
                )
            for a_no, assignment in enumerate(typing.findall("h:allele-assignment", ns), 1):
                where = f"{where_typing}, allele-assignment {a_no}"
                db, version = assignment.get("allele-db"), assignment.get("allele-version")
                for label, gl in _forms(assignment, ns, where):
                    out += _typings(sample_id, family, gl, db, version, f"{where}, {label}")
    return out


def _forms(assignment: Element, ns: dict[str, str], where: str) -> Iterator[tuple[str, str]]:
    """(element, GL String) of each typing in an allele-assignment, whichever form it takes."""
    found = False
    for g_no, gl in enumerate(assignment.findall("h:glstring", ns), 1):
        found = True
        if gl.get("uri") and not (gl.text or "").strip():
            raise InputError(
                f"{where}, glstring {g_no}: a GL Service URI ({gl.get('uri')}); decidua does not fetch it, give the "
                "GL String inline"
            )
        yield f"glstring {g_no}", re.sub(r"\s+", "", gl.text or "")  # line breaks inside a long GL String
    haploids: dict[str, list[str]] = {}
    for h_no, haploid in enumerate(assignment.findall("h:haploid", ns), 1):
        found = True
        locus, method, kind = (haploid.get(k, "").strip() for k in ("locus", "method", "type"))
        if method != "DNA":
            raise InputError(f"{where}, haploid {h_no}: method {method!r}; decidua reads DNA typings (not serology)")
        if not locus or not kind:
            raise InputError(f"{where}, haploid {h_no}: needs locus and type")
        full = locus if locus.startswith("HLA-") else f"HLA-{locus}"
        haploids.setdefault(full, []).append(f"{full}*{kind}")
    for locus, names in haploids.items():
        if len(names) != 2:
            raise InputError(
                f"{where}, haploid ({locus}): {len(names)} haploid element(s); a genotype has two (repeat a "
                "homozygous allele)"
            )
        yield f"haploid ({locus})", "+".join(names)
    for l_no, genotypes in enumerate(assignment.findall("h:genotype-list", ns), 1):
        found = True
        combos = []
        for combo in genotypes.findall("h:diploid-combination", ns):
            blocks = [
                "/".join(
                    (a.text or "").strip()
                    for a in block.findall("h:allele-list/h:allele", ns)
                    if a.get("present", "Y") != "N"  # Y present, U unknown: kept in the list; N: not present
                )
                for block in combo.findall("h:locus-block", ns)
            ]
            combos.append("+".join(blocks))
        yield f"genotype-list {l_no}", "|".join(combos)
    if not found:
        raise InputError(f"{where}: no glstring, haploid or genotype-list")


def _typings(sample: str, family: str, gl: str, db: str | None, version: str | None, where: str) -> list[HmlTyping]:
    namespace = "hla" if family == "HLA" else "kir"
    try:
        parsed = parse_gl_string(gl, namespace)
        release = parsed.release or version
        body = gl.split("#")[-1].strip()
        if family == "KIR":
            calls_from_gl_string(f"kir#{body}")  # every name checked against the shipped IPD-KIR release
            return [HmlTyping(sample, family, None, _coded(namespace, release, body), db, version, where)]
        out = []
        for block in body.split("^"):  # one genotype list per locus
            locus_of = {name.split("*")[0].strip().upper() for name in re.split(r"[/~+|?]", block)}
            locus_of = {x if x.startswith("HLA-") else f"HLA-{x}" for x in locus_of}
            if len(locus_of) != 1:
                raise InputError(f"one locus per '^' block; got {', '.join(sorted(locus_of))}")
            (locus,) = locus_of
            if locus not in HLA_LOCI:
                continue  # class II and other loci: not what decidua reads, left as they are
            names = parse_gl(block)
            parse_genotype_list(block)  # one locus, at most two allele lists per genotype, no '?'
            for name in names:
                call = ligand_of(name.to_string())
                if call.ligand is KirLigand.UNKNOWN:
                    raise InputError(f"{name.to_string()} is not in {call.release}: {call.reason or 'unknown name'}")
            if locus in HLA_LOCI:
                out.append(
                    HmlTyping(sample, family, locus, _coded(namespace, release, block.strip()), db, version, where)
                )
        return out
    except DeciduaError as exc:
        raise InputError(f"{where}: {exc}") from None


def _coded(namespace: str, release: str | None, body: str) -> str:
    if release and not re.fullmatch(r"\d+(\.\d+)*", release):
        release = None  # e.g. "IMGT/HLA" in allele-db, or a free-text version: left out rather than guessed
    return f"{namespace}#{release}#{body}" if release else f"{namespace}#{body}"


__all__ = ["HLA_LOCI", "NAMESPACES", "HmlTyping", "read_hml"]
