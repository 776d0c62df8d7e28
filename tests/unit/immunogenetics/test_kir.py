"""KIR gene-content genotypes: parsing, validation and the Cooley rules (GitHub issue 3)."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import pytest

from decidua.core.case import KirTyping
from decidua.core.errors import CaseInvalid, InputError, NomenclatureError, UnknownAllele
from decidua.immunogenetics.kir import (
    BContentGroup,
    Kir2DS4Variant,
    KirGene,
    KirGenotype,
    KirMotif,
    allele_table,
    calls_from_csv_row,
    calls_from_gl_string,
    calls_from_lists,
    classify,
    classify_typing,
    parse_allele,
    parse_gene,
)
from decidua.immunogenetics.kir.nomenclature import allele_table_source
from decidua.immunogenetics.releases import Release, kir_release

from conftest import ROOT, SHARED_REFERENCE

# Common KIR haplotype halves, gene content in gene order.
# Cen-A1 (cA01) and Tel-A1 (tA01): Hou L et al. Genes Immun 2012;13:47-58 (KIR3DL3-KIR2DL3-KIR2DL1 and
# KIR2DL4-KIR3DL1-KIR2DS4-KIR3DL2), with the pseudogenes 2DP1 and 3DP1 of the group A haplotype.
# cB01, cB02 and tB01: Pyo CW et al. PLoS One 2010;5:e15115 and Jiang W et al. Genome Res 2012;22:1845-1854.
CA01 = ("3DL3", "2DL3", "2DP1", "2DL1", "3DP1")
CB01 = ("3DL3", "2DS2", "2DL2", "2DL5B", "2DS3", "2DP1", "2DL1", "3DP1")
CB02 = ("3DL3", "2DS2", "2DL2", "3DP1")
TA01 = ("2DL4", "3DL1", "2DS4", "3DL2")
TB01 = ("2DL4", "3DS1", "2DL5A", "2DS5", "2DS1", "3DL2")
A = CA01 + TA01

# (haplotype 1, haplotype 2) -> genotype, Cen, Tel, B content, group, activating count, 2DS1, C1 receptor, C2 receptor
PAIRS = {
    "A/A": (A, A, "AA", "AA", "AA", 0, "Neutral", 1, False, True, True),
    "A/cA01~tB01": (A, CA01 + TB01, "Bx", "AA", "AB", 1, "Neutral", 4, True, True, True),
    "A/cB01~tA01": (A, CB01 + TA01, "Bx", "AB", "AA", 1, "Neutral", 3, False, True, True),
    "A/cB02~tB01": (A, CB02 + TB01, "Bx", "AB", "AB", 2, "Better", 5, True, True, True),
    "cA01~tB01/cA01~tB01": (CA01 + TB01, CA01 + TB01, "Bx", "AA", "BB", 2, "Better", 3, True, True, True),
    "cB01~tA01/cB02~tA01": (CB01 + TA01, CB02 + TA01, "Bx", "BB", "AA", 2, "Best", 3, False, True, True),
    "cB02~tB01/cB02~tB01": (CB02 + TB01, CB02 + TB01, "Bx", "BB", "BB", 4, "Best", 4, True, True, False),
    "cB01~tB01/cA01~tB01": (CB01 + TB01, CA01 + TB01, "Bx", "AB", "BB", 3, "Better", 5, True, True, True),
}


@pytest.mark.parametrize("pair", PAIRS)
def test_published_haplotype_pairs(pair: str) -> None:
    h1, h2, genotype, cen, tel, score, group, activating, ds1, c1, c2 = PAIRS[pair]
    profile = classify(calls_from_lists(set(h1) | set(h2)))
    assert profile.genotype == KirGenotype(genotype)
    assert profile.cen == KirMotif(cen)
    assert profile.tel == KirMotif(tel)
    assert profile.b_content == score
    assert profile.b_content_group == BContentGroup(group)
    assert profile.activating_count == activating
    assert (profile.has_2ds1, profile.has_c1_receptor, profile.has_c2_receptor) == (ds1, c1, c2)
    assert profile.warnings == ()


# --- gene and allele names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["2DL1", "2dl1", "KIR2DL1", "kir2dl1", " KIR-2DL1 ", "kir_2DL1"])
def test_gene_spellings(spelling: str) -> None:
    assert parse_gene(spelling) is KirGene.KIR2DL1


@pytest.mark.parametrize("bad", ["2DL9", "KIR", "", "3DS2", "HLA-C"])
def test_unknown_gene_is_a_nomenclature_error_naming_it(bad: str) -> None:
    with pytest.raises(NomenclatureError, match="unknown KIR gene") as info:
        parse_gene(bad)
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_allele_names_map_to_their_gene() -> None:
    assert parse_allele("KIR2DL1*0030201").gene is KirGene.KIR2DL1
    assert parse_allele("2dl5a*001").gene is KirGene.KIR2DL5A  # truncated to 3 digits, no prefix
    assert parse_allele("KIR2DS4*00101").to_string() == "KIR2DS4*00101"
    null = parse_allele("KIR2DL1*013N")
    assert null.null
    assert null.suffix == "N"


@pytest.mark.parametrize("bad", ["KIR2DL1*", "KIR2DL1*00", "KIR2DL1*0030", "KIR2DL1*00x", "KIR2DL1:003", "2DL9*001"])
def test_malformed_allele_names(bad: str) -> None:
    with pytest.raises(NomenclatureError, match="malformed KIR allele name"):
        parse_allele(bad)


def test_unknown_alleles() -> None:
    with pytest.raises(UnknownAllele, match=r"'KIR2DL1\*999' is not a KIR2DL1 allele in IPD-KIR 2.13.0"):
        parse_allele("KIR2DL1*999")
    with pytest.raises(UnknownAllele, match="KIR2DL5A"):
        parse_allele("KIR2DL5*001")
    with pytest.raises(UnknownAllele, match="suffix"):
        parse_allele("KIR2DL1*0030201N")


def test_allele_table_records_release_and_citation() -> None:
    table = allele_table()
    assert table.release == "IPD-KIR 2.13.0"
    assert table.date == "2023-12-13"
    assert any("Nucleic Acids Research (2013) 41:D1234-40" in c for c in table.citations)
    assert any("https://www.ebi.ac.uk/ipd/kir/" in c for c in table.citations)
    assert len(table.alleles) > 2000
    assert KirGene.KIR2DL5 not in table.genes()
    assert allele_table() is table  # cached
    # what an assessment records, read from the header alone, is what the table holds
    assert allele_table_source() == (table.release, table.citations)
    assert kir_release() == Release("IPD-KIR", "2.13.0", table.citations)


# --- lists, contradictions, untested genes ----------------------------------------------------------------------


def test_unlisted_genes_are_absent_or_untested() -> None:
    assert KirGene.KIR2DS1 in calls_from_lists(["2DL1"]).absent
    assert KirGene.KIR2DS1 in calls_from_lists(["2DL1"], absent_unlisted=False).untested


def test_gene_both_present_and_absent_is_rejected() -> None:
    with pytest.raises(CaseInvalid, match=r"KIR2DL1: got 'present .* and absent") as info:
        calls_from_lists(["2DL1"], absent=["KIR2DL1"])
    assert isinstance(info.value, InputError)


def test_allele_cannot_be_absent() -> None:
    with pytest.raises(NomenclatureError, match="only gene names"):
        calls_from_lists([], absent=["KIR2DL1*001"])


def test_untested_gene_that_does_not_matter_still_decides() -> None:
    # 2DL2 present and 2DL3 absent: Cen-BB whatever 2DS2 is.
    profile = classify(calls_from_lists(["2DL2", "3DL1", "2DS4"], untested=["2DS2"]))
    assert profile.cen is KirMotif.BB
    assert profile.b_content_group is BContentGroup.BEST
    assert profile.genotype is KirGenotype.BX


def test_untested_gene_that_matters_is_undetermined_with_reason() -> None:
    profile = classify(calls_from_lists(["2DL2", "3DL1", "2DS4"], untested=["2DL3"]))
    assert profile.cen is None
    assert profile.b_content is None
    assert profile.b_content_group is None
    assert "cen undetermined: needs KIR2DL3 (not tested)" in profile.warnings
    record = profile.to_record()
    assert record["cen"] is None
    assert record["b_content_group"] is None


def test_cen_bb_is_best_even_when_tel_is_undetermined() -> None:
    profile = classify(calls_from_lists(["2DL2", "2DS2"], untested=["3DL1"]))
    assert profile.cen is KirMotif.BB
    assert profile.tel is None
    assert profile.b_content is None
    assert profile.b_content_group is BContentGroup.BEST


def test_aa_genotype_needs_every_b_gene_typed() -> None:
    profile = classify(calls_from_lists(A, untested=["2DS3"]))
    assert profile.genotype is None
    assert any("genotype undetermined: needs KIR2DS3" in w for w in profile.warnings)
    assert profile.activating_count is None


def test_patterns_outside_the_rules_are_undetermined() -> None:
    profile = classify(calls_from_lists(["2DL1", "2DL4", "3DL2", "3DL3", "3DP1"]))
    assert profile.cen is None
    assert profile.tel is None
    assert any("fits no centromeric motif" in w for w in profile.warnings)
    assert any("fits no telomeric motif" in w for w in profile.warnings)
    no_2ds4 = classify(calls_from_lists(["2DL3", "3DL1"]))
    assert no_2ds4.tel is None
    assert any("KIR3DL1 without KIR2DS4" in w for w in no_2ds4.warnings)


def test_missing_framework_genes_warn() -> None:
    profile = classify(calls_from_lists(set(A) - {"3DP1"}))
    assert profile.genotype is KirGenotype.AA
    assert any(w.startswith("framework gene KIR3DP1 absent") for w in profile.warnings)


def test_2dl5_paralogues_count_as_2dl5() -> None:
    calls = calls_from_lists([*A, "2DL5B"])
    assert KirGene.KIR2DL5 in calls.present
    assert KirGene.KIR2DL5A in calls.absent  # the typing distinguished the paralogues
    assert classify(calls).genotype is KirGenotype.BX
    with pytest.raises(CaseInvalid, match="KIR2DL5"):
        calls_from_lists(["2DL5A"], absent=["2DL5"])


# --- KIR2DS4 variants ---------------------------------------------------------------------------------------


def test_2ds4_deleted_only_is_gene_content_but_not_activating() -> None:
    profile = classify(calls_from_lists([*CA01, "2DL4", "3DL1", "2DS4del", "3DL2"]))
    assert profile.tel is KirMotif.AA
    assert profile.activating_count == 0
    assert profile.kir2ds4_variants == (Kir2DS4Variant.DELETED,)
    assert any("only the deleted variant" in w for w in profile.warnings)


@pytest.mark.parametrize("spelling", ["2DS4FL", "KIR2DS4-FL", "2ds4full"])
def test_2ds4_full_length_counts(spelling: str) -> None:
    profile = classify(calls_from_lists([*CA01, "2DL4", "3DL1", spelling, "2DS4N", "3DL2"]))
    assert profile.activating_count == 1
    assert set(profile.kir2ds4_variants) == set(Kir2DS4Variant)


def test_2ds4_deleted_with_full_length_untested_is_undetermined() -> None:
    profile = classify(calls_from_lists([*A, "2DS4del"], untested=["2DS4FL"]))
    assert profile.activating_count is None
    assert any("KIR2DS4FL" in w for w in profile.warnings)


def test_2ds4_variant_contradictions() -> None:
    with pytest.raises(CaseInvalid, match="KIR2DS4"):
        calls_from_lists(["2DS4del"], absent=["2DS4"])
    with pytest.raises(CaseInvalid, match="KIR2DS4"):
        calls_from_lists(["2DS4"], absent=["2DS4FL", "2DS4del"])


# --- GL String ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "kir#", "kir2.13.0#", "kir#2.13.0#", "KIR#2.13.0#"])
def test_gl_string_namespaces(prefix: str) -> None:
    calls = calls_from_gl_string(prefix + "KIR2DL1*0010101+KIR2DL1*0030201^KIR2DL3*001^KIR3DL1*002~KIR2DS4*00101")
    assert {KirGene.KIR2DL1, KirGene.KIR2DL3, KirGene.KIR3DL1, KirGene.KIR2DS4} == calls.present
    assert calls.release == "IPD-KIR 2.13.0"
    assert classify(calls).ipd_kir_release == "IPD-KIR 2.13.0"


def test_gl_string_ambiguity_is_untested() -> None:
    calls = calls_from_gl_string("KIR2DL2*001/KIR2DL3*001^KIR2DS2*001|KIR2DS2*002+KIR2DL1*003")
    assert KirGene.KIR2DS2 in calls.present
    assert {KirGene.KIR2DL2, KirGene.KIR2DL3, KirGene.KIR2DL1} <= calls.untested
    assert any("ambiguous" in note for note in calls.notes)
    assert any("ambiguous" in w for w in classify(calls).warnings)


@pytest.mark.parametrize(
    ("gl", "message"),
    [
        ("hla#3.55.0#HLA-C*07:01+HLA-C*06:02", "namespace 'hla'"),
        ("KIR2DL1*001++KIR2DL1*002", "empty name"),
        ("KIR2DL1*001,KIR2DL3*001", "malformed GL String"),
        ("", "malformed GL String"),
        ("KIR2DL1*0x1", "malformed KIR allele name"),
    ],
)
def test_bad_gl_strings(gl: str, message: str) -> None:
    with pytest.raises(NomenclatureError, match=message):
        calls_from_gl_string(gl)


def test_gl_string_unknown_allele() -> None:
    with pytest.raises(UnknownAllele):
        calls_from_gl_string("kir#KIR2DL1*999")


# --- CSV row ----------------------------------------------------------------------------------------------------


def test_csv_row_cell_values() -> None:
    row = {
        "case_id": "c1",
        "KIR2DL1": "1",
        "kir_2DL2": "-",
        "2DL3": "P",
        "KIR2DS1": "neg",
        "KIR3DS1": "",
        "KIR3DL1": "NT",
        "KIR2DS4": None,
        "KIR2DS4del": "present",
    }
    calls = calls_from_csv_row(row)
    assert calls.present == {KirGene.KIR2DL1, KirGene.KIR2DL3, KirGene.KIR2DS4}
    assert {KirGene.KIR2DL2, KirGene.KIR2DS1} == calls.absent
    assert {KirGene.KIR3DS1, KirGene.KIR3DL1, KirGene.KIR2DS2} <= calls.untested  # blank, NT, missing column
    assert calls.variants_present == {Kir2DS4Variant.DELETED}


def test_csv_row_errors() -> None:
    with pytest.raises(NomenclatureError, match="'KIR2DL9' is not a KIR gene"):
        calls_from_csv_row({"KIR2DL9": "1"})
    with pytest.raises(NomenclatureError, match="cannot read 'maybe'"):
        calls_from_csv_row({"KIR2DL1": "maybe"})
    with pytest.raises(CaseInvalid, match="KIR2DL1"):
        calls_from_csv_row({"KIR2DL1": "1", "2DL1": "0"})


# --- the case model and the JSON record -----------------------------------------------------------------------


def test_classify_typing_from_the_case_model() -> None:
    typing = KirTyping(present=("2DL3", "3DL1", "2DS4"), gl_string="kir#KIR2DL2*001", untested=("2DS3",))
    profile = classify_typing(typing)
    assert profile.cen is KirMotif.AB
    assert profile.genotype is KirGenotype.BX
    assert KirGene.KIR2DS3 in profile.untested
    with pytest.raises(NomenclatureError):
        classify_typing(KirTyping(present=("2DL9",)))


def test_record_has_the_documented_keys_and_is_json() -> None:
    record = classify(calls_from_lists(A)).to_record()
    assert {"genotype", "cen", "tel", "b_content", "b_content_group", "warnings"} <= set(record)
    assert record["genotype"] == "AA"
    assert json.loads(json.dumps(record)) == record


# --- the IPD-KIR release (skipped when ../shared/reference is not there) ----------------------------------------

RELEASE = SHARED_REFERENCE / "ipd-kir-2.13.0"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_kir_alleles", ROOT / "tools" / "derive_kir_alleles.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def release_names() -> list[str]:
    path = RELEASE / "Allelelist.txt"
    if not path.exists():
        pytest.skip(f"IPD-KIR release not present at {RELEASE}")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "AlleleID,Allele"
    return [ln.split(",")[1] for ln in lines[1:]]


def test_every_allele_of_the_release_parses_to_its_gene(release_names: list[str]) -> None:
    assert len(release_names) > 2000
    for name in release_names:
        allele = parse_allele(name)
        assert allele.to_string() == name
        assert allele.gene.value == name.split("*")[0]


def test_shipped_table_is_what_the_tool_derives(release_names: list[str]) -> None:
    shipped = (ROOT / "src" / "decidua" / "immunogenetics" / "data" / "kir_alleles.tsv").read_text(encoding="utf-8")
    assert _tool().derive(RELEASE) == shipped
    assert len(allele_table().alleles) == len(release_names)


def test_a_gene_in_every_location_of_a_gl_string_1_1_is_present_and_one_in_some_is_not_tested() -> None:
    calls = calls_from_gl_string("kir#2.13.0#KIR2DL5A*001^KIR2DL1*003?KIR2DL5B*002^KIR2DL1*003")
    assert KirGene.KIR2DL1 in calls.present  # whichever location the sequences belong to
    assert {KirGene.KIR2DL5A, KirGene.KIR2DL5B} <= calls.untested
    assert KirGene.KIR2DL5 in calls.present  # one of the two paralogues is there either way


def test_an_hla_c_typing_with_an_open_gene_location_is_refused_saying_why() -> None:
    from decidua.immunogenetics.hla import parse_genotype_list

    with pytest.raises(NomenclatureError, match="gene location open"):
        parse_genotype_list("HLA-C*07:02?HLA-C*06:02")
