"""``decidua kir``: interpret a woman's KIR gene-content typing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from decidua.core.errors import InputError
from decidua.entrypoints.cli.common import (
    err_console,
    escape,
    fail,
    input_errors,
    out_console,
    print_json,
    print_table,
    refuse_extra,
    split_csv,
    write_case_file,
)
from decidua.immunogenetics.kir.genotypers import DEFAULT_MIN_QUALITY, Tool

if TYPE_CHECKING:  # imported by the functions that use them (start-up time: Polars, rich)
    import polars as pl
    from rich.table import Table

    from decidua.immunogenetics.kir import KirProfile
    from decidua.immunogenetics.kir.genotypers import SampleTyping

app = typer.Typer(no_args_is_help=True)

_GENES_HELP = "KIR genes separated by commas or spaces, with or without 'KIR' (e.g. 2DL1,KIR2DL3 or '2DL1 2DL3')"


def _text(profile: KirProfile) -> Table:
    from rich.table import Table
    from rich.text import Text

    def show(value: object) -> str | Text:
        if value is None:
            return Text("undetermined", style="yellow")
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    table = Table(title="KIR gene content", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    record = profile.to_record()
    rows = [
        ("genotype", "genotype (AA / Bx)"),
        ("cen", "centromeric motif"),
        ("tel", "telomeric motif"),
        ("b_content", "B-content score (0-4)"),
        ("b_content_group", "B-content group"),
        ("activating_count", "activating KIR"),
        ("has_2ds1", "KIR2DS1"),
        ("has_c1_receptor", "C1 receptor (2DL2/2DL3)"),
        ("has_c2_receptor", "C2 receptor (2DL1)"),
    ]
    for key, label in rows:
        table.add_row(label, show(record[key]))
    for key in ("present", "absent", "untested", "kir2ds4_variants"):
        if record[key]:
            table.add_row(key.replace("_", " "), ", ".join(record[key]))
    for allele, subgroup in profile.kir3dl1_allotypes:
        table.add_row(f"{allele} allotype", subgroup)
    if profile.ipd_kir_release:
        table.add_row("alleles checked against", profile.ipd_kir_release)
    return table


@app.command("classify")
def classify_command(
    present: Annotated[
        str | None, typer.Option("--present", help=f"{_GENES_HELP}; IPD-KIR allele names also accepted.")
    ] = None,
    absent: Annotated[str | None, typer.Option("--absent", help=f"{_GENES_HELP} typed absent.")] = None,
    untested: Annotated[str | None, typer.Option("--untested", help=f"{_GENES_HELP} not tested.")] = None,
    gl: Annotated[
        str | None, typer.Option("--gl", help="A GL String in the 'kir' namespace, e.g. 'kir#2.13.0#KIR2DL1*001+...'.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    extra: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
) -> None:
    """Classify a KIR genotype: AA/Bx, Cen/Tel motifs, B-content group (Cooley et al. Blood 2010).

    Genes listed in no option count as absent (the kit typed all 16 loci); list the others with --untested.
    Values the rules cannot decide are reported as undetermined with the reason.
    """
    from decidua.immunogenetics.kir import calls_from_lists, classify

    refuse_extra(extra, "--present")
    if not (present or absent or untested or gl):
        fail("give the typing: --present (and --absent / --untested) or --gl")
    with input_errors():
        calls = calls_from_lists(split_csv(present), split_csv(absent), split_csv(untested), gl_string=gl)
        profile = classify(calls)
    if as_json:
        print_json(profile.to_record())
        return
    print_table(_text(profile))
    for warning in profile.warnings:
        out_console.print(f"[yellow]warning:[/] {escape(warning)}", markup=True, highlight=False)


def _loci_table(typing: SampleTyping) -> Table:
    from rich.table import Table

    table = Table(title=f"{typing.tool.value}: sample {typing.sample}", title_justify="left")
    for col in ("gene", "call", "alleles", "copies", "quality", "note"):
        table.add_column(col, overflow="fold")
    for x in typing.loci:
        quality = "" if x.quality is None else f"{x.quality:g}"
        copies = "" if x.copy_number is None else str(x.copy_number)
        table.add_row(x.gene.value, x.call.value, "|".join(x.alleles), copies, quality, x.note or "")
    return table


_DEFAULTS = ", ".join(
    f"{t.value} {q:g}" if q is not None else f"{t.value}: none" for t, q in DEFAULT_MIN_QUALITY.items()
)


@app.command("import")
def import_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Output file(s) of the genotyper (kir-mapper: the copy-number table and any <GENE>.calls.txt).",
            show_default=False,
        ),
    ],
    tool: Annotated[
        Tool, typer.Option("--format", "-f", help="The genotyper that wrote the file(s).", case_sensitive=False)
    ],
    sample: Annotated[
        str | None,
        typer.Option("--sample", help="The sample to read (T1K: the name to give it; default: the file name)."),
    ] = None,
    min_quality: Annotated[
        float | None,
        typer.Option(
            "--min-quality",
            help=f"Quality a call needs (T1K: above it; kir-mapper Ratio: at least it); defaults: {_DEFAULTS}.",
        ),
    ] = None,
    case_file: Annotated[
        Path | None, typer.Option("--case", help="A case file whose woman's KIR typing to set (needs --out).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the case file with the typing (YAML).")
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="Also write every sample as batch-engine KIR columns (.csv or .parquet)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: per sample, every locus, the warnings and the typing.")
    ] = False,
) -> None:
    """Read a KIR genotyper's output (T1K, PING, kir-mapper) into decidua's typing, per sample.

    A call below the quality threshold, a failed sample or locus, or a gene the file does not report is not tested
    (never absent), with the reason; a missing framework gene is a warning. With --case and --out the woman's KIR
    typing of the case is replaced by this one (one sample; name it with --sample when the file holds several).
    With --batch every sample becomes a row of the batch engine's KIR columns (case_id = the sample; kir_2dl1 ...
    true, false or empty for not tested), to join to a cohort file.
    """
    from decidua.app.casefile import case_to_data, read_case
    from decidua.immunogenetics.kir import calls_from_typing, classify
    from decidua.immunogenetics.kir.genotypers import merge_samples, read_genotyper

    if (case_file is None) != (out is None):
        fail("--case and --out go together: the case file to read and where to write it with the typing")
    with input_errors():
        typings = []
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: cannot read: {exc}") from None
            typings += read_genotyper(text, tool, str(path), sample=sample, min_quality=min_quality)
        typings = merge_samples(typings)
        profiles = [classify(calls_from_typing(t.to_typing())) for t in typings]
        if case_file is not None and out is not None:
            if len(typings) != 1:
                names = ", ".join(t.sample for t in typings)
                raise InputError(f"the file(s) hold {len(typings)} samples ({names}): choose one with --sample")
            case = read_case(case_file)
            genotypes = dataclasses.replace(case.genotypes, woman_kir=typings[0].to_typing())
            data = case_to_data(dataclasses.replace(case, genotypes=genotypes))
            write_case_file(out, data, [*files, case_file], str(case_file))
        if batch is not None:
            from decidua.adapters.batchio import write_frame

            write_frame(kir_columns(typings), batch, inputs=files)
    if as_json:
        print_json([t.to_record() | {"profile": p.to_record()} for t, p in zip(typings, profiles, strict=True)])
    else:
        for t, p in zip(typings, profiles, strict=True):
            print_table(_loci_table(t))
            print_table(_text(p))
            for warning in (*t.warnings, *p.warnings):
                out_console.print(f"[yellow]warning:[/] {escape(warning)}", markup=True, highlight=False)
    if out is not None:
        err_console.print(f"{out}: case {case_file} with the KIR typing of sample {typings[0].sample}")
    if batch is not None:
        err_console.print(f"{batch}: {len(typings)} sample(s) as batch KIR columns")


def kir_columns(typings: list[SampleTyping]) -> pl.DataFrame:
    """One row per sample in the batch engine's layout: ``case_id`` and the KIR columns (null: not tested)."""
    import polars as pl

    from decidua.engines.batch import DEFAULT_KEY, KIR_COLUMNS
    from decidua.immunogenetics.kir import calls_from_typing

    rows = []
    for t in typings:
        calls = calls_from_typing(t.to_typing())
        row: dict[str, object] = {DEFAULT_KEY: t.sample}
        for name, gene in KIR_COLUMNS.items():
            row[name] = True if gene in calls.present else False if gene in calls.absent else None
        rows.append(row)
    return pl.DataFrame(rows, schema={DEFAULT_KEY: pl.String, **dict.fromkeys(KIR_COLUMNS, pl.Boolean)})
