"""HLA typings at G, P, lg, lgx, two-field and serological level; NMDP allele codes; KIR3DL1 allotypes."""

from __future__ import annotations

from pathlib import Path

import pytest

from decidua.core.errors import InputError, MacCode, NomenclatureError, UnknownAllele
from decidua.immunogenetics.kir import calls_from_lists, classify, kir3dl1_subtype, parse_allele
from decidua.immunogenetics.ligand_table import broad_rows, group_members, serology_rows
from decidua.immunogenetics.mac import MacTable, expand_macs, expand_name, read_mac_table
from decidua.immunogenetics.reduce import SEROLOGY_CAUTION, Level, reduce_gl, reduce_name


def levels(text: str) -> dict[str, str]:
    return {level.value: reduce_gl(text, level).output for level in Level}


def test_an_allele_at_every_level() -> None:
    assert levels("A*01:01:01:01") == {
        "G": "A*01:01:01G",
        "P": "A*01:01P",
        "lg": "A*01:01g",
        "lgx": "A*01:01",
        "two-field": "A*01:01",
        "serological": "A1",
    }


def test_groups_are_named_as_the_release_names_them() -> None:
    # hla_nom_g.txt names this group C*02:10:01G although its first member is C*02:02:37 (py-ard: C*02:02:37G)
    assert reduce_gl("C*02:10:01:01", Level.G).output == "C*02:10:01G"
    assert reduce_gl("C*02:10:01:01", Level.LGX).output == "C*02:10"


def test_ungrouped_alleles_stay_themselves_and_lgx_falls_back_to_the_p_group() -> None:
    assert levels("A*01:06")["G"] == "A*01:06"
    assert levels("A*01:06")["lg"] == "A*01:06g"
    # C*06:17 is in no G group but in P group C*06:02P (py-ard's "ping" mode gives C*06:02 as well)
    assert reduce_gl("C*06:17", Level.G).output == "C*06:02:102G"
    assert reduce_gl("C*06:17", Level.LGX).output == "C*06:02"


def test_null_alleles_keep_their_suffix_or_say_that_the_group_is_expressed() -> None:
    r = reduce_gl("A*01:01:01:02N", Level.LGX)
    assert r.output == "A*01:01"
    assert any("null allele" in n for n in r.notes)
    assert reduce_gl("A*01:01:01:02N", Level.P).output == "A*01:01:01:02N"  # the P file lists no null allele
    assert reduce_gl("A*01:01:01:02N", Level.TWO_FIELD).output == "A*01:01N"
    assert reduce_gl("A*01:01:01:02N", Level.SEROLOGICAL).notes[0] == "serology basis: null"


def test_lower_resolution_stands_for_every_allele_under_it() -> None:
    out = reduce_gl("C*07:01", Level.P).output
    assert out == "C*07:01P"
    g = reduce_gl("C*07:01", Level.G).output.split("/")
    assert "C*07:01:01G" in g
    assert len(g) > 10
    assert reduce_gl("C*07:01:01G", Level.LGX).output.split("/")[0] == "C*07:01"


def test_gl_strings_keep_their_structure_and_merge_duplicates() -> None:
    assert reduce_gl("hla#3.58.0#A*01:01:01:01/A*01:01:01:03+A*02:01:01:01", Level.LGX).output == "A*01:01+A*02:01"
    assert reduce_gl("B*15:01:01:01", Level.SEROLOGICAL).output == "B62"


def test_serology_says_its_basis_and_the_caution() -> None:
    r = reduce_gl("A*01:06", Level.SEROLOGICAL)
    assert r.output == "A1"
    assert r.notes == ("serology basis: assumed (A1)", SEROLOGY_CAUTION)


def test_unknown_and_mac_names_raise() -> None:
    with pytest.raises(UnknownAllele, match="C\\*99:99"):
        reduce_name("C*99:99", Level.G)
    with pytest.raises(MacCode, match="needs expansion"):
        reduce_gl("C*07:01+C*07:AB", Level.G)


# --- deriving the tables -----------------------------------------------------------------------------------------


def test_rel_dna_ser_rows() -> None:
    text = "\n".join(
        [
            "# file: rel_dna_ser.txt",
            "A*;01:01:01:01;1;;;",
            "A*;01:01:01:02N;0;;;",
            "A*;01:01:38L;;0/1;;",
            "B*;13:04;;15/21;;13",
            "A*;01:06;;;1;",
            "C*;12:02:01;?;;;",
            "C*;03:03:01:01;9;;;",
            "DRB1*;15:01:01:01;15;;;",
        ]
    )
    rows = {r.name: (r.basis, r.antigens) for r in serology_rows(text)}
    assert rows == {
        "A*01:01:01:01": ("unambiguous", "A1"),
        "A*01:01:01:02N": ("null", ""),
        "A*01:01:38L": ("possible (or null)", "A1"),
        "B*13:04": ("possible", "B15/B21"),
        "A*01:06": ("assumed", "A1"),
        "C*12:02:01": ("none", ""),
        "C*03:03:01:01": ("unambiguous", "Cw9"),  # serological HLA-C antigens are written Cw
    }
    with pytest.raises(InputError, match="line 2"):
        serology_rows("# header\nA*;01:01\n")


def test_group_members() -> None:
    text = "# file: hla_nom_g.txt\nA*;01:01:01:01/01:01:01:02N;01:01:01G\nA*;01:01:02;\nDRB1*;01:01:01;01:01:01G\n"
    assert group_members(text) == {"A*01:01:01:01": "A*01:01:01G", "A*01:01:01:02N": "A*01:01:01G"}


# --- NMDP allele codes -------------------------------------------------------------------------------------------

NUMER = '"LAST UPDATED: 09/30/20"\nCODE\tSUBTYPE\n\nAB\t01/02\nBYHR\t25:01/26:01\nXYZ\t02/99\n'
ALPHA = '"LAST UPDATED: 10/01/20"\n*\tCODE\tSUBTYPE\n\n\tAB\t01/02\n*\tGD\t03:01/52:01\n'


def test_reads_numer_and_alpha_files(tmp_path: Path) -> None:
    numer = tmp_path / "numer.v3.txt"
    numer.write_text(NUMER)
    table = read_mac_table(numer)
    assert table.updated == "LAST UPDATED: 09/30/20"
    assert table.codes["AB"] == ("01", "02")
    alpha = tmp_path / "alpha.v3.txt"
    alpha.write_text(ALPHA)
    assert read_mac_table(alpha).codes == {"AB": ("01", "02"), "GD": ("03:01", "52:01")}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (NUMER + "AB 01/02\n", "line 7"),
        (NUMER + "ab\t01/02\n", "line 7"),
        ('"LAST UPDATED: 09/30/20"\nCODE\tSUBTYPE\n\n', "no allele codes"),
    ],
)
def test_bad_mac_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "numer.v3.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_mac_table(path)


def test_generic_and_allele_specific_codes() -> None:
    table = MacTable("numer.v3.txt", "", {"AB": ("01", "02"), "BYHR": ("25:01", "26:01"), "XYZ": ("02", "999")})
    assert expand_name("A*01:AB", table) == (["A*01:01", "A*01:02"], [])
    assert expand_name("A*25:BYHR", table) == (["A*25:01", "A*26:01"], [])
    with pytest.raises(MacCode, match="first field 25"):
        expand_name("A*26:BYHR", table)  # an allele-specific code is written with its most common first field
    with pytest.raises(MacCode, match=r"not in numer\.v3\.txt"):
        expand_name("A*01:QQ", table)
    names, notes = expand_name("A*01:XYZ", table)  # A*01:999 is not in the release: left out, and said
    assert names == ["A*01:02"]
    assert "A*01:999" in notes[0]
    assert expand_macs("C*07:AB+C*06:02", table) == ("C*07:01/C*07:02+C*06:02", [])


# --- KIR3DL1 allotypes -------------------------------------------------------------------------------------------


def test_kir3dl1_subgroups_only_where_a_source_classifies_them() -> None:
    assert kir3dl1_subtype(parse_allele("KIR3DL1*00101")) == "high"
    assert kir3dl1_subtype(parse_allele("KIR3DL1*004")) == "null"
    assert kir3dl1_subtype(parse_allele("KIR3DL1*007")) == "low"
    assert kir3dl1_subtype(parse_allele("KIR3DL1*008")) == "not classified"
    assert kir3dl1_subtype(parse_allele("KIR3DS1*013")) == "3DS1"
    assert kir3dl1_subtype(parse_allele("KIR2DL1*003")) is None
    profile = classify(calls_from_lists(["2DL1", "KIR3DL1*00101", "KIR3DL1*004", "3DL2", "3DL3", "2DL4", "3DP1"]))
    assert profile.kir3dl1_allotypes == (("KIR3DL1*00101", "high"), ("KIR3DL1*004", "null"))
    assert profile.to_record()["kir3dl1_allotypes"][1] == {"allele": "KIR3DL1*004", "subgroup": "null"}


# --- found by review -------------------------------------------------------------------------------------------


def test_a_name_that_stands_for_null_alleles_only_says_so() -> None:
    r = reduce_gl("A*01:04", Level.LGX)  # A*01:04 names only null alleles in 3.58.0
    assert any("stands for null alleles only" in n for n in r.notes)
    assert reduce_gl("C*06:350N", Level.LG).notes == ()  # still a null name: nothing to warn of


def test_questionable_alleles_keep_the_null_possibility_in_their_serology() -> None:
    assert reduce_gl("B*07:360Q", Level.SEROLOGICAL).notes[0] == "serology basis: assumed (or null) (B7)"
    rows = {r.name: (r.basis, r.antigens) for r in serology_rows("B*;07:360Q;;;0/7;\nC*;12:02:02:24Q;;;0/?;\n")}
    assert rows == {"B*07:360Q": ("assumed (or null)", "B7"), "C*12:02:02:24Q": ("assumed (or null)", "")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C*07:02/A*02:01", "an allele list mixes loci"),
        ("A*02:01+B*07:02", "the sides of a genotype name different loci"),
    ],
)
def test_gl_strings_mixing_loci_are_refused(text: str, message: str) -> None:
    with pytest.raises(NomenclatureError, match=message):
        reduce_gl(text, Level.LGX)
    assert reduce_gl("A*01:01~C*07:01+A*02:01~C*05:01", Level.LGX).output == "A*01:01~C*07:01+A*02:01~C*05:01"
    assert "names release 3.57.0" in reduce_gl("hla#3.57.0#C*07:02", Level.LGX).notes[0]


def test_duplicate_codes_with_another_expansion_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "numer.v3.txt"
    path.write_text(NUMER + "AB\t03/04\n")
    with pytest.raises(InputError, match="code AB again, with another expansion"):
        read_mac_table(path)
    path.write_text(NUMER + "AB\t01/02\n")  # the same line twice is harmless
    assert read_mac_table(path).codes["AB"] == ("01", "02")


def test_serological_antigens_resolve_through_the_wmda_table() -> None:
    from decidua.immunogenetics.ligands import ligand_call

    assert ligand_call("Cw10").ligand == "C1"  # a split of Cw3 (C*03:02/03:04...), not a C*10 allele group
    assert reduce_gl("B62", Level.P).output.startswith("B*15:")
    with pytest.raises(UnknownAllele, match="not the serological equivalent"):
        reduce_name("B99", Level.G)


def test_lg_names_are_refused_with_what_to_give() -> None:
    with pytest.raises(NomenclatureError, match="is an lg name"):
        reduce_gl("A*02:01g", Level.LGX)


def test_broad_antigens_stand_for_their_splits() -> None:
    from decidua.immunogenetics.hla import parse_name
    from decidua.immunogenetics.ligands import alleles_under, ligand_call, ligand_table

    a9 = ligand_call("A9")  # A23 and A24
    assert a9.ligand == "ambiguous"
    assert "Bw4-80I" in a9.candidates
    alleles, note = alleles_under(parse_name("A9"), ligand_table())
    assert {a.split(":")[0] for a in alleles} >= {"A*23", "A*24"}
    assert "splits or associated antigens A23/A24" in (note or "")
    rows = {r.name: r.antigens for r in broad_rows("# header\nA;9;23/24;\nA;2;;203/210\nDR;2;15/16;\n")}
    assert rows == {"A9": "A23/A24", "A2": "A203/A210"}


def test_one_block_per_locus() -> None:
    with pytest.raises(NomenclatureError, match="in two '\\^' blocks"):
        reduce_gl("C*07:02^C*06:02", Level.G)
