"""``decidua hla``: KIR-ligand groups of HLA class I typings, and rebuilding the table from a release."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from decidua.adapters.batchio import atomic_path
from decidua.adapters.hml import HmlTyping, read_hml
from decidua.app.casefile import case_to_data, read_case
from decidua.core.case import Case, KirTyping, Person
from decidua.core.errors import InputError
from decidua.entrypoints.cli.common import err_console, fail, input_errors, out_console, print_json, write_case_file
from decidua.immunogenetics.ligand_table import derive, render
from decidua.immunogenetics.ligands import TABLE_FILE, ligand_of

app = typer.Typer(no_args_is_help=True)


@app.command("ligand")
def ligand_command(
    alleles: Annotated[
        list[str], typer.Argument(help="HLA class I names or allele lists (C*07:02, Cw7, C*07:01/C*06:02).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: a list of {allele, ligand, ...}.")] = False,
) -> None:
    """KIR-ligand group of each typing: C1, C2, Bw4-80I, Bw4-80T, Bw6, none, unclassified, ambiguous, unknown."""
    with input_errors():
        calls = [ligand_of(a) for a in alleles]
    if as_json:
        print_json(
            [
                {
                    "allele": c.input,
                    "ligand": c.ligand.value,
                    "candidates": [x.value for x in c.candidates],
                    "reason": c.reason,
                    "release": c.release,
                }
                for c in calls
            ]
        )
        return
    table = Table(title=f"KIR-ligand groups ({calls[0].release})", title_justify="left")
    for col in ("typing", "ligand", "note"):
        table.add_column(col)
    for c in calls:
        table.add_row(c.input, c.ligand.value, c.reason or "")
    out_console.print(table)


@app.command("build-table")
def build_table_command(
    imgt: Annotated[Path, typer.Option("--imgt", help="Directory of an IPD-IMGT/HLA release.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=f"Where to write (default: the package's {TABLE_FILE}).")
    ] = None,
) -> None:
    """Rebuild the KIR-ligand table from an IPD-IMGT/HLA release (facts derived; the release is not copied)."""
    target = output or Path(__file__).resolve().parents[2] / "immunogenetics" / "data" / TABLE_FILE
    with input_errors():
        version, date, rows = derive(imgt)
        with atomic_path(target) as tmp:
            tmp.write_bytes(render(version, date, rows, "decidua hla build-table"))
    err_console.print(f"{target}: {len(rows)} rows from {version} ({date})")


_ROLES = "woman, partner, sperm-donor, oocyte-donor=ID or embryo=ID"


def _with_typings(case: Case, role: str, typings: list[HmlTyping], source: str) -> Case:
    """The case with one sample's typings set for ``role`` (HLA-C; for the woman her KIR typing too)."""
    hla_c = [t.gl_string for t in typings if t.locus == "HLA-C"]
    kir = [t.gl_string for t in typings if t.gene_family == "KIR"]
    if len(hla_c) > 1 or len(kir) > 1:
        raise InputError(f"sample {typings[0].sample}: more than one HLA-C or KIR typing; keep one in the file")
    g = case.genotypes
    kind, _, person = role.partition("=")
    sample = typings[0].sample
    if kind == "woman":
        if not hla_c and not kir:
            raise InputError(f"sample {sample}: no HLA-C or KIR typing for the woman")
        # genes the GL String does not name are not tested: an HML typing says what was found, not what was not
        woman_kir = KirTyping(gl_string=kir[0], absent_unlisted=False, source=source) if kir else g.woman_kir
        woman_hla_c = hla_c[0] if hla_c else g.woman_hla_c
        genotypes = dataclasses.replace(g, woman_hla_c=woman_hla_c, woman_kir=woman_kir)
        return dataclasses.replace(case, genotypes=genotypes)
    if not hla_c:
        raise InputError(f"sample {sample}: no HLA-C typing (the {kind}'s is the one a case holds)")
    typed = hla_c[0]
    if kind == "partner" and not person:
        return dataclasses.replace(case, genotypes=dataclasses.replace(g, partner_hla_c=typed))
    if kind == "sperm-donor" and not person:
        return dataclasses.replace(case, genotypes=dataclasses.replace(g, sperm_donor_hla_c=typed))
    if kind == "oocyte-donor" and person:
        donors = (*(p for p in g.oocyte_donors if p.id != person), Person(person, typed))
        return dataclasses.replace(case, genotypes=dataclasses.replace(g, oocyte_donors=donors))
    if kind == "embryo" and person:
        embryos = (*(p for p in g.embryos if p.id != person), Person(person, typed))
        return dataclasses.replace(case, genotypes=dataclasses.replace(g, embryos=embryos))
    raise InputError(f"--as: got {role!r}; allowed: {_ROLES}")


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="An HML 1.0.x file (NMDP Histoimmunogenetics Markup Language).")],
    sample: Annotated[str | None, typer.Option("--sample", help="Only this sample.")] = None,
    case_file: Annotated[
        Path | None, typer.Option("--case", help="A case file to set the sample's typings in (needs --as and --out).")
    ] = None,
    role: Annotated[str | None, typer.Option("--as", help=f"Whose typing it is in the case: {_ROLES}.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the case file (YAML).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per typing.")] = False,
) -> None:
    """Read HLA-A/B/C and KIR typings from an HML file, per sample, as GL Strings with the release it names.

    With --case, --as and --out the sample's HLA-C (and, for the woman, KIR) typing is set in a new case file.
    """
    if (case_file, role, out).count(None) not in (0, 3):
        fail("--case, --as and --out go together: the case to read, whose typing this is, where to write it")
    with input_errors():
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise InputError(f"{file}: cannot read: {exc.strerror}") from None
        typings = read_hml(data, str(file))
        if sample is not None:
            typings = [t for t in typings if t.sample == sample]
            if not typings:
                raise InputError(f"{file}: no sample {sample!r}")
        if case_file is not None and role is not None and out is not None:
            samples = sorted({t.sample for t in typings})
            if len(samples) != 1:
                raise InputError(f"{file}: {len(samples)} samples ({', '.join(samples)}): choose one with --sample")
            case = _with_typings(read_case(case_file), role, typings, f"HML {file}, sample {samples[0]}")
            write_case_file(out, case_to_data(case), [file, case_file], str(case_file))
    if as_json:
        print_json([t.to_record() for t in typings])
    else:
        table = Table(title=f"HML typings ({file.name})", title_justify="left")
        for col in ("sample", "locus", "GL String", "release (file)"):
            table.add_column(col, overflow="fold")
        for t in typings:
            release = " ".join(x for x in (t.allele_db, t.allele_version) if x)
            table.add_row(t.sample, t.locus or "KIR", t.gl_string.split("#")[-1], release)
        out_console.print(table)
    if out is not None:
        err_console.print(f"{out}: case {case_file} with the typings of sample {typings[0].sample} as {role}")
