"""Checks against the full IPD-IMGT/HLA release in ../shared/reference (skipped when it is absent)."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from decidua.immunogenetics.ligand_table import derive, derive_serology, render, render_serology
from decidua.immunogenetics.ligands import SEROLOGY_FILE, TABLE_FILE, KirLigand, ligand_of

from conftest import SHARED_REFERENCE

RELEASE = SHARED_REFERENCE / "ipd-imgt-hla-3.58.0"
pytestmark = pytest.mark.skipif(not RELEASE.is_dir(), reason=f"IPD-IMGT/HLA release not found at {RELEASE}")


@pytest.fixture(scope="module")
def derived() -> tuple[str, str, list]:
    return derive(RELEASE)


def test_every_class_i_record_classifies(derived: tuple[str, str, list]) -> None:
    version, _, rows = derived
    assert version == "IPD-IMGT/HLA 3.58.0"
    names = [
        line.split(",")[1] for line in (RELEASE / "Allelelist.txt").read_text().splitlines() if line.startswith("HLA")
    ]
    class_i = [n for n in names if n.split("*")[0] in ("A", "B", "C")]
    alleles = {r.name: r for r in rows if r.kind == "allele"}
    assert len(alleles) == len(class_i)
    for name in class_i:
        assert alleles[name].ligand in {k.value for k in KirLigand}
        assert ligand_of(name).ligand.value == alleles[name].ligand
    unclassified = [r for r in alleles.values() if r.ligand == "unclassified"]
    assert len(unclassified) < 0.01 * len(alleles)


def test_shipped_table_is_what_the_release_derives(derived: tuple[str, str, list]) -> None:
    shipped = gzip.decompress((resources.files("decidua.immunogenetics") / "data" / TABLE_FILE).read_bytes())
    fresh = gzip.decompress(render(*derived, "tools/derive_hla_ligands.py"))
    assert shipped == fresh


def test_every_grouped_allele_carries_its_group(derived: tuple[str, str, list]) -> None:
    _, _, rows = derived
    alleles = {r.name: r for r in rows if r.kind == "allele"}
    g_text = (RELEASE / "hla_nom_g.txt").read_text()
    for line in g_text.splitlines():
        locus, members, group = line.split(";") if line.count(";") == 2 else ("", "", "")
        if locus.rstrip("*") in ("A", "B", "C") and group:
            for member in members.split("/"):
                assert alleles[f"{locus}{member}"].g_group == f"{locus}{group}"
    b = [r for r in alleles.values() if r.name.startswith("B*") and r.leader != "-"]
    assert {r.leader for r in b} >= {"M", "T"}


# The copy of the release beside the project holds no WMDA files; the shipped serology table was derived from the
# same release's wmda/ directory (github.com/ANHIG/IMGTHLA), so this check runs wherever a full release is given.
@pytest.mark.skipif(
    not (RELEASE / "rel_dna_ser.txt").is_file() and not (RELEASE / "wmda" / "rel_dna_ser.txt").is_file(),
    reason="this copy of the release has no WMDA rel_dna_ser.txt (the shipped serology table was derived from "
    "the same release's wmda/rel_dna_ser.txt in github.com/ANHIG/IMGTHLA)",
)
def test_shipped_serology_table_is_what_the_release_derives() -> None:
    serology = derive_serology(RELEASE)
    assert serology is not None
    shipped = gzip.decompress((resources.files("decidua.immunogenetics") / "data" / SEROLOGY_FILE).read_bytes())
    assert shipped == gzip.decompress(render_serology(*serology, "tools/derive_hla_ligands.py"))
