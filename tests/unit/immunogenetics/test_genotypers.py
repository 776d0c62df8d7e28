"""KIR typings from T1K, PING and kir-mapper files (formats in the module docstring; the sample files under
tests/data/genotypers are written for these tests in each tool's layout)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decidua.core.errors import InputError
from decidua.immunogenetics.kir import Call, KirGene, KirMotif, calls_from_typing, classify
from decidua.immunogenetics.kir.genotypers import SampleTyping, Tool, merge_samples, read_genotyper

DATA = Path(__file__).parents[2] / "data" / "genotypers"


def read(name: str, tool: Tool, sample: str | None = None, min_quality: float | None = None) -> list[SampleTyping]:
    text = (DATA / name).read_text()
    return merge_samples(read_genotyper(text, tool, name, sample=sample, min_quality=min_quality))


def calls(typing: SampleTyping) -> dict[str, str]:
    return {x.gene.value: x.call.value for x in typing.loci}


def test_t1k_calls_below_the_quality_threshold_are_not_tested_and_the_rest_keep_their_alleles() -> None:
    (t,) = read("AA1_genotype.tsv", Tool.T1K)
    assert t.sample == "AA1"
    got = calls(t)
    assert got["KIR2DS3"] == "untested"  # called with quality 0: T1K's README says ignore it
    assert (got["KIR2DL2"], got["KIR2DL5A"], got["KIR2DL5B"]) == ("absent", "absent", "absent")
    typing = t.to_typing()
    assert typing.absent_unlisted is False
    assert typing.source == "t1k AA1_genotype.tsv, sample AA1, quality threshold 0"
    assert typing.gl_string is not None
    assert typing.gl_string.startswith("kir#2.13.0#KIR3DL3*001+KIR3DL3*009^")
    assert "KIR2DS4*001/KIR2DS4*010" in typing.gl_string  # tied alleles: an allele list
    profile = classify(calls_from_typing(typing))
    assert profile.genotype is None  # AA unless KIR2DS3 (not counted) is there: undetermined, not guessed
    assert (profile.cen, profile.tel) == (KirMotif.AA, KirMotif.AA)
    # a stricter threshold drops the second KIR3DL1 allele (quality 33) but keeps the gene
    (strict,) = read("AA1_genotype.tsv", Tool.T1K, min_quality=40)
    kir3dl1 = next(x for x in strict.loci if x.gene is KirGene.KIR3DL1)
    assert (kir3dl1.call, kir3dl1.alleles, kir3dl1.note) == (
        Call.PRESENT,
        ("KIR3DL1*001",),
        "second allele below the quality threshold: left out",
    )


def test_ping_copy_numbers_and_final_calls_agree_and_split_combined_loci_by_their_alleles() -> None:
    copies = {t.sample: t for t in read("manualCopyNumberFrame.csv", Tool.PING)}
    final = {t.sample: t for t in read("finalAlleleCalls.csv", Tool.PING)}
    assert calls(copies["P03"]) == dict.fromkeys(calls(copies["P03"]), "untested")  # failed sample
    assert "framework gene KIR3DL3 not typed" in copies["P03"].warnings
    p01 = calls(final["P01"])
    # KIR2DS35*null+KIR2DS35*null: both absent; a combined column naming only KIR2DL3 (or KIR3DL1) alleles says
    # nothing of KIR2DL2 (or KIR3DS1), whose call may have failed: not tested, never absent
    assert (p01["KIR2DL3"], p01["KIR2DS3"], p01["KIR2DS5"]) == ("present", "absent", "absent")
    assert (p01["KIR2DL2"], p01["KIR3DS1"]) == ("untested", "untested")
    # the copy-number file of the same run decides them
    both = read_genotyper((DATA / "manualCopyNumberFrame.csv").read_text(), Tool.PING, "copy.csv", sample="P01")
    both += read_genotyper((DATA / "finalAlleleCalls.csv").read_text(), Tool.PING, "final.csv", sample="P01")
    (merged,) = merge_samples(both)
    assert (calls(merged)["KIR2DL2"], calls(merged)["KIR3DS1"]) == ("absent", "absent")  # copy number 0
    kir2dl3 = next(x for x in merged.loci if x.gene is KirGene.KIR2DL3)
    assert (kir2dl3.copy_number, kir2dl3.alleles) == (2, ("KIR2DL3*00101+KIR2DL3*00201",))
    t1k = (DATA / "AA1_genotype.tsv").read_text()
    with pytest.raises(InputError, match="one t1k file per sample"):
        merge_samples(
            read_genotyper(t1k, Tool.T1K, "a.tsv", sample="S") + read_genotyper(t1k, Tool.T1K, "b.tsv", sample="S")
        )
    p02 = calls(final["P02"])
    assert p02["KIR2DL2"] == "untested"  # in one of the two alternative genotypes only
    kir3dl1 = next(x for x in final["P02"].loci if x.gene is KirGene.KIR3DL1)
    assert (kir3dl1.call, kir3dl1.alleles) == (Call.PRESENT, ())  # unresolved: present, no allele used
    kir2dl5 = next(x for x in final["P02"].loci if x.gene is KirGene.KIR2DL5)
    assert kir2dl5.alleles == ("KIR2DL5A*00101",)


def test_kir_mapper_copy_table_and_calls_files_merge_and_a_low_ratio_keeps_presence_without_alleles() -> None:
    table = read_genotyper((DATA / "copy_numbers.table.txt").read_text(), Tool.KIR_MAPPER, "copy_numbers.table.txt")
    calls_file = read_genotyper((DATA / "KIR2DL1.calls.txt").read_text(), Tool.KIR_MAPPER, "KIR2DL1.calls.txt")
    merged = {t.sample: t for t in merge_samples(table + calls_file)}
    m01 = next(x for x in merged["M01"].loci if x.gene is KirGene.KIR2DL1)
    assert (m01.alleles, m01.copy_number, m01.quality) == (("KIR2DL1*00302+KIR2DL1*00201",), 2, 1.0)
    m02 = next(x for x in merged["M02"].loci if x.gene is KirGene.KIR2DL1)  # Ratio 0.988 < 1 by default
    assert (m02.call, m02.alleles, m02.copy_number) == (Call.PRESENT, (), 1)
    assert "below 1" in (m02.note or "")
    assert calls(merged["M01"])["KIR2DL5"] == "absent"  # KIR2DL5AB, kir-mapper's combined locus
    assert merged["M03"].to_typing().untested  # NA: every gene not tested


@pytest.mark.parametrize(
    ("name", "text", "tool", "message"),
    [
        ("cut.tsv", "KIR2DL1\t2\tKIR2DL1*003\t70.0\t60\n", Tool.T1K, "cut.tsv line 1: expected 8 or 9"),
        ("hla.tsv", "HLA-A\t1\tA*01:01\t7.0\t60\t.\t0\t-1\n", Tool.T1K, "hla.tsv line 1: 'HLA-A' is not a KIR gene"),
        (
            "two.tsv",
            "KIR2DL1\t0\t.\t0\t-1\t.\t0\t-1\nKIR2DL1\t0\t.\t0\t-1\t.\t0\t-1\n",
            Tool.T1K,
            "two.tsv line 2: KIR2DL1 a second time: a T1K file holds one sample",
        ),
        ("x.tsv", "KIR2DL1\t3\ta\t1\t1\tb\t1\t1\n", Tool.T1K, "allele count 3"),
        ("c.tsv", "KIR2DL1\t1\t.\t0\t-1\t.\t0\t-1\n", Tool.T1K, "allele count 1 but 0 allele(s) named"),
        ("c.tsv", "KIR2DL1\t0\tKIR2DL1*003\t9\t60\t.\t0\t-1\n", Tool.T1K, "allele count 0 but 1 allele(s)"),
        ("m.txt", "SAMPLE\tKIR2DL1\nS1\t2\nS1\t2\n", Tool.KIR_MAPPER, "m.txt line 3: sample 'S1' a second time"),
        ("ping.csv", "KIR2DL1,KIR2DL2\n1,2\n", Tool.PING, "ping.csv line 1: expected PING's R write.csv header"),
        ("ping.csv", '"","KIR2DL1"\n"S1","7"\n', Tool.PING, "ping.csv line 2, KIR2DL1: copy number '7'"),
        ("ping.csv", '"","KIR2DL1"\n"S1","2"\n"S1","2"\n', Tool.PING, "ping.csv line 3: sample 'S1' a second time"),
        ("m.txt", "SAMPLE\tKIR2DL1\nS1\t5\n", Tool.KIR_MAPPER, "m.txt line 2, KIR2DL1: copy number '5'"),
        ("m.txt", "Gene\tCopies\n", Tool.KIR_MAPPER, "m.txt line 1: expected kir-mapper's copy_numbers.table.txt"),
        ("e.txt", "  \n", Tool.KIR_MAPPER, "e.txt: the file is empty"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line_and_what_was_expected(
    name: str, text: str, tool: Tool, message: str
) -> None:
    with pytest.raises(InputError) as refused:
        read_genotyper(text, tool, name)
    assert message in str(refused.value)


def test_a_sample_not_in_the_file_and_a_threshold_for_ping_are_refused() -> None:
    with pytest.raises(InputError, match="no sample 'X9'"):
        read("manualCopyNumberFrame.csv", Tool.PING, sample="X9")
    with pytest.raises(InputError, match="ping writes no quality measure"):
        read("manualCopyNumberFrame.csv", Tool.PING, min_quality=1)


def test_an_allele_outside_the_shipped_release_keeps_its_gene_with_a_warning() -> None:
    text = "KIR2DL1\t2\tKIR2DL1*003\t70.0\t60\tKIR2DL1*999\t50.0\t60\t\n"
    (t,) = merge_samples(read_genotyper(text, Tool.T1K, "new.tsv"))
    (locus,) = t.loci
    assert (locus.call, locus.alleles) == (Call.PRESENT, ())  # not half a genotype
    assert any("KIR2DL1*999 is not in IPD-KIR 2.13.0" in w for w in t.warnings)


_genes = [g for g in KirGene if g is not KirGene.KIR2DL5]
_slot = st.tuples(st.sampled_from(["KIR2DL1*003", "KIR2DL1*002"]), st.integers(0, 60))


@given(st.dictionaries(st.sampled_from(_genes), st.tuples(st.integers(0, 2), st.integers(-1, 60)), min_size=1))
def test_any_t1k_file_reads_back_the_calls_it_was_written_from(lines: dict[KirGene, tuple[int, int]]) -> None:
    rows = []
    for gene, (count, quality) in lines.items():
        slots = [f"{gene.value}*001\t9.5\t{quality}"] * count + [".\t0\t-1"] * (2 - count)
        rows.append(f"{gene.value}\t{count}\t" + "\t".join(slots) + "\t")
    (t,) = merge_samples(read_genotyper("\n".join(rows) + "\n", Tool.T1K, "gen.tsv"))
    for gene, (count, quality) in lines.items():
        locus = next(x for x in t.loci if x.gene is gene)
        expected = Call.ABSENT if count == 0 else Call.PRESENT if quality > 0 else Call.UNTESTED
        assert locus.call is expected, (gene, count, quality)
    typing = t.to_typing()
    assert set(typing.present) | set(typing.absent) | set(typing.untested) == {g.value for g in lines}


def test_kir_mapper_kir2dl5_rows_hold_either_paralogue_and_a_byte_order_mark_is_ignored() -> None:
    text = "\ufeffSample\tCopy_number\tCalls\tRatio\tMissings\nS1\t2\tKIR2DL5A*001+KIR2DL5B*002\t1.000000\t0\n"
    (t,) = merge_samples(read_genotyper(text, Tool.KIR_MAPPER, "KIR2DL5AB.calls.txt"))
    (locus,) = t.loci
    assert (locus.gene, locus.call, locus.copy_number) == (KirGene.KIR2DL5, Call.PRESENT, 2)
    nulls = "Sample\tCopy_number\tCalls\tRatio\tMissings\nS1\t1\tKIR2DL1*null+KIR2DL1*null\t1.000000\t0\n"
    (n,) = merge_samples(read_genotyper(nulls, Tool.KIR_MAPPER, "KIR2DL1.calls.txt"))
    assert (n.loci[0].call, n.loci[0].alleles, n.to_typing().gl_string) == (Call.PRESENT, (), None)
