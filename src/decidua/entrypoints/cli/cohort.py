"""``decidua cohort``: research analytics on a clinic's cohort - its own reference intervals, how well a cut-off
performs, and KIR/HLA-C associations (methods and citations: :mod:`decidua.engines.research`)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decidua.core.errors import InputError
from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import (
    err_console,
    fail,
    input_errors,
    out_console,
    print_json,
    print_table,
    split_csv,
)

if TYPE_CHECKING:
    from decidua.engines.research.source import Source

app = typer.Typer(no_args_is_help=True)

Data = Annotated[Path, typer.Argument(help="Cohort file: CSV, Parquet or Excel (any columns).", show_default=False)]
Where = Annotated[
    str | None,
    typer.Option(
        "--where", help='Only rows where this SQL condition holds, e.g. "age_years <= 35".', show_default=False
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]
Report = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Also write an HTML report with plots, the method and its citations.", show_default=False
    ),
]
_EXPR = "a column, or an SQL condition over the columns (e.g. \"kir_genotype = 'AA'\")"


class Engine(StrEnum):
    POLARS = "polars"
    DASK = "dask"


EngineOption = Annotated[
    Engine, typer.Option("--engine", help="Polars on this machine, or Dask on a cluster (the cluster extra).")
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask scheduler address (tcp://host:8786); default: a local cluster."),
]


def _source(data: Path, engine: Engine, scheduler: str | None, *expressions: str | None) -> Source:
    """The cohort's rows, text columns read by the expressions cast to numbers where they all are, and the
    decidua features the expressions name derived by the batch engine."""
    import polars as pl

    try:
        return _prepared(data, engine, scheduler, expressions)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{data}: cannot read the cohort: {exc}") from None


def _prepared(data: Path, engine: Engine, scheduler: str | None, expressions: tuple[str | None, ...]) -> Source:
    import polars as pl

    from decidua.adapters.batchio import scan_input
    from decidua.engines.research.frame import numeric_columns, with_features
    from decidua.engines.research.source import LocalSource

    source: Source
    if engine is Engine.DASK:
        from decidua.adapters.cluster import DaskSource

        scan_input(data)  # a missing file or unknown format: the same message as the local engine
        source = DaskSource(data, scheduler)
    else:
        source = LocalSource(scan_input(data))
    names: list[str] = []
    schema = source.schema().collect_schema()
    for e in expressions:
        if e is None:
            continue
        if e in schema:
            names.append(e)
            continue
        try:
            names += pl.sql_expr(e).meta.root_names()
        except (pl.exceptions.PolarsError, ValueError):
            continue  # reported with the option that gave it
    return with_features(numeric_columns(source, names), names)


def _where(source: Source, where: str | None) -> tuple[Source, dict[str, object]]:
    """The rows ``where`` selects (all without it); how many it selected and could not read is said on stderr
    and kept for the JSON (``selected``)."""
    import polars as pl

    from decidua.engines.research.frame import binary

    if where is None:
        return source, {}
    condition = binary("--where", where, source.schema())
    try:
        counts = source.aggregate(
            lambda rows: rows.select(
                pl.len().cast(pl.Int64).alias("rows"),
                condition.value.fill_null(False).sum().cast(pl.Int64).alias("selected"),
                (condition.value.is_null()).sum().cast(pl.Int64).alias("unreadable"),
            ),
            [],
        ).row(0, named=True)
    except (pl.exceptions.PolarsError, InputError) as exc:
        raise InputError(f"--where {where!r}: {str(exc).splitlines()[0]}") from None
    selected_counts: dict[str, object] = {"where": where, **{k: int(v) for k, v in counts.items()}}
    err_console.print(
        f"--where {where}: {counts['selected']:,} of {counts['rows']:,} rows selected "
        f"({counts['unreadable']:,} where it could not be read, left out)",
        markup=False,
    )
    selected = condition.value.fill_null(False)
    return source.transform(lambda rows: rows.filter(selected)), selected_counts


def _with_selected(record: dict[str, Any], selected: dict[str, object]) -> dict[str, Any]:
    """The JSON of a result, with what ``--where`` selected when it was given."""
    return record | ({"selected": selected} if selected else {})


def _fmt(x: float | None, digits: int = 3) -> str:
    return (
        "—"
        if x is None
        else f"{x:.{digits}g}"
        if abs(x) < 1e-3 and x != 0
        else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    )


def _ci(pair: tuple[float | None, float | None] | list[Any] | None) -> str:
    if pair is None or pair[0] is None:
        return "—"
    return f"{_fmt(pair[0])} to {_fmt(pair[1])}"


def _excluded(counts: Any) -> None:
    for c in counts:
        if c.missing or c.invalid:
            where = "the adjusted model" if c.option == "--adjust" else "the analysis"
            err_console.print(
                f"{c.option} {c.spec}: {c.missing:,} rows missing, {c.invalid:,} unreadable (left out of {where})",
                markup=False,
            )


def _render(path: Path | None, kind: str, result: Any, data: Path) -> str | None:
    """The HTML report, when asked for (rendered before anything is written: an error leaves no file)."""
    if path is None:
        return None
    from decidua.adapters.report.research import render_research

    return render_research(kind, result, source=data.name)


def _write(path: Path | None, text: str | None, data: Path, what: str) -> None:
    _write_all([(path, text, what)], [data])


def _write_all(outputs: list[tuple[Path | None, str | None, str]], inputs: list[Path]) -> None:
    """Write every output or none: the paths are checked first (distinct, not an input, in a directory that
    exists), then each is written atomically."""
    from decidua.adapters.batchio import atomic_path, check_output

    chosen = [(p, t, w) for p, t, w in outputs if p is not None and t is not None]
    resolved = [p.resolve() for p, _, _ in chosen]
    if len(set(resolved)) < len(resolved):
        raise InputError(f"{', '.join(str(p) for p, _, _ in chosen)}: give each output its own file")
    for path, _, _ in chosen:
        check_output(path, inputs=inputs)
    for path, text, what in chosen:
        with atomic_path(path, inputs=inputs) as tmp:
            tmp.write_text(text, "utf-8")
        err_console.print(f"{path}: {what} written", markup=False)


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"--kb-override {path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--kb-override {path}: not an override file (a mapping was expected)")
    return data


@app.command("reference-interval")
def reference_interval_command(
    data: Data,
    column: Annotated[str, typer.Option("--column", help="The measurement, e.g. pb_nk_percent.", show_default=False)],
    where: Where = None,
    partition: Annotated[
        str | None,
        typer.Option("--partition", help=f'Two subgroups: {_EXPR}, e.g. "age_years > 35".', show_default=False),
    ] = None,
    outliers: Annotated[
        str, typer.Option("--outliers", help="tukey (on the Box-Cox scale), tukey-raw, dixon (Reed) or none.")
    ] = "tukey",
    as_override: Annotated[
        Path | None,
        typer.Option(
            "--as-override",
            help="Write a knowledge-base override setting the rule on --column to these limits, with provenance.",
            show_default=False,
        ),
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="The rule the override sets (default: the one on --column).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The override's name (a clinic, a laboratory).")] = "clinic",
    kb_override: KbOverride = None,
    as_json: AsJson = False,
    report: Report = None,
    engine: EngineOption = Engine.POLARS,
    scheduler: Scheduler = None,
) -> None:
    """Reference interval (CLSI EP28-A3c): nonparametric 2.5th/97.5th percentiles with 90 % CIs (n >= 120), the
    robust method (Horn & Pesce) for 20-119 values; outliers removed and said; with --partition, separate
    intervals and whether the data justify them (Harris & Boyd 1990; Lahti et al. 2002)."""
    from decidua.engines.research.frame import category, numeric
    from decidua.engines.research.reference import reference_interval
    from decidua.knowledge.loader import load_kb

    with input_errors():
        source, selected = _where(_source(data, engine, scheduler, column, where, partition), where)
        rows = source.schema()
        result = reference_interval(
            source,
            numeric("--column", column, rows),
            where_text=where,
            partition=category("--partition", partition, rows) if partition is not None else None,
            outlier_rule=outliers,
        )
        override, override_text = None, None
        if as_override is not None:
            from decidua.engines.research.rules import override_from_interval, threshold_rule

            kb = load_kb(kb_override)
            target = threshold_rule(kb, column, rule, instead="name one with --rule, or leave out --as-override")
            override = override_from_interval(
                result,
                target,
                source_file=data.name,
                name=name,
                today=dt.date.today(),
                active=target.id in {r.id for r in kb.active_rules},
                merge=_load_yaml(kb_override) if kb_override is not None else None,
            )
            override_text = _override_text(as_override, override)
        html = _render(report, "reference-interval", result, data)
        inputs = [data, *([kb_override] if kb_override is not None else [])]
        _write_all([(as_override, override_text, "knowledge-base override"), (report, html, "report")], inputs)
    _excluded(result.excluded)
    if as_json:
        print_json(_with_selected(result.to_record(), selected) | ({"override": override} if override else {}))
        return
    from rich.table import Table

    table = Table(title=f"Reference interval of {column} ({data.name})", title_justify="left")
    for col in ("group", "n", "method", "lower", "90 % CI", "upper", "90 % CI", "outliers"):
        table.add_column(col, overflow="fold")
    for iv in (result.overall, *result.partitions):
        table.add_row(
            iv.partition, f"{iv.n:,}", iv.method or "none", _fmt(iv.lower), _ci(iv.lower_ci), _fmt(iv.upper),
            _ci(iv.upper_ci), f"{iv.outliers_low} low, {iv.outliers_high} high",
        )  # fmt: skip
    print_table(table)
    for iv in (result.overall, *result.partitions):
        if iv.note:
            out_console.print(f"{iv.partition}: {iv.note}", markup=False)
    verdicts = result.partitioning
    for p in verdicts if isinstance(verdicts, tuple) else [verdicts] if verdicts is not None else []:
        out_console.print(
            f"Partitioning {p.groups[0]} / {p.groups[1]}: Harris-Boyd z = {p.z:.2f} against z* = {p.z_star:.2f}: "
            f"{p.harris_boyd}; Lahti (share outside the combined limits, > 4.1 % separate, <= 3.2 % one): "
            f"{p.lahti}; SD ratio {p.sd_ratio:.2f}.",
            markup=False,
        )
    if override is not None:
        out_console.print(f"Override written to {as_override}: rules {override['rules']}", markup=False)


def _override_text(path: Path, override: dict[str, Any]) -> str:
    """The override as YAML, checked to load as an override file."""
    import yaml

    from decidua.knowledge.loader import parse_override

    text = yaml.safe_dump(override, sort_keys=False, allow_unicode=True, width=100)
    parse_override(text, str(path))
    return text


@app.command("cutoff")
def cutoff_command(
    data: Data,
    marker: Annotated[str, typer.Option("--marker", help="The marker, e.g. pb_nk_percent.", show_default=False)],
    outcome: Annotated[str, typer.Option("--outcome", help=f"The outcome: {_EXPR}.", show_default=False)],
    cutoff: Annotated[
        float | None,
        typer.Option(
            "--cutoff",
            help="Positive above this value (default: the active rule on --marker, age bands included).",
            show_default=False,
        ),
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="The rule whose cut-off to test.")] = None,
    where: Where = None,
    kb_override: KbOverride = None,
    as_json: AsJson = False,
    report: Report = None,
    engine: EngineOption = Engine.POLARS,
    scheduler: Scheduler = None,
) -> None:
    """ROC curve and AUC (DeLong 95 % CI) of a marker for an outcome; sensitivity, specificity, PPV and NPV with
    Wilson and exact CIs at the cut-off and at the Youden optimum."""
    from decidua.engines.research.frame import binary, numeric, numeric_columns
    from decidua.engines.research.roc import fixed_cutoff, roc
    from decidua.engines.research.rules import band_columns, rule_cutoff, threshold_rule
    from decidua.knowledge.loader import load_kb

    with input_errors():
        source, selected = _where(_source(data, engine, scheduler, marker, outcome, where), where)
        rows = source.schema()
        if cutoff is not None:
            chosen = fixed_cutoff(cutoff)
        else:
            kb = load_kb(kb_override)
            rule_found = threshold_rule(kb, marker, rule)
            source = numeric_columns(source, band_columns(rule_found))
            rows = source.schema()
            chosen = rule_cutoff(kb, rule_found, rows)
        result = roc(source, numeric("--marker", marker, rows), binary("--outcome", outcome, rows), chosen)
        _write(report, _render(report, "cutoff", result, data), data, "report")
    _excluded(result.excluded)
    if as_json:
        print_json(_with_selected(result.to_record(), selected))
        return
    out_console.print(
        f"{marker} for {outcome} ({data.name}): n = {result.positives + result.negatives:,} "
        f"({result.positives:,} with the outcome); AUC {result.auc:.3f} (95 % CI {_ci(result.auc_ci)}, DeLong)",
        markup=False,
    )
    from rich.table import Table

    table = Table(title="Cut-off performance (positive: marker above the cut-off)", title_justify="left")
    for col in ("cut-off", "TP", "FP", "FN", "TN", "sensitivity", "specificity", "PPV", "NPV"):
        table.add_column(col, overflow="fold")
    for label, at in (("given", result.at), ("Youden optimum", result.youden)):
        if at is None:
            continue
        table.add_row(
            f"{at.cutoff} ({label})", f"{at.true_positive:,}", f"{at.false_positive:,}", f"{at.false_negative:,}",
            f"{at.true_negative:,}",
            *(f"{_fmt(p.value)} ({_ci(p.wilson)})" for p in (at.sensitivity, at.specificity, at.ppv, at.npv)),
        )  # fmt: skip
    print_table(table)
    out_console.print("Intervals: Wilson score 95 %; exact (Clopper-Pearson) ones in --json.", markup=False)
    for note in result.notes:
        out_console.print(note, markup=False)


@app.command("association")
def association_command(
    data: Data,
    exposure: Annotated[str, typer.Option("--exposure", help=f"The exposure: {_EXPR}.", show_default=False)],
    outcome: Annotated[str, typer.Option("--outcome", help=f"The outcome: {_EXPR}.", show_default=False)],
    adjust: Annotated[
        str | None,
        typer.Option(
            "--adjust", help="Columns to adjust for (comma-separated; numbers or yes/no).", show_default=False
        ),
    ] = None,
    where: Where = None,
    as_json: AsJson = False,
    report: Report = None,
    engine: EngineOption = Engine.POLARS,
    scheduler: Scheduler = None,
) -> None:
    """2x2 table, odds ratio with Woolf and exact CIs, Fisher's exact p; with --adjust a logistic regression
    (adjusted odds ratio, Wald CI, p)."""
    from decidua.engines.research.association import associate
    from decidua.engines.research.frame import binary, covariate

    covariates = split_csv(adjust, spaces=False)
    repeated = sorted({c for c in covariates if covariates.count(c) > 1})
    if repeated:
        fail(f"--adjust: {', '.join(repeated)} given twice; give each column once")
    with input_errors():
        source, selected = _where(_source(data, engine, scheduler, exposure, outcome, where, *covariates), where)
        rows = source.schema()
        result = associate(
            source,
            binary("--exposure", exposure, rows),
            binary("--outcome", outcome, rows),
            [covariate("--adjust", c, rows) for c in covariates],
        )
        _write(report, _render(report, "association", result, data), data, "report")
    _excluded(result.excluded)
    if as_json:
        print_json(_with_selected(result.to_record(), selected))
        return
    (a, b), (c, d) = result.table
    from rich.table import Table

    table = Table(title=f"{exposure} and {outcome} ({data.name})", title_justify="left")
    for col in ("", f"{outcome}: yes", f"{outcome}: no"):
        table.add_column(col)
    table.add_row(f"{exposure}: yes", f"{a:,}", f"{b:,}")
    table.add_row(f"{exposure}: no", f"{c:,}", f"{d:,}")
    print_table(table)
    out_console.print(
        f"Odds ratio {_fmt(result.odds_ratio)} (95 % CI {_ci(result.ci)}, Woolf); conditional MLE "
        f"{_fmt(result.conditional_odds_ratio)} (exact 95 % CI {_ci(result.exact_ci)}); Fisher's exact p = "
        f"{_fmt(result.p_fisher)}",
        markup=False,
    )
    if result.adjusted is not None:
        adj = result.adjusted
        out_console.print(
            f"Adjusted for {', '.join(adj.covariates)} (logistic regression, n = {adj.n:,}): odds ratio "
            f"{_fmt(adj.odds_ratio)} (95 % CI {_ci(adj.ci)}), p = {_fmt(adj.p)}"
            + (f"; {adj.note}" if adj.note else ""),
            markup=False,
        )
    for note in result.notes:
        out_console.print(note, markup=False)


def _or(assoc: Any) -> str:
    if assoc.odds_ratio is not None:
        return f"{_fmt(assoc.odds_ratio)} ({_ci(assoc.ci)})"
    return f"{_fmt(assoc.conditional_odds_ratio)} (exact {_ci(assoc.exact_ci)})"


@app.command("scan")
def scan_command(
    data: Data,
    outcome: Annotated[str, typer.Option("--outcome", help=f"The outcome: {_EXPR}.", show_default=False)],
    key: Annotated[str, typer.Option("--key", help="The case key column.")] = "case_id",
    power_or: Annotated[
        float, typer.Option("--power-or", help="The odds ratio each test's power is computed for.", min=1.01)
    ] = 2.0,
    where: Where = None,
    as_json: AsJson = False,
    report: Report = None,
    engine: EngineOption = Engine.POLARS,
    scheduler: Scheduler = None,
) -> None:
    """Every KIR gene, AA/Bx, Cen/Tel, maternal and paternal/fetal HLA-C group and KIR AA x more fetal C2 than
    mother against the outcome (cohort in the batch input layout): odds ratios, Fisher p, Benjamini-Hochberg
    adjusted p and each test's power."""
    from decidua.engines.research.frame import binary
    from decidua.engines.research.scan import scan

    with input_errors():
        source, selected = _where(_source(data, engine, scheduler, outcome, where), where)
        result = scan(source, binary("--outcome", outcome, source.schema()), key=key, odds_ratio=power_or)
        _write(report, _render(report, "scan", result, data), data, "report")
    if as_json:
        print_json(_with_selected(result.to_record(), selected))
        return
    out_console.print(
        f"{result.rows_read:,} rows read; {result.rows_rejected:,} rejected by the batch engine's checks; "
        f"{result.outcome_missing:,} without an outcome (left out)",
        markup=False,
    )
    from rich.table import Table

    table = Table(title=f"KIR/HLA-C scan against {outcome} ({data.name})", title_justify="left")
    for col in (
        "exposure",
        "exposed (yes/no)",
        "unexposed (yes/no)",
        "OR (95 % CI)",
        "p",
        "p BH",
        f"power OR {power_or:g}",
    ):
        table.add_column(col, overflow="fold")
    for r in result.results:
        (a, b), (c, d) = r.table
        assoc = r.association
        table.add_row(
            r.exposure, f"{a:,}/{b:,}", f"{c:,}/{d:,}",
            "—" if assoc is None else _or(assoc),
            "—" if assoc is None else _fmt(assoc.p_fisher), _fmt(r.p_adjusted),
            "—" if r.power is None else f"{r.power:.2f}",
        )  # fmt: skip
    print_table(table)
    out_console.print(
        "Exploratory: many tests on one cohort (p BH: Benjamini-Hochberg); a test with low power cannot show an "
        "association of that size, and no association here is evidence of cause.",
        markup=False,
    )
