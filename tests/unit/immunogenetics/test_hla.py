from __future__ import annotations

import pytest

from decidua.core.errors import NomenclatureError, UnknownAllele
from decidua.immunogenetics.hla import GroupKind, parse_allele_list, parse_genotype_list, parse_gl, parse_name
from decidua.immunogenetics.ligand_table import Record, classify_motif, leader_residue, motif_76_83, offset_against
from decidua.immunogenetics.ligands import KirLigand, ligand_genotype, ligand_of, ligand_table, ligands_for


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("HLA-C*07:02", "C*07:02"),
        ("C*07:02:01:03", "C*07:02:01:03"),
        ("hla-c*07:02:01:03q", "C*07:02:01:03Q"),
        ("C*04:09N", "C*04:09N"),
        ("C*07:01:01G", "C*07:01:01G"),
        ("C*07:01P", "C*07:01P"),
        ("Cw7", "C*07"),
        ("CW07", "C*07"),
        ("B57", "B*57"),
        ("C0702", "C*07:02"),
        ("C*0702", "C*07:02"),
        ("C*070201", "C*07:02:01"),
        ("B*15:101", "B*15:101"),
    ],
)
def test_names_in_the_forms_labs_send(text: str, key: str) -> None:
    assert parse_name(text).key == key


def test_group_kinds() -> None:
    assert parse_name("C*07:01:01G").group is GroupKind.G
    assert parse_name("C*07:01P").group is GroupKind.P


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C*07:AB", "NMDP multiple allele code"),
        ("A*01:ABCD", "needs expansion"),
        ("B*15101", "cannot be split into fields unambiguously"),
        ("C*07:01:01:01:01", "not an HLA allele name"),
        ("Bw4", "not an HLA allele name"),
        ("", "empty HLA name"),
        ("C*07:01P:01", "not an HLA allele name"),
    ],
)
def test_malformed_names_are_rejected_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(NomenclatureError, match=message):
        parse_name(text)


def test_gl_strings() -> None:
    assert [n.key for n in parse_allele_list("C*07:01/C*07:02")] == ["C*07:01", "C*07:02"]
    genotypes = parse_genotype_list("C*07:01+C*06:02|C*07:02+C*06:02")
    assert [[[n.key for n in al] for al in g] for g in genotypes] == [
        [["C*07:01"], ["C*06:02"]],
        [["C*07:02"], ["C*06:02"]],
    ]
    assert len(parse_gl("hla#3.58.0#A*01:01~C*07:01+A*02:01~C*05:01^B*08:01+B*44:02")) == 6
    with pytest.raises(NomenclatureError, match="mixes loci"):
        parse_allele_list("C*07:01/B*07:02")
    with pytest.raises(NomenclatureError, match="namespace 'kir'"):
        parse_allele_list("kir#KIR2DL1*001")
    with pytest.raises(NomenclatureError, match="empty name"):
        parse_gl("C*07:01++C*06:02")


@pytest.mark.parametrize(
    ("allele", "ligand"),
    [
        ("C*07:02", KirLigand.C1),
        ("C*06:02", KirLigand.C2),
        ("C*04:01", KirLigand.C2),
        ("C*03:04", KirLigand.C1),
        ("C*01:02", KirLigand.C1),
        ("C*05:01", KirLigand.C2),
        ("C*02:02", KirLigand.C2),
        ("C*08:02", KirLigand.C1),
        ("C*12:03", KirLigand.C1),
        ("C*15:02", KirLigand.C2),
        ("C*16:01", KirLigand.C1),
        ("C*17:01", KirLigand.C2),
        ("C*14:02", KirLigand.C1),
        ("C*07:01", KirLigand.C1),
        ("B*57:01", KirLigand.BW4_80I),
        ("B*27:05", KirLigand.BW4_80T),
        ("B*44:02", KirLigand.BW4_80T),
        ("B*51:01", KirLigand.BW4_80I),
        ("B*07:02", KirLigand.BW6),
        ("B*08:01", KirLigand.BW6),
        ("B*46:01", KirLigand.C1),
        ("B*73:01", KirLigand.C1),
        ("A*24:02", KirLigand.BW4_80I),
        ("A*02:01", KirLigand.NONE),  # Bw6 is an HLA-B epitope: HLA-A without Bw4 carries no ligand of the family
        ("A*01:01", KirLigand.NONE),
        ("A*03:01", KirLigand.A3_A11),  # KIR3DL2 ligands
        ("A*11:01", KirLigand.A3_A11),
        ("A*32:01", KirLigand.BW4_80I),
        ("HLA-C*07:02:01:01", KirLigand.C1),
        ("C0702", KirLigand.C1),
    ],
)
def test_well_known_alleles(allele: str, ligand: KirLigand) -> None:
    call = ligand_of(allele)
    assert call.ligand is ligand, call
    assert call.release == "IPD-IMGT/HLA 3.58.0"


def test_hla_a_without_bw4_has_no_ligand_and_says_why() -> None:
    call = ligand_of("A*02:01")
    assert "HLA-A without the Bw4 motif" in (call.reason or "")
    assert "peptide-dependent" in (ligand_of("A*11:01").reason or "")
    # a null A*03 allele is not expressed: no KIR3DL2 ligand either
    null_a03 = sorted(n for n in ligand_table().rows if n.startswith("A*03:") and n.endswith("N"))
    assert null_a03
    assert ligand_of(null_a03[0]).ligand is KirLigand.NONE


@pytest.mark.parametrize(
    ("allele", "residue"),
    [("B*07:02", "M"), ("B*08:01", "M"), ("B*44:02", "T"), ("B*35:01", "T"), ("C*07:02", "M"), ("A*02:01", "M")],
)
def test_leader_minus_21(allele: str, residue: str) -> None:
    assert ligand_of(allele).leader_21 == residue


def test_leader_is_read_only_from_full_length_records() -> None:
    leader = "MLVMAPRTVLLLLSAALALTETWA"
    reference = leader + "GSHSMRYFYTSVSRPGRGEPRFISVGYVDDTQFVRFDSDAASPREEPRAPWIEQEGPEYWDRNTQIYKAQAQTD"
    assert leader_residue(reference, Record("B*99:01", reference.replace("MLVM", "MLVT", 1))) == "T"
    # an exon 2-3 record, and a record with a one-residue deletion in its leader: not determinable
    assert leader_residue(reference, Record("B*99:02", reference[24:])) == "-"
    assert leader_residue(reference, Record("B*99:03", reference[:10] + reference[11:])) == "-"


def test_nulls_present_no_ligand_and_are_not_mistaken_for_their_group() -> None:
    assert ligand_of("C*04:09N").ligand is KirLigand.NONE
    assert ligand_of("B*15:01:01:02N").ligand is KirLigand.NONE
    assert ligand_of("B*15:01").ligand is KirLigand.BW6  # expressed B*15:01 alleles only
    assert ligand_of("B*15:01:01").ligand is KirLigand.BW6


def test_exceptions_inside_allele_groups_make_low_resolution_ambiguous() -> None:
    table = ligand_table()
    c07 = {name: row.ligand for name, row in table.rows.items() if name.startswith("C*07:") and row.kind == "allele"}
    c2_in_c07 = sorted(n for n, lig in c07.items() if lig == "C2")
    assert c2_in_c07, "the release has C2 alleles in the mostly-C1 C*07 group"
    assert ligand_of(c2_in_c07[0]).ligand is KirLigand.C2
    call = ligand_of("Cw7")
    assert call.ligand is KirLigand.AMBIGUOUS
    assert {KirLigand.C1, KirLigand.C2} <= set(call.candidates)
    c1_in_c04 = sorted(n for n, row in table.rows.items() if n.startswith("C*04:") and row[:2] == ("allele", "C1"))
    assert all(isinstance(n, str) for n in c1_in_c04)
    assert c1_in_c04, "and C1 alleles in the mostly-C2 C*04 group"


def test_partial_records_are_numbered_by_alignment() -> None:
    full = (
        "MRVMAPRTLILLLSGALALTETWA"
        "CSHSMKYFFTSVSRPGRGEPRFISVGYVDDTQFVRFDSDAASPRGEPRAPWVEQEGPEYWDRETQKYKRQAQTDRVSLRNLRGYYNQSEAGSHTLQ"
    )
    # an exon 2-3 record: no leader, starts at mature residue 2, one substitution near the start
    partial = "SHSMKYFFTSVSRPGRGEPRFISVGYVDDTQFVRFDSDAASPRGEPRAPWVEQEGPEYWDRETQKYKRQAQTDRVNLRKLRGYYNQSEAGSHTLQ"
    record = Record("C*99:01", partial.replace("MKYFF", "MKYFY"))
    assert offset_against(full, record.sequence) == 25
    motif, note = motif_76_83(full, record)
    assert (motif, note) == ("VNLRKLRG", "")
    assert classify_motif("C", motif) == ("C2", "")
    assert classify_motif("C", "VSLRNLRG") == ("C1", "")
    assert classify_motif("C", "VSLRSLRG")[0] == "unclassified"
    assert motif_76_83(full, Record("C*99:02", "WYNQS" * 3))[1] == "could not be aligned to the reference"


def test_groups_and_lists() -> None:
    assert ligand_of("C*07:01:01G").ligand is KirLigand.C1
    assert "null" in (ligand_of("C*07:01:01G").reason or "")
    assert ligand_of("C*07:01P").ligand is KirLigand.C1
    assert ligand_of("C*07:01/C*07:02").ligand is KirLigand.C1  # every candidate agrees
    mixed = ligand_of("C*07:01/C*06:02")
    assert (mixed.ligand, mixed.candidates) == (KirLigand.AMBIGUOUS, (KirLigand.C1, KirLigand.C2))


def test_unknown_names_are_unknown_not_a_crash() -> None:
    call = ligand_of("C*99:99")
    assert call.ligand is KirLigand.UNKNOWN
    assert "not an allele of IPD-IMGT/HLA 3.58.0" in (call.reason or "")
    assert ligand_of("C*07:02G").ligand is KirLigand.UNKNOWN


def test_genotypes() -> None:
    a, b = ligand_genotype("HLA-C*07:02+HLA-C*06:02")
    assert (a.ligand, b.ligand) == (KirLigand.C1, KirLigand.C2)
    same = ligand_genotype("C*07:01+C*06:02|C*07:02+C*06:02")
    assert [c.ligand for c in same] == [KirLigand.C1, KirLigand.C2]
    differ = ligand_genotype("C*07:01+C*06:02|C*06:02+C*06:02")
    assert [c.ligand for c in differ] == [KirLigand.AMBIGUOUS, KirLigand.AMBIGUOUS]
    with pytest.raises(NomenclatureError, match="give both alleles"):
        ligand_genotype("C*07:02")
    with pytest.raises(NomenclatureError, match="not an HLA-C allele"):
        ligand_genotype("C*07:02+B*07:02")
    with pytest.raises(UnknownAllele, match="C\\*99:99"):
        ligand_genotype("C*07:02+C*99:99")


def test_many_names_resolve_each_distinct_name_once() -> None:
    ligand_of.cache_clear()
    names = ["C*07:02", "C*06:02", "C*07:02"] * 1000
    calls = ligands_for(names)
    assert set(calls) == {"C*07:02", "C*06:02"}
    assert ligand_of.cache_info().misses == 2


def test_records_with_an_indel_near_the_motif_are_not_misread() -> None:
    # A*24:536Q lacks a residue before 76: read at the alignment's numbering its motif looked like residues 77-84
    assert ligand_of("A*24:536Q").ligand is KirLigand.UNCLASSIFIED
    assert "insertion or deletion" in (ligand_of("A*24:536Q").reason or "")
    # an HLA-A motif that is neither Bw4 nor Bw6 is still not Bw4; A*03 and A*11 stay KIR3DL2 ligands
    assert ligand_of("A*02:192").ligand is KirLigand.NONE
    assert ligand_of("A*03:212").ligand is KirLigand.A3_A11
