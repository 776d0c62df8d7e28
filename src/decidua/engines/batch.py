"""Assess a cohort in the flat feature layout, column-wise, with Polars.

The pipeline is lazy end to end: :func:`prepare` casts and checks the input columns and splits valid rows
from rejected ones (each with its reason), :func:`assess_lazy` adds one status column per active rule and the
classification. The rules are the knowledge base's compiled expressions translated by
:mod:`decidua.engines.columnar`, so every row gets exactly the one-patient result.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from decidua.core.case import Case
from decidua.core.cells import CELL_HELP_SHORT, GENE_CELL_HELP_SHORT, GENE_WORDS, WORDS
from decidua.core.errors import InputError
from decidua.core.expr import Scalar, columns
from decidua.core.features import DERIVED, FEATURES, FeatureSpec
from decidua.core.findings import Status
from decidua.engines.columnar import FEATURE_SCHEMA, status_expr, to_polars
from decidua.engines.extract import KIR_FEATURES, extract, gamete_sources, kir_features
from decidua.immunogenetics.compatibility import CLigand, c2_count, c_ligand, resolve_hla_c
from decidua.immunogenetics.kir import LOCI, KirCalls, KirGene, calls_from_typing, classify
from decidua.immunogenetics.ligands import genotype_side
from decidua.knowledge.loader import KnowledgeBase

DEFAULT_KEY = "case_id"
REASON = "reason"

# Cross-column consistency of a row (each: a condition that must hold, and what it means).
CONSISTENCY: tuple[tuple[str, str, str], ...] = (
    ("n_transfers_failed", "n_transfers", "n_transfers_failed must not exceed n_transfers"),
    (
        "n_transfers_biochemical",
        "n_transfers_failed",
        "n_transfers_biochemical must not exceed n_transfers_failed",
    ),
    (
        "n_biochemical_losses_art",
        "n_biochemical_losses",
        "n_biochemical_losses_art must not exceed n_biochemical_losses",
    ),
    (
        "n_biochemical_losses_art_known",
        "n_biochemical_losses_art",
        "n_biochemical_losses_art_known must not exceed n_biochemical_losses_art",
    ),
    (
        "n_first_trimester_miscarriages",
        "n_miscarriages",
        "n_first_trimester_miscarriages must not exceed n_miscarriages",
    ),
    (
        "n_miscarriages_week_unknown",
        "n_miscarriages",
        "n_miscarriages_week_unknown must not exceed n_miscarriages",
    ),
    (
        "n_miscarriages_from_10_weeks",
        "n_miscarriages",
        "n_miscarriages_from_10_weeks must not exceed n_miscarriages",
    ),
    (
        "n_euploid_transfers_failed",
        "n_transfers_failed",
        "n_euploid_transfers_failed must not exceed n_transfers_failed",
    ),
)


# Genotypes enter a cohort file raw, as a lab reports them; the features the rules read (KIR genotype and motifs,
# HLA-C2 counts, Mendelian probabilities) are derived here exactly as the one-patient engine derives them.
KIR_COLUMNS: dict[str, KirGene] = {f"kir_{g.value.removeprefix('KIR').lower()}": g for g in LOCI}
HLA_COLUMNS: dict[str, str] = {
    "woman_hla_c": "HLA-C genotype of the woman (GL String, e.g. C*07:02+C*06:02)",
    "partner_hla_c": "HLA-C genotype of the sperm source: the partner, or the sperm donor",
    "oocyte_donor_hla_c": "HLA-C genotype of the oocyte donor, in a donation cycle",
}
_GENOTYPE_FEATURES = frozenset(
    {*KIR_FEATURES, "woman_c2_count", "oocyte_donor_c2_count", "sperm_c2_count", "oocytes_donor", *DERIVED}
)
INPUT_FEATURES: tuple[FeatureSpec, ...] = (
    *(f for f in FEATURES if f.name not in _GENOTYPE_FEATURES),
    *(FeatureSpec(name, "bool", f"{gene.value} present (null: not tested)") for name, gene in KIR_COLUMNS.items()),
    FeatureSpec(
        "oocytes",
        "str",
        "Oocytes of the cycle: own or donor (null: own, unless oocyte_donor_hla_c is given)",
        categories=("own", "donor"),
    ),
)
INPUT_INDEX: dict[str, FeatureSpec] = {f.name: f for f in INPUT_FEATURES}
INPUT_SCHEMA: dict[str, Any] = {
    **{n: t for n, t in FEATURE_SCHEMA.items() if n not in _GENOTYPE_FEATURES},
    **dict.fromkeys(KIR_COLUMNS, pl.Boolean),
    "oocytes": pl.String,
}


@dataclass(frozen=True, slots=True)
class Layout:
    """How an input's columns map onto the feature layout."""

    key: str
    present: tuple[str, ...]  # input columns found in the input
    absent: tuple[str, ...]  # input columns missing: read as null (not recorded)
    hla: tuple[str, ...] = ()  # HLA-C columns found in the input


def plan_layout(columns: Sequence[str], key: str = DEFAULT_KEY, allow_extra: bool = False) -> Layout:
    """Check an input's column names against the documented layout.

    Raises
    ------
    InputError
        If the key column is missing, or (unless ``allow_extra``) a column is not part of the layout.
    """
    if key not in columns:
        raise InputError(f"input has no key column {key!r}; columns found: {', '.join(columns) or 'none'}")
    unknown = [c for c in columns if c != key and c not in INPUT_INDEX and c not in HLA_COLUMNS]
    if unknown and not allow_extra:
        raise InputError(
            f"input columns not in the layout: {', '.join(unknown)} "
            "(see `decidua batch --columns`; pass --allow-extra to ignore them)"
        )
    present = tuple(f.name for f in INPUT_FEATURES if f.name in columns)
    absent = tuple(f.name for f in INPUT_FEATURES if f.name not in columns)
    return Layout(key, present, absent, tuple(c for c in HLA_COLUMNS if c in columns))


ValueMap = dict[str, bool | str | None]


def value_maps(frame: pl.DataFrame, layout: Layout) -> dict[str, ValueMap]:
    """For text cells of boolean and categorical columns: each distinct spelling -> its value.

    Labs write "Normal", " abnormal" or "Yes"; these are read case- and space-insensitively with the words of
    every table decidua reads (:mod:`decidua.core.cells`): yes/no columns only unambiguous yes/no words, KIR gene
    columns also present/absent, P/A and the not-tested words (null). Working on the
    distinct values (a handful per column) instead of every cell keeps the cost per row to one hash lookup.
    Spellings that mean nothing allowed are left out, so they are rejected with their row.
    """
    text = [n for n in layout.present if INPUT_INDEX[n].dtype in ("bool", "str") and frame.schema[n] == pl.String]
    distinct = frame.select(pl.col(n).unique().drop_nulls().implode() for n in text).row(0) if text else ()
    maps: dict[str, ValueMap] = {}
    for name, values in zip(text, distinct, strict=True):
        spec = INPUT_INDEX[name]
        vocabulary: dict[str, bool | str | None]
        if name in KIR_COLUMNS:
            vocabulary = dict(GENE_WORDS)  # present / absent / not tested, as a KIR sheet says them
        elif spec.dtype == "bool":
            vocabulary = dict(WORDS)  # yes / no only: "A" or "ND" on a lab sheet are not guessed
        else:
            vocabulary = {c.lower(): c for c in spec.categories}
        maps[name] = {raw: vocabulary[raw.strip().lower()] for raw in values if raw.strip().lower() in vocabulary}
    return maps


def _cast(spec: FeatureSpec, col: pl.Expr, source: pl.DataType, mapping: ValueMap | None) -> pl.Expr:
    target = INPUT_SCHEMA[spec.name]
    if mapping is not None:
        dtype = pl.Enum(spec.categories) if spec.dtype == "str" else target
        return col.replace_strict(mapping, default=None, return_dtype=dtype)
    if spec.dtype == "str":
        return col.cast(pl.String).cast(pl.Enum(spec.categories), strict=False)
    if source == pl.String:
        col = col.str.strip_chars()
    if spec.dtype == "int" and source in (pl.Float32, pl.Float64):
        # a whole-number float (Excel, pandas) is accepted; 2.5 pregnancies is not
        return pl.when(col == col.round(0)).then(col).otherwise(None).cast(target, strict=False)
    return col.cast(target, strict=False)


def _check(spec: FeatureSpec, raw: pl.Expr, value: pl.Expr, mapping: ValueMap | None) -> tuple[pl.Expr, pl.Expr]:
    """(is this column's value bad?, the message saying why) for one feature column."""
    if spec.name in KIR_COLUMNS:
        allowed = GENE_CELL_HELP_SHORT
    elif spec.dtype == "bool":
        allowed = CELL_HELP_SHORT
    elif spec.dtype == "str":
        allowed = "one of " + ", ".join(spec.categories)
    else:
        allowed = f"{'an integer' if spec.dtype == 'int' else 'a number'} from {spec.low:g} to {spec.high:g}"
    bad = raw.is_not_null() & value.is_null()  # present but not of the column's type or vocabulary
    blank = [text for text, meant in (mapping or {}).items() if meant is None]
    if blank:  # ... unless it says "not tested"
        bad = bad & ~raw.is_in(blank)
    if spec.dtype not in ("bool", "str") and spec.low is not None and spec.high is not None:
        bad = bad | ((value < spec.low) | (value > spec.high)).fill_null(False)
    message = pl.format(f"{spec.name}: got '{{}}'; allowed: {allowed}", raw.cast(pl.String).fill_null(""))
    return bad, message


def _raw(name: str) -> str:
    return f"__raw_{name}"


def case_to_row(case: Case) -> dict[str, Scalar]:
    """A case in the batch input layout (genotypes raw, as a lab reports them), keyed by its ``case_id``."""
    features = extract(case)
    row: dict[str, Scalar] = {DEFAULT_KEY: case.case_id}
    row |= {f.name: features[f.name] for f in INPUT_FEATURES if f.name in features}
    g = case.genotypes
    if g.woman_kir is not None:
        calls = calls_from_typing(g.woman_kir)
        for name, gene in KIR_COLUMNS.items():
            row[name] = True if gene in calls.present else False if gene in calls.absent else None
    oocyte, sperm = gamete_sources(case)
    row["oocytes"] = g.oocytes
    row["woman_hla_c"] = g.woman_hla_c
    row["partner_hla_c"] = sperm
    row["oocyte_donor_hla_c"] = oocyte if g.oocytes == "donor" else None
    return row


# One genotype with two sides and no namespace: resolved side by side, so that a cohort's many genotype strings
# cost one interpretation per distinct allele (list). Anything else (genotype lists, namespaces) is resolved whole.
_SIMPLE_GENOTYPE = r"^[^|^~+#]+\+[^|^~+#]+$"
_CACHE = 1 << 16  # distinct alleles, typings and KIR patterns remembered across chunks


@functools.lru_cache(maxsize=_CACHE)
def _side(side: str) -> tuple[int | None, str | None]:
    """(C2 count, error) of one side of a genotype: 1 for C2, 0 for C1, None when it has no C ligand."""
    try:
        ligand = c_ligand(genotype_side(side))
    except InputError as exc:
        return None, str(exc)
    return (None if ligand is None else int(ligand is CLigand.C2)), None


@functools.lru_cache(maxsize=_CACHE)
def _whole(text: str) -> tuple[int | None, str | None]:
    """(C2 count, error) of a typing that is not one plain genotype (lists, namespaces), resolved whole."""
    try:
        resolved = resolve_hla_c(text)
    except InputError as exc:
        return None, str(exc)
    return (None if resolved.genotype is None else c2_count(resolved.genotype)), None


_TYPING = "typing"
_C2 = "c2"
_ERROR = "error"


def hla_table(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Each distinct HLA-C typing in ``columns`` with its C2 count and error message (null when it is fine).

    Plain genotypes (``A+B``) are split and each distinct side interpreted once (and remembered across chunks);
    the C2 count of a genotype is the sum of its sides', and its error the errors of its sides.
    """
    schema = {_TYPING: pl.String, _C2: pl.Int64, _ERROR: pl.String}
    if not columns:
        return pl.DataFrame(schema=schema)
    typings = pl.concat([frame.get_column(c).cast(pl.String).drop_nulls() for c in columns]).unique()
    simple = typings.to_frame(_TYPING).filter(pl.col(_TYPING).str.contains(_SIMPLE_GENOTYPE))
    parts = pl.col(_TYPING).str.split_exact("+", 1)
    simple = simple.with_columns(
        parts.struct.field("field_0").str.strip_chars().alias("a"),
        parts.struct.field("field_1").str.strip_chars().alias("b"),
    )
    sides = pl.concat([simple.get_column("a"), simple.get_column("b")]).unique()
    known = [_side(side) for side in sides.to_list()]
    side_c2 = pl.Series([c2 for c2, _ in known], dtype=pl.Int64)
    side_error = pl.Series([error for _, error in known], dtype=pl.String)

    def c2(col: str) -> pl.Expr:
        return pl.col(col).replace_strict(sides, side_c2, default=None, return_dtype=pl.Int64)

    def error(col: str) -> pl.Expr:
        return pl.col(col).replace_strict(sides, side_error, default=None, return_dtype=pl.String)

    both = pl.concat_str([error("a"), error("b")], separator="; ", ignore_nulls=True)
    resolved_sides = simple.select(
        _TYPING, (c2("a") + c2("b")).alias(_C2), pl.when(both != "").then(both).alias(_ERROR)
    )
    whole = typings.filter(~typings.is_in(simple.get_column(_TYPING).implode()))
    resolved_whole = pl.DataFrame([(text, *_whole(text)) for text in whole.to_list()], schema=schema, orient="row")
    return pl.concat([resolved_sides, resolved_whole])


def _hla_columns(frame: pl.DataFrame, columns: Sequence[str]) -> list[pl.Series]:
    """For each HLA-C column: its C2 count and error, row by row (joined from the table of distinct typings)."""
    table = hla_table(frame, columns)
    out = []
    for col in columns:
        text = frame.get_column(col).cast(pl.String).to_frame(_TYPING)
        joined = text.join(table, on=_TYPING, how="left", maintain_order="left")
        out += [joined.get_column(kind).alias(_derived(col, kind)) for kind in (_C2, _ERROR)]
    return out


def _derived(col: str, kind: str) -> str:
    return f"__{kind}_{col}"


_KIR_CODE = "__kir_code"
_UNTESTED = 2  # a locus' digit in the KIR pattern code: 0 absent, 1 present, 2 not tested
_UNTYPED = sum(_UNTESTED * 3**i for i in range(len(KIR_COLUMNS)))


def _kir_code(layout: Layout) -> pl.Expr:
    """One integer per row encoding its KIR loci (base 3), so each distinct pattern is classified once."""
    digits = [
        (pl.col(name).cast(pl.Int64).fill_null(_UNTESTED) if name in layout.present else pl.lit(_UNTESTED, pl.Int64))
        * 3**i
        for i, name in enumerate(KIR_COLUMNS)
    ]
    return pl.sum_horizontal(digits).alias(_KIR_CODE)


@functools.lru_cache(maxsize=_CACHE)
def _kir_pattern(code: int) -> tuple[Scalar, ...]:
    """The KIR feature values of one pattern code (all null for an untyped woman)."""
    if code == _UNTYPED:
        return tuple(kir_features(None).values())
    calls: dict[int, set[KirGene]] = {0: set(), 1: set(), 2: set()}
    rest = code
    for gene in KIR_COLUMNS.values():  # every locus, once: the calls are complete and cannot contradict
        calls[rest % 3].add(gene)
        rest //= 3
    typing = KirCalls(present=frozenset(calls[1]), absent=frozenset(calls[0]), untested=frozenset(calls[2]))
    return tuple(kir_features(classify(typing)).values())


def _kir_lookup(codes: pl.Series) -> pl.DataFrame:
    """The KIR feature columns of each distinct pattern code."""
    distinct = codes.unique().to_list()
    schema = {_KIR_CODE: pl.Int64, **{n: FEATURE_SCHEMA[n] for n in KIR_FEATURES}}
    return pl.DataFrame([(code, *_kir_pattern(code)) for code in distinct], schema=schema, orient="row")


def _kir_columns(frame: pl.DataFrame, layout: Layout, maps: dict[str, ValueMap]) -> pl.DataFrame:
    """The woman's KIR feature columns, row by row: each distinct pattern of loci classified once."""
    typed = [
        _cast(INPUT_INDEX[n], pl.col(n), frame.schema[n], maps.get(n)).alias(n)
        for n in layout.present
        if n in KIR_COLUMNS
    ]
    # the key column keeps the frame's height when no KIR column is present (the code is then a literal)
    codes = frame.select(pl.col(layout.key), *typed).select(_kir_code(layout), pl.col(layout.key)).drop(layout.key)
    return codes.join(_kir_lookup(codes.get_column(_KIR_CODE)), on=_KIR_CODE, how="left", maintain_order="left").drop(
        _KIR_CODE
    )


def prepare(frame: pl.DataFrame, layout: Layout) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Cast the input, check it, derive the genotype features, and split (valid rows, rejected rows with reason).

    Categorical columns become Enums of their allowed values. Distinct text values, HLA-C typings and KIR
    patterns are each interpreted once (and remembered across chunks); their results are joined back with one
    hash lookup per cell. Reasons are formatted only for the rejected rows.
    """
    schema = frame.schema
    maps = value_maps(frame, layout)
    genotypes = _kir_columns(frame, layout, maps).hstack(_hla_columns(frame, layout.hla))
    raw = (
        frame.select(
            pl.col(layout.key).cast(pl.String),
            *(pl.col(n).alias(_raw(n)) for n in layout.present),
            *(pl.col(n).cast(pl.String) for n in layout.hla),
        )
        .hstack(genotypes)
        .lazy()
    )
    typed = raw.with_columns(
        *(_cast(INPUT_INDEX[n], pl.col(_raw(n)), schema[n], maps.get(n)).alias(n) for n in layout.present),
        *(pl.lit(None, INPUT_SCHEMA[n]).alias(n) for n in layout.absent),
    )
    checks = [_check(INPUT_INDEX[n], pl.col(_raw(n)), pl.col(n), maps.get(n)) for n in layout.present]
    checks += [
        ((pl.col(a) > pl.col(b)).fill_null(False), pl.lit(msg))
        for a, b, msg in CONSISTENCY
        if a in layout.present and b in layout.present
    ]
    weeks = ("n_first_trimester_miscarriages", "n_miscarriages_week_unknown", "n_miscarriages")
    if all(c in layout.present for c in weeks):
        checks.append(
            (
                (pl.col(weeks[0]) + pl.col(weeks[1]) > pl.col(weeks[2])).fill_null(False),
                pl.lit("n_first_trimester_miscarriages + n_miscarriages_week_unknown must not exceed n_miscarriages"),
            )
        )
    for col in layout.hla:
        error = pl.col(_derived(col, _ERROR))
        checks.append((error.is_not_null(), pl.format(f"{col}: got '{{}}'; {{}}", pl.col(col), error)))
    checks.append((pl.col(layout.key).is_null(), pl.lit(f"{layout.key}: missing key")))
    flagged = typed.with_columns(pl.any_horizontal([bad for bad, _ in checks]).alias(REASON))
    reason = pl.concat_str([pl.when(bad).then(msg) for bad, msg in checks], separator="; ", ignore_nulls=True)
    rejected = flagged.filter(pl.col(REASON)).select(layout.key, reason.alias(REASON))

    def c2(col: str) -> pl.Expr:
        return pl.col(_derived(col, _C2)) if col in layout.hla else pl.lit(None, pl.Int64)

    donor_oocytes = (
        (pl.col("oocytes") == "donor").fill_null(pl.col("oocyte_donor_hla_c").is_not_null())
        if ("oocyte_donor_hla_c" in layout.hla)
        else (pl.col("oocytes") == "donor").fill_null(False)
    )
    valid = flagged.filter(~pl.col(REASON)).with_columns(
        c2("woman_hla_c").alias("woman_c2_count"),
        pl.when(donor_oocytes).then(c2("oocyte_donor_hla_c")).alias("oocyte_donor_c2_count"),
        c2("partner_hla_c").alias("sperm_c2_count"),
        donor_oocytes.alias("oocytes_donor"),
    )
    return derive_lazy(valid, layout.key), rejected


def derive_lazy(frame: pl.LazyFrame, key: str = DEFAULT_KEY) -> pl.LazyFrame:
    """The key and every feature column, the derived ones (``DERIVED``, in order: one may read another)
    computed from the others by the expressions the one-patient engine evaluates
    (:func:`decidua.engines.extract.derive`)."""
    for level in _DERIVED_LEVELS:  # one projection per level, not per feature: Polars computes a level at once
        frame = frame.with_columns(to_polars(DERIVED[name]).alias(name) for name in level)
    return frame.select(key, *(f.name for f in FEATURES))


def _levels() -> tuple[tuple[str, ...], ...]:
    """``DERIVED`` grouped so that each group reads only input columns and the groups before it."""
    level_of: dict[str, int] = {}
    for name, expr in DERIVED.items():
        level_of[name] = max((level_of[c] + 1 for c in columns(expr) if c in level_of), default=0)
    depth = max(level_of.values(), default=-1) + 1
    return tuple(tuple(n for n, lv in level_of.items() if lv == d) for d in range(depth))


_DERIVED_LEVELS = _levels()


# The pathway values, as status columns like rpl and rif: flagged = yes (the work-up applies; the RPL is
# unexplained), within_range = no, not_assessed = cannot tell.
PATHWAY_COLUMNS = ("workup", "unexplained_rpl")


def output_columns(kb: KnowledgeBase) -> list[str]:
    """Names of the result columns after the key, in order."""
    return ["rpl", "rpl_losses_counted", "rif", *PATHWAY_COLUMNS, *(r.id for r in kb.active_rules)]


def assess_lazy(valid: pl.LazyFrame, kb: KnowledgeBase, key: str = DEFAULT_KEY) -> pl.LazyFrame:
    """Key, classification, pathway and one status column per active rule, for every valid row."""
    return valid.select(pl.col(key), *_result_columns(kb))


_RESULT_COLUMNS: dict[int, tuple[KnowledgeBase, tuple[pl.Expr, ...]]] = {}  # id(kb) -> (kb kept alive, columns)


def _result_columns(kb: KnowledgeBase) -> tuple[pl.Expr, ...]:
    """The result columns of a knowledge base, translated to Polars once (every chunk of a run reuses them)."""
    hit = _RESULT_COLUMNS.get(id(kb))
    if hit is not None and hit[0] is kb:
        return hit[1]
    rpl, rif = kb.selected["rpl_definition"], kb.selected["rif_definition"]
    statuses = {r.id: status_expr(to_polars(kb.compiled[r.id].flag)) for r in kb.active_rules}
    rpl_measure = kb.compiled[rpl].measure
    losses = to_polars(rpl_measure).cast(pl.Int64) if rpl_measure is not None else pl.lit(None, pl.Int64)
    result = (
        statuses[rpl].alias("rpl"),
        losses.alias("rpl_losses_counted"),
        statuses[rif].alias("rif"),
        *(status_expr(to_polars(kb.pathway[name])).alias(name) for name in PATHWAY_COLUMNS),
        *(expr.alias(rule_id) for rule_id, expr in statuses.items()),
    )
    if len(_RESULT_COLUMNS) >= 64:  # knowledge bases of a long-running process (overrides): keep a few
        _RESULT_COLUMNS.clear()
    _RESULT_COLUMNS[id(kb)] = (kb, result)
    return result


def summary(result: pl.DataFrame, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Counts of each status for every finding column (one pass over the result)."""
    names = ["rpl", "rif", *PATHWAY_COLUMNS, *(r.id for r in kb.active_rules)]
    counts = result.select(
        (pl.col(name) == status.value).sum().alias(f"{name}\x00{status.value}") for name in names for status in Status
    ).row(0)
    it = iter(counts)
    return [{"finding": name, **{s.value: int(next(it)) for s in Status}} for name in names]
