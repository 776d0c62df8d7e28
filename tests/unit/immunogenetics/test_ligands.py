"""The shipped KIR-ligand table's release, as every assessment records it."""

from __future__ import annotations

from decidua.immunogenetics.ligands import ligand_table, ligand_table_source


def test_the_release_read_from_the_header_is_the_one_the_table_holds() -> None:
    """Read from the table's header alone (a command then does not parse 40,000 rows for it), it must be the same."""
    table = ligand_table()
    assert ligand_table_source() == (table.release, table.citations)
    assert table.release == "IPD-IMGT/HLA 3.58.0"
    assert table.citations
