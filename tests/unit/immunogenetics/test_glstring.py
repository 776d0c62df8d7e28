"""One GL String parser for HLA and KIR: operators by precedence, namespaces with or without a release."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decidua.core.errors import NomenclatureError
from decidua.immunogenetics.glstring import parse_gl_string, split_namespace

_name = st.from_regex(r"[A-Z][0-9]\*[0-9]{2}:[0-9]{2}", fullmatch=True)
_tree = st.lists(  # loci ^ genotype lists | genotypes + haplotypes ~ allele lists / names
    st.lists(
        st.lists(st.lists(st.lists(_name, min_size=1, max_size=3), min_size=1, max_size=2), min_size=1, max_size=2),
        min_size=1,
        max_size=3,
    ),
    min_size=1,
    max_size=2,
)


def _join(tree: list) -> str:
    return "^".join("|".join("+".join("~".join("/".join(al) for al in hap) for hap in g) for g in gl) for gl in tree)


@given(_tree, st.sampled_from(["", "hla#", "hla#3.58.0#", "HLA3.58.0#"]))
def test_any_gl_string_splits_back_into_the_structure_it_was_written_from(tree: list, prefix: str) -> None:
    gl = parse_gl_string(prefix + _join(tree), "hla")
    as_tuples = tuple(tuple(tuple(tuple(tuple(al) for al in hap) for hap in g) for g in gl_) for gl_ in tree)
    assert gl.loci == as_tuples
    assert gl.release == ("3.58.0" if "3.58.0" in prefix else None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no names"),
        ("hla#", "no names"),
        ("C*07:01++C*06:02", "empty name"),
        ("C*07:01/", "empty name"),
        ("kir#2.13.0#KIR2DL1*001", "namespace 'kir'; expected 'hla'"),
    ],
)
def test_malformed_gl_strings_and_other_namespaces_are_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(NomenclatureError, match=message):
        parse_gl_string(text, "hla")


def test_a_name_without_a_namespace_is_left_whole() -> None:
    assert split_namespace(" HLA-C*07:02 ", "hla") == (None, "HLA-C*07:02")
    assert split_namespace("kir2.13.0#KIR2DL1*001", "kir") == ("2.13.0", "KIR2DL1*001")


def test_a_gene_location_left_open_by_gl_string_1_1_is_read_as_alternatives() -> None:
    gl = parse_gl_string("kir#2.13.0#KIR2DL5A*001?KIR2DL5B*002^KIR2DL1*003", "kir")
    first, second = gl.locations  # "?" binds loosest: KIR2DL5A*001 | KIR2DL5B*002^KIR2DL1*003
    assert (len(first), len(second)) == (1, 2)
    assert gl.names() == ("KIR2DL5A*001", "KIR2DL5B*002", "KIR2DL1*003")
    with pytest.raises(NomenclatureError, match="leaves the gene location open"):
        _ = gl.loci
