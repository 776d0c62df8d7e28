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

from decidua.immunogenetics.kir.calls import (
    CELL_VALUES_HELP,
    KirCalls,
    calls_from_csv_row,
    calls_from_gl_string,
    calls_from_lists,
    calls_from_typing,
)
from decidua.immunogenetics.kir.nomenclature import (
    ACTIVATING,
    B_GENES,
    FRAMEWORK,
    LOCI,
    BContentGroup,
    Call,
    Kir2DS4Variant,
    KirAllele,
    KirAlleleTable,
    KirGene,
    KirGenotype,
    KirMotif,
    allele_table,
    kir3dl1_subtype,
    parse_allele,
    parse_gene,
)
from decidua.immunogenetics.kir.profile import KirProfile, classify, classify_typing

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
    "kir3dl1_subtype",
    "parse_allele",
    "parse_gene",
]
