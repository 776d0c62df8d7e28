"""``decidua hla``: KIR-ligand groups of HLA class I typings, and rebuilding the table from a release."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from decidua.core.errors import InputError, MacCode, UnknownAllele
from decidua.entrypoints.cli.common import (
    err_console,
    fail,
    input_errors,
    print_json,
    print_table,
    write_case_file,
)
from decidua.immunogenetics.ligands import TABLE_FILE
from decidua.immunogenetics.reduce import Level

if TYPE_CHECKING:  # imported by the functions that use them (start-up time)
    from decidua.adapters.hml import HmlTyping
    from decidua.core.case import Case
    from decidua.immunogenetics.mac import MacTable

app = typer.Typer(no_args_is_help=True)


_MAC_HELP = (
    "NMDP's allele-code table (numer.v3.txt or alpha.v3.txt from https://hml.nmdp.org/mac/files/): expands codes "
    "such as C*07:AB; without it a code is reported as 'needs expansion'."
)
MacFile = Annotated[Path | None, typer.Option("--mac-file", help=_MAC_HELP, show_default=False)]


def _expand(text: str, macs: MacTable | None) -> tuple[str, list[str]]:
    """The typing with its NMDP codes expanded (unchanged without a table)."""
    from decidua.immunogenetics.mac import expand_macs

    return expand_macs(text, macs) if macs is not None else (text, [])


@app.command("ligand")
def ligand_command(
    alleles: Annotated[
        list[str], typer.Argument(help="HLA class I names or allele lists (C*07:02, Cw7, C*07:01/C*06:02).")
    ],
    mac_file: MacFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: a list of {allele, ligand, ...}.")] = False,
) -> None:
    """KIR-ligand group of each typing, and the HLA-B leader residue -21.

    Ligands (from residues 76-83 of each allele in the shipped IPD-IMGT/HLA table): C1 (HLA-C Asn80, and
    HLA-B*46:01/B*73:01 Val76 Asn80; KIR2DL2/2DL3), C2 (HLA-C Lys80; KIR2DL1, KIR2DS1), Bw4-80I and Bw4-80T
    (HLA-A or HLA-B Bw4 motif, residues 77-83, with Ile or Thr at 80; KIR3DL1), Bw6 (HLA-B only; no KIR
    ligand), A3/A11 (HLA-A*03 and A*11 allotypes; KIR3DL2, peptide-dependent), none (a null allele, or HLA-A
    without Bw4), unclassified, ambiguous (candidates disagree), unknown (not in the release), needs expansion
    (an NMDP code without --mac-file). Leader -21: M (supplies HLA-E binding peptide) or T, from full-length
    records (Horowitz et al. Sci Immunol 2016). Sources: README, "HLA-C and KIR ligands".
    """
    from decidua.immunogenetics.ligands import ligand_call, ligand_table
    from decidua.immunogenetics.mac import read_mac_table

    with input_errors():
        macs = read_mac_table(mac_file) if mac_file is not None else None
        rows: list[dict[str, object]] = []
        for text in alleles:
            row: dict[str, object] = {"allele": text, "expanded": None, "candidates": []}
            try:
                expanded, notes = _expand(text, macs)
                call = ligand_call(expanded)
            except MacCode as exc:
                row |= {"ligand": "needs expansion", "reason": str(exc), "leader_21": None}
                rows.append(row | {"release": ligand_table().release})
                continue
            reason = "; ".join([*notes, call.reason] if call.reason else notes) or None
            row |= {
                "expanded": expanded if expanded != text else None,
                "ligand": call.ligand,
                "candidates": list(call.candidates),
                "reason": reason,
                "leader_21": call.leader_21,
                "release": call.release,
            }
            rows.append(row)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"KIR-ligand groups ({rows[0]['release']})", title_justify="left")
    for col in ("typing", "ligand", "-21", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["allele"]), str(r["ligand"]), str(r["leader_21"] or ""), str(r["reason"] or ""))
    print_table(table)


@app.command("reduce")
def reduce_command(
    typings: Annotated[
        list[str], typer.Argument(help="HLA class I names, allele lists or GL Strings (A*01:01:01:01+A*02:01).")
    ],
    level: Annotated[
        list[Level] | None,
        typer.Option("--level", "-l", help="Level(s) to report (repeat the option); default: all.", show_default=False),
    ] = None,
    mac_file: MacFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per typing and level.")] = False,
) -> None:
    """Each typing at G, P, lg, lgx, two-field and serological level, from the shipped IPD-IMGT/HLA tables.

    G: the G group (identical exon 2-3 nucleotides; the release's group name), an allele in no group itself.
    P: the P group (identical exon 2-3 protein); null alleles and ungrouped alleles stay themselves. lgx: the
    first two fields of the G group, else of the P group, else of the allele; lg: lgx with 'g' (py-ard's
    definitions). two-field: the allele's first two fields with its expression suffix. serological: WMDA
    rel_dna_ser.txt antigen(s) with their basis (unambiguous/possible/assumed), a cross-checking aid, not proof of
    serology. A shorter name reduces to every distinct result of the alleles under it.
    """
    from decidua.immunogenetics.ligands import ligand_table
    from decidua.immunogenetics.mac import read_mac_table
    from decidua.immunogenetics.reduce import SEROLOGY_CAUTION, reduce_gl

    levels = list(dict.fromkeys(level or Level))
    with input_errors():
        macs = read_mac_table(mac_file) if mac_file is not None else None
        rows: list[dict[str, object]] = []
        notes_of: list[list[str]] = []
        for text in typings:
            for lv in levels:
                try:
                    expanded, notes = _expand(text, macs)
                    reduced = reduce_gl(expanded, lv)
                    result, status, release = reduced.output, "reduced", reduced.release
                    notes = [*notes, *reduced.notes]
                except MacCode as exc:
                    result, status, notes, release = None, "needs expansion", [str(exc)], ligand_table().release
                except UnknownAllele as exc:  # answered per typing, as hla ligand does
                    result, status, notes, release = None, "unknown", [str(exc)], ligand_table().release
                rows.append(
                    {
                        "typing": text,
                        "level": lv.value,
                        "result": result,
                        "status": status,
                        "notes": notes,
                        "release": release,
                    }
                )
                notes_of.append(notes)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"HLA typings by level ({ligand_table().release})", title_justify="left")
    for col in ("typing", "level", "result", "note"):
        table.add_column(col, overflow="fold")
    for row, notes in zip(rows, notes_of, strict=True):
        shown = "; ".join(n for n in notes if n != SEROLOGY_CAUTION)
        table.add_row(str(row["typing"]), str(row["level"]), _short(str(row["result"] or row["status"])), shown)
    print_table(table)
    if any(row["level"] == Level.SEROLOGICAL.value for row in rows):
        err_console.print(f"serological: {SEROLOGY_CAUTION}.")


def _short(result: str, most: int = 6) -> str:
    """A long allele list cut for the terminal (``--json`` gives all of it)."""
    names = result.split("/")
    if len(names) <= most:
        return result
    return f"{'/'.join(names[:most])}/... ({len(names)} names; --json lists all)"


@app.command("build-table")
def build_table_command(
    imgt: Annotated[Path, typer.Option("--imgt", help="Directory of an IPD-IMGT/HLA release.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=f"Where to write (default: the package's {TABLE_FILE}).")
    ] = None,
) -> None:
    """Rebuild the HLA tables from an IPD-IMGT/HLA release (facts derived; the release is not copied).

    Writes the ligand table (ligand, residues 76-83, G and P group, leader -21 per allele) and, when the release
    holds WMDA rel_dna_ser.txt (in wmda/ of a github.com/ANHIG/IMGTHLA checkout), hla_serology.tsv.gz beside it.
    """
    from decidua.adapters.batchio import atomic_path
    from decidua.immunogenetics.ligand_table import derive, derive_serology, render, render_serology
    from decidua.immunogenetics.ligands import SEROLOGY_FILE as SEROLOGY_TABLE

    target = output or Path(__file__).resolve().parents[2] / "immunogenetics" / "data" / TABLE_FILE
    with input_errors():
        version, date, rows = derive(imgt)
        serology = derive_serology(imgt)
        with atomic_path(target) as tmp:
            tmp.write_bytes(render(version, date, rows, "decidua hla build-table"))
        if serology is not None:
            with atomic_path(target.with_name(SEROLOGY_TABLE)) as tmp:
                tmp.write_bytes(render_serology(*serology, "decidua hla build-table"))
    err_console.print(f"{target}: {len(rows)} rows from {version} ({date})")
    if serology is None:
        err_console.print("no rel_dna_ser.txt in the release: the serology table was not written")
    else:
        err_console.print(f"{target.with_name(SEROLOGY_TABLE)}: {len(serology[2])} rows")


_ROLES = "woman, partner, sperm-donor, oocyte-donor=ID or embryo=ID"


def _with_typings(case: Case, role: str, typings: list[HmlTyping], source: str) -> Case:
    """The case with one sample's typings set for ``role`` (HLA-C; for the woman her KIR typing too)."""
    from decidua.core.case import KirTyping, Person

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
    from decidua.adapters.hml import read_hml
    from decidua.app.casefile import case_to_data, read_case

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
        from rich.table import Table

        table = Table(title=f"HML typings ({file.name})", title_justify="left")
        for col in ("sample", "locus", "GL String", "release (file)"):
            table.add_column(col, overflow="fold")
        for t in typings:
            release = " ".join(x for x in (t.allele_db, t.allele_version) if x)
            table.add_row(t.sample, t.locus or "KIR", t.gl_string.split("#")[-1], release)
        print_table(table)
    if out is not None:
        err_console.print(f"{out}: case {case_file} with the typings of sample {typings[0].sample} as {role}")
