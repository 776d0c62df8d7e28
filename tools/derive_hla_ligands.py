"""Derive decidua's HLA tables from an IPD-IMGT/HLA release.

    python tools/derive_hla_ligands.py [RELEASE_DIR] [-o src/decidua/immunogenetics/data/hla_ligands.tsv.gz]

Reads A/B/C_prot.fasta, Allelelist.txt, hla_nom_g.txt, hla_nom_p.txt and release_version.txt of the release
(default: the 3.58.0 release in ../shared/reference; the layout of a download or of a checkout of
github.com/ANHIG/IMGTHLA, with fasta/ and wmda/) and writes the derived facts only: allele -> KIR ligand,
residues 76-83, G and P group, leader residue -21. When the release holds WMDA ``rel_dna_ser.txt`` (a checkout
of ANHIG/IMGTHLA has it under wmda/; ../shared/reference does not) it also writes ``hla_serology.tsv.gz`` beside
the first table (allele -> serological equivalent and its basis). The release's files (CC BY-ND) are never
copied. The same logic runs as ``decidua hla build-table --imgt DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from decidua.immunogenetics.ligand_table import derive, derive_serology, render, render_serology

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RELEASE = ROOT.parent / "shared" / "reference" / "ipd-imgt-hla-3.58.0"
DEFAULT_OUTPUT = ROOT / "src" / "decidua" / "immunogenetics" / "data" / "hla_ligands.tsv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", nargs="?", type=Path, default=DEFAULT_RELEASE)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    version, date, rows = derive(args.release)
    args.output.write_bytes(render(version, date, rows, "tools/derive_hla_ligands.py"))
    print(f"{args.output}: {len(rows)} rows from {version} ({date})")
    serology = derive_serology(args.release)
    if serology is None:
        print("no rel_dna_ser.txt in the release directory: the serology table is left as it is")
        return
    target = args.output.with_name("hla_serology.tsv.gz")
    target.write_bytes(render_serology(*serology, "tools/derive_hla_ligands.py"))
    print(f"{target}: {len(serology[2])} rows from {serology[0]} ({serology[1]})")


if __name__ == "__main__":
    main()
