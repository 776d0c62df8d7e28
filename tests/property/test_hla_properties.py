from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from decidua.immunogenetics.hla import HlaName, parse_allele_list, parse_name
from decidua.immunogenetics.ligands import KirLigand, ligand_of

field = st.integers(1, 1999).map(lambda n: f"{n:02d}")
names = st.builds(
    lambda locus, group, fields, suffix: HlaName(locus, (group, *fields), suffix),
    st.sampled_from(["A", "B", "C"]),
    st.integers(1, 99).map(lambda n: f"{n:02d}"),  # the allele group is always two digits
    st.lists(field, max_size=3),
    st.sampled_from(["", "N", "L", "S", "Q", "C", "A"]),
)


@given(names)
def test_to_string_round_trips(name: HlaName) -> None:
    assert parse_name(name.to_string()) == name
    assert parse_name(name.key) == name


@given(st.lists(names.filter(lambda n: n.locus == "C"), min_size=1, max_size=4))
def test_allele_lists_round_trip(alleles: list[HlaName]) -> None:
    assert parse_allele_list("/".join(a.to_string() for a in alleles)) == tuple(alleles)


@given(names)
def test_ligand_of_never_crashes_on_well_formed_names(name: HlaName) -> None:
    assert ligand_of(name.to_string()).ligand in set(KirLigand)
