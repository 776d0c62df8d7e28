"""What a KIR gene-content typing means (:class:`KirProfile`): genotype AA or Bx, Cen/Tel motifs, B-content,
activating count and the inhibitory receptors for C1 and C2; see the package notes for the rules."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from decidua.immunogenetics.kir.calls import KirCalls, calls_from_typing
from decidua.immunogenetics.kir.nomenclature import (
    ACTIVATING,
    B_GENES,
    FRAMEWORK,
    BContentGroup,
    Call,
    Kir2DS4Variant,
    KirGene,
    KirGenotype,
    KirMotif,
    kir3dl1_subtype,
)

if TYPE_CHECKING:
    from decidua.core.case import KirTyping


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
    activating_count: int | None  # KIR2DS1-5, KIR3DS1 (see the package notes on KIR2DS4)
    has_2ds1: bool | None
    has_c1_receptor: bool | None  # KIR2DL2 or KIR2DL3
    has_c2_receptor: bool | None  # KIR2DL1
    present: tuple[KirGene, ...]
    absent: tuple[KirGene, ...]
    untested: tuple[KirGene, ...]
    kir2ds4_variants: tuple[Kir2DS4Variant, ...] = ()  # variants typed present, if distinguished
    warnings: tuple[str, ...] = ()
    ipd_kir_release: str | None = None  # release allele names were checked against, if any were given
    kir3dl1_allotypes: tuple[tuple[str, str], ...] = ()  # (allele, subgroup) for KIR3DL1/S1 alleles typed

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (values are plain strings, numbers, booleans, lists or ``None``).

        Examples
        --------
        >>> from decidua.immunogenetics.kir import calls_from_lists
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
            "kir3dl1_allotypes": [{"allele": a, "subgroup": s} for a, s in self.kir3dl1_allotypes],
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
    """Classify a KIR typing (rules and decisions: see the package docstring, :mod:`decidua.immunogenetics.kir`).

    Examples
    --------
    Group A haplotype with the common B haplotype cB02~tB01 (2DS2-2DL2 ... 3DS1-2DL5A-2DS5-2DS1):

    >>> a = ["3DL3", "2DL3", "2DP1", "2DL1", "3DP1", "2DL4", "3DL1", "2DS4", "3DL2"]
    >>> from decidua.immunogenetics.kir import calls_from_lists
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
        kir3dl1_allotypes=tuple(
            (a.to_string(), subgroup) for a in calls.alleles if (subgroup := kir3dl1_subtype(a)) is not None
        ),
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
