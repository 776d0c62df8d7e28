"""HML 1.0.x typings in: the three forms of a typing, releases, and errors naming the sample and element."""

from __future__ import annotations

from pathlib import Path

import pytest

from decidua.adapters.hml import read_hml
from decidua.core.errors import InputError

DATA = Path(__file__).parents[2] / "data" / "hml"
NS = "http://schemas.nmdp.org/spec/hml/1.0.1"


def hml(typing: str, sample: str = "S1", ns: str = NS, family: str = "HLA") -> str:
    return (
        f'<hml xmlns="{ns}" version="1.0.1"><sample id="{sample}"><typing gene-family="{family}" date="2026-01-01">'
        f'<allele-assignment date="2026-01-01" allele-db="IMGT/HLA" allele-version="3.58.0">{typing}'
        "</allele-assignment><typing-method/></typing></sample></hml>"
    )


def test_class_ii_typings_are_left_out_and_alleles_of_unknown_presence_kept() -> None:
    text = hml(
        "<glstring>HLA-C*07:02+HLA-C*03:04^HLA-DRB1*15:01+HLA-DRB1*03:01</glstring>"
        "<genotype-list><diploid-combination><locus-block><allele-list><allele>HLA-B*07:02</allele>"
        '<allele present="U">HLA-B*07:05</allele><allele present="N">HLA-B*08:01</allele></allele-list></locus-block>'
        "<locus-block><allele-list><allele>HLA-B*44:02</allele></allele-list></locus-block>"
        "</diploid-combination></genotype-list>"
    )
    assert [t.gl_string for t in read_hml(text, "c2.xml")] == [
        "hla#3.58.0#HLA-C*07:02+HLA-C*03:04",
        "hla#3.58.0#HLA-B*07:02/HLA-B*07:05+HLA-B*44:02",
    ]


def test_every_form_of_a_typing_is_read_with_the_release_the_file_names() -> None:
    typings = read_hml((DATA / "two-samples-1.0.1.xml").read_bytes(), "two.xml")
    got = {(t.sample, t.locus): t.gl_string for t in typings}
    assert got == {
        ("W-001", None): "kir#2.13.0#KIR2DL1*003+KIR2DL1*002^KIR2DL3*001+KIR2DL3*002^KIR3DL1*001+KIR3DL1*015"
        "^KIR2DL4*001+KIR2DL4*011^KIR3DL2*001+KIR3DL2*002^KIR3DL3*001+KIR3DL3*009^KIR2DS4*001+KIR2DS4*001"
        "^KIR2DP1*002^KIR3DP1*003",
        ("W-001", "HLA-A"): "hla#3.58.0#HLA-A*01:01+HLA-A*02:01",  # a multilocus GL String split per locus
        ("W-001", "HLA-C"): "hla#3.58.0#HLA-C*07:02+HLA-C*03:04",
        ("P-001", "HLA-C"): "hla#3.58.0#HLA-C*06:02+HLA-C*07:01",  # from two <haploid> elements
        ("P-001", "HLA-B"): "hla#3.58.0#HLA-B*07:02/HLA-B*07:05+HLA-B*44:02",  # the deprecated genotype-list form
    }
    assert typings[3].where == "two.xml: sample P-001, typing 1 (HLA), allele-assignment 1, haploid (HLA-C)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<hml", "bad.xml: not well-formed XML"),
        (hml("<glstring>HLA-C*07:02+HLA-C*03:04</glstring>", ns="urn:other"), "expected <hml> in one of the HML 1.0.x"),
        (
            hml("<glstring>HLA-C*07:02+HLA-C*99:99</glstring>"),
            "bad.xml: sample S1, typing 1 (HLA), allele-assignment 1, glstring 1: ",
        ),
        (hml('<glstring uri="http://gl.example/1"/>'), "glstring 1: a GL Service URI"),
        (hml('<haploid locus="HLA-C" method="SER" type="07"/>'), "haploid 1: method 'SER'"),
        (hml("<glstring>HLA-C*07:02+HLA-B*07:02</glstring>"), "one locus per '^' block"),
        (hml('<haploid locus="HLA-C" method="DNA" type="07:02"/>'), "1 haploid element(s); a genotype has two"),
        (hml("<glstring>HLA-C*07:02?HLA-C*06:02</glstring>"), "gene location open"),
        (hml("<glstring>KIR2DL1*003+KIR9DL9*001</glstring>", family="KIR"), "typing 1 (KIR), allele-assignment 1"),
        (hml("<glstring>HLA-C*07:02</glstring>", family="MICA"), "gene-family 'MICA'; decidua reads HLA and KIR"),
        (hml(""), "allele-assignment 1: no glstring, haploid or genotype-list"),
        (hml("<glstring>HLA-C*07:02</glstring>").replace("</hml>", '<sample id="S1"/></hml>'), "S1: appears twice"),
        (
            '<?xml version="1.0"?><!DOCTYPE hml [<!ENTITY x "y">]><hml xmlns="' + NS + '">&x;</hml>',
            "refused (EntitiesForbidden)",
        ),
    ],
)
def test_a_bad_file_exits_with_the_sample_and_element_named(text: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        read_hml(text, "bad.xml")
    assert message in str(refused.value)
