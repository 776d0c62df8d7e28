"""Derive decidua's KIR-ligand table from an IPD-IMGT/HLA release.

    python tools/derive_hla_ligands.py [RELEASE_DIR] [-o src/decidua/immunogenetics/data/hla_ligands.tsv.gz]

Reads A/B/C_prot.fasta, hla_nom_g.txt, hla_nom_p.txt and release_version.txt of the release (default: the
3.58.0 release in ../shared/reference) and writes the derived facts only; the release's files (CC BY-ND) are
never copied. The same logic runs as ``decidua hla build-table --imgt DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from decidua.immunogenetics.ligand_table import derive, render

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


if __name__ == "__main__":
    main()
