"""The reference-data releases decidua's immunogenetics reads (shipped as derived tables), with their citations:
every result that interprets an allele name records them."""

from __future__ import annotations

from dataclasses import dataclass

from decidua.immunogenetics.kir.nomenclature import allele_table_source
from decidua.immunogenetics.ligands import ligand_table_source


@dataclass(frozen=True, slots=True)
class Release:
    database: str  # "IPD-IMGT/HLA", "IPD-KIR"
    version: str  # "3.58.0"
    citations: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.database} {self.version}"


def _split(label: str) -> tuple[str, str]:
    database, _, version = label.rpartition(" ")
    return database, version


def hla_release() -> Release:
    """The IPD-IMGT/HLA release of the shipped KIR-ligand table (from its header: the rows are not read)."""
    release, citations = ligand_table_source()
    return Release(*_split(release), citations)


def kir_release() -> Release:
    """The IPD-KIR release of the shipped allele-name table (from its header: the names are not read)."""
    release, citations = allele_table_source()
    return Release(*_split(release), citations)


def releases() -> tuple[Release, ...]:
    """Every release in use: IPD-IMGT/HLA, then IPD-KIR."""
    return hla_release(), kir_release()


__all__ = ["Release", "hla_release", "kir_release", "releases"]
