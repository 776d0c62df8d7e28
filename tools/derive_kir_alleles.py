"""Derive ``src/decidua/immunogenetics/data/kir_alleles.tsv`` from an IPD-KIR release.

The IPD-KIR files are CC BY-ND and are never copied into this repository. This script reads a release
directory (``Allelelist.txt`` and ``release_version.txt``, as published at https://github.com/ANHIG/IPDKIR)
and writes only the derived fact decidua needs: each official allele name and the gene it belongs to.

Usage::

    python tools/derive_kir_alleles.py [RELEASE_DIR] [--output PATH]

``RELEASE_DIR`` defaults to ``../shared/reference/ipd-kir-2.13.0`` (relative to the repository root).
The output is deterministic: the date written is the release date read from the release files, so running
the script twice on one release gives byte-identical tables (a test checks the shipped table this way).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RELEASE = ROOT.parent / "shared" / "reference" / "ipd-kir-2.13.0"
DEFAULT_OUTPUT = ROOT / "src" / "decidua" / "immunogenetics" / "data" / "kir_alleles.tsv"

CITATION = (
    "Robinson J, Halliwell JA, McWilliam H, Lopez R, Marsh SGE. IPD - the Immuno Polymorphism Database. "
    "Nucleic Acids Research (2013) 41:D1234-40"
)
DATABASE = "IPD-KIR Database, https://www.ebi.ac.uk/ipd/kir/"

# IPD-KIR allele names: gene, "*", 3, 5 or 7 digits, optional expression suffix (N = null, Q = questionable).
_ALLELE = re.compile(r"^(?P<gene>KIR[23]D[LSP]\d[AB]?)\*(?P<digits>\d{3}(?:\d{2}){0,2})(?P<suffix>[A-Z]?)$")
_HEADER = re.compile(r"^#\s*(?P<key>[a-z]+):\s*(?P<value>.*?)\s*$")


def _header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line)
        if match:
            fields.setdefault(match["key"], match["value"])
    return fields


def read_release(release_dir: Path) -> tuple[str, str, list[tuple[str, str]]]:
    """Return ``(version, date, [(allele, gene), ...])`` read from one IPD-KIR release directory.

    Raises ``ValueError`` when the files disagree on the release or an allele name is not well formed.
    """
    allele_list = release_dir / "Allelelist.txt"
    list_header = _header(allele_list)
    version = list_header.get("version", "")
    date = list_header.get("date", "")
    release_file = release_dir / "release_version.txt"
    if release_file.exists():
        release_header = _header(release_file)
        if release_header.get("version", version) != version:
            raise ValueError(f"{release_file}: version {release_header['version']!r} != Allelelist {version!r}")
        date = date or release_header.get("date", "")
    if not version.startswith("IPD-KIR "):
        raise ValueError(f"{allele_list}: no '# version: IPD-KIR x.y.z' header line")

    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    column: int | None = None
    for number, raw in enumerate(allele_list.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if column is None:  # the column header: "AlleleID,Allele" (older releases: "Allele")
            column = cells.index("Allele")
            continue
        name = cells[column]
        match = _ALLELE.match(name)
        if not match:
            raise ValueError(f"{allele_list}:{number}: not an IPD-KIR allele name: {name!r}")
        if name in seen:
            raise ValueError(f"{allele_list}:{number}: duplicate allele {name!r}")
        seen.add(name)
        rows.append((name, match["gene"]))
    if not rows:
        raise ValueError(f"{allele_list}: no alleles")
    return version, date, rows


def render(version: str, date: str, rows: list[tuple[str, str]]) -> str:
    """The derived table as text: commented header, a column header, one ``allele<TAB>gene`` row per allele."""
    genes = sorted({gene for _, gene in rows})
    lines = [
        "# kir_alleles.tsv, written by tools/derive_kir_alleles.py (do not edit by hand)",
        f"# source: {version} (Allelelist.txt)",
        f"# date: {date}",
        f"# cite: {CITATION}",
        f"# cite: {DATABASE}",
        "# derived facts only (allele name -> gene); no sequences. IPD-KIR data are licensed CC BY-ND.",
        f"# {len(rows)} alleles of {len(genes)} genes: {' '.join(genes)}",
        "allele\tgene",
    ]
    lines += [f"{allele}\t{gene}" for allele, gene in sorted(rows)]
    return "\n".join(lines) + "\n"


def derive(release_dir: Path) -> str:
    """Read ``release_dir`` and return the derived table text."""
    return render(*read_release(release_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release_dir", nargs="?", type=Path, default=DEFAULT_RELEASE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    try:
        text = derive(args.release_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({text.count(chr(10)) - 8} alleles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
