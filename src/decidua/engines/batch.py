"""Assess a cohort in the flat feature layout, column-wise, with Polars.

The pipeline is lazy end to end: :func:`prepare` casts and checks the input columns and splits valid rows
from rejected ones (each with its reason), :func:`assess_lazy` adds one status column per active rule and the
classification. The rules are the knowledge base's compiled expressions translated by
:mod:`decidua.engines.columnar`, so every row gets exactly the one-patient result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from decidua.core.case import Case
from decidua.core.errors import InputError
from decidua.core.expr import Scalar
from decidua.core.features import DERIVED, FEATURES, FeatureSpec
from decidua.core.findings import Status
from decidua.engines.columnar import FEATURE_SCHEMA, to_polars
from decidua.engines.features import KIR_FEATURES, extract, gamete_sources, kir_features
from decidua.immunogenetics.compatibility import CLigand, c2_count, c_ligand, resolve_hla_c
from decidua.immunogenetics.kir import LOCI, KirGene, calls_from_lists, calls_from_typing, classify
from decidua.immunogenetics.ligands import genotype_side
from decidua.knowledge.loader import KnowledgeBase

DEFAULT_KEY = "case_id"
REASON = "reason"
STATUS_DTYPE = pl.Enum([s.value for s in Status])

# Cross-column consistency of a row (each: a condition that must hold, and what it means).
CONSISTENCY: tuple[tuple[str, str, str], ...] = (
    ("n_transfers_failed", "n_transfers", "n_transfers_failed must not exceed n_transfers"),
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
_GENOTYPE_FEATURES = frozenset({*KIR_FEATURES, "woman_c2_count", "oocyte_c2_count", "sperm_c2_count", *DERIVED})
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


_WORDS: dict[str, bool] = {
    **dict.fromkeys(("true", "t", "yes", "y", "1", "positive", "pos", "+"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0", "negative", "neg", "-"), False),
}
ValueMap = dict[str, bool | str]


def value_maps(frame: pl.DataFrame, layout: Layout) -> dict[str, ValueMap]:
    """For text cells of boolean and categorical columns: each distinct spelling -> its value.

    Labs write "Normal", " abnormal" or "Yes"; these are read case- and space-insensitively. Working on the
    distinct values (a handful per column) instead of every cell keeps the cost per row to one hash lookup.
    Spellings that mean nothing allowed are left out, so they are rejected with their row.
    """
    text = [n for n in layout.present if INPUT_INDEX[n].dtype in ("bool", "str") and frame.schema[n] == pl.String]
    distinct = frame.select(pl.col(n).unique().drop_nulls().implode() for n in text).row(0) if text else ()
    maps: dict[str, ValueMap] = {}
    for name, values in zip(text, distinct, strict=True):
        spec = INPUT_INDEX[name]
        vocabulary: dict[str, bool | str] = (
            dict(_WORDS) if spec.dtype == "bool" else {c.lower(): c for c in spec.categories}
        )
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


def _check(spec: FeatureSpec, raw: pl.Expr, value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(is this column's value bad?, the message saying why) for one feature column."""
    if spec.dtype == "bool":
        allowed = "true/false (also yes/no, 1/0, positive/negative)"
    elif spec.dtype == "str":
        allowed = "one of " + ", ".join(spec.categories)
    else:
        allowed = f"{'an integer' if spec.dtype == 'int' else 'a number'} from {spec.low:g} to {spec.high:g}"
    bad = raw.is_not_null() & value.is_null()  # present but not of the column's type or vocabulary
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
# cost one lookup per distinct allele (list). Anything else (genotype lists, namespaces) is resolved whole.
_SIMPLE_GENOTYPE = r"^[^|^~+#]+\+[^|^~+#]+$"


@dataclass(frozen=True, slots=True)
class _HlaLookup:
    side_c2: dict[str, int | None]
    side_error: dict[str, str]
    whole_c2: dict[str, int | None]
    whole_error: dict[str, str]


def _side_c2(call_ligand: CLigand | None) -> int | None:
    return None if call_ligand is None else int(call_ligand is CLigand.C2)


def _hla_lookup(frame: pl.DataFrame, layout: Layout) -> _HlaLookup:
    """Each distinct genotype side (or whole non-simple typing) of the input, interpreted once."""
    side_c2: dict[str, int | None] = {}
    side_error: dict[str, str] = {}
    whole_c2: dict[str, int | None] = {}
    whole_error: dict[str, str] = {}
    if layout.hla:
        texts = pl.concat([frame.get_column(c).cast(pl.String).drop_nulls() for c in layout.hla]).unique().to_frame("t")
        simple = texts.filter(pl.col("t").str.contains(_SIMPLE_GENOTYPE))
        sides = simple.select(pl.col("t").str.split("+").explode().str.strip_chars()).unique().get_column("t")
        for side in sides.to_list():
            try:
                side_c2[side] = _side_c2(c_ligand(genotype_side(side)))
            except InputError as exc:
                side_error[side] = str(exc)
        for text in texts.filter(~pl.col("t").str.contains(_SIMPLE_GENOTYPE)).get_column("t").to_list():
            try:
                resolved = resolve_hla_c(text)
            except InputError as exc:
                whole_error[text] = str(exc)
                continue
            whole_c2[text] = None if resolved.genotype is None else c2_count(resolved.genotype)
    return _HlaLookup(side_c2, side_error, whole_c2, whole_error)


def _hla_exprs(col: str, lookup: _HlaLookup) -> tuple[pl.Expr, pl.Expr]:
    """(C2 count, error message) of an HLA-C column, row by row."""
    text = pl.col(col)
    simple = text.str.contains(_SIMPLE_GENOTYPE)
    parts = text.str.split_exact("+", 1)
    a, b = (parts.struct.field(f).str.strip_chars() for f in ("field_0", "field_1"))

    def side(expr: pl.Expr, mapping: dict[str, int | None] | dict[str, str], dtype: Any) -> pl.Expr:
        return expr.replace_strict(mapping, default=None, return_dtype=dtype)

    c2 = (
        pl.when(simple)
        .then(side(a, lookup.side_c2, pl.Int64) + side(b, lookup.side_c2, pl.Int64))
        .otherwise(side(text, lookup.whole_c2, pl.Int64))
    )
    error = (
        pl.when(simple)
        .then(
            pl.concat_str(
                [side(a, lookup.side_error, pl.String), side(b, lookup.side_error, pl.String)],
                separator="; ",
                ignore_nulls=True,
            )
        )
        .otherwise(side(text, lookup.whole_error, pl.String))
    )
    return c2, pl.when(error != "").then(error)


_KIR_CODE = "__kir_code"
_UNTESTED = 2  # a locus' digit in the KIR pattern code: 0 absent, 1 present, 2 not tested


def _kir_code(layout: Layout) -> pl.Expr:
    """One integer per row encoding its KIR loci (base 3), so each distinct pattern is classified once."""
    digits = [
        (pl.col(name).cast(pl.Int64).fill_null(_UNTESTED) if name in layout.present else pl.lit(_UNTESTED, pl.Int64))
        * 3**i
        for i, name in enumerate(KIR_COLUMNS)
    ]
    return pl.sum_horizontal(digits).alias(_KIR_CODE)


def _kir_lookup(codes: pl.Series) -> pl.DataFrame:
    """The KIR feature columns of each distinct pattern code (all null for an untyped woman)."""
    untyped = sum(_UNTESTED * 3**i for i in range(len(KIR_COLUMNS)))
    rows = []
    for code in codes.unique().to_list():
        calls: dict[int, list[str]] = {0: [], 1: [], 2: []}
        rest = code
        for gene in KIR_COLUMNS.values():
            calls[rest % 3].append(gene.value)
            rest //= 3
        profile = None if code == untyped else classify(calls_from_lists(calls[1], calls[0], calls[2]))
        rows.append({_KIR_CODE: code, **kir_features(profile)})
    schema = {_KIR_CODE: pl.Int64, **{n: FEATURE_SCHEMA[n] for n in KIR_FEATURES}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def prepare(frame: pl.DataFrame, layout: Layout) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Cast the input, check it, derive the genotype features, and split (valid rows, rejected rows with reason).

    Categorical columns become Enums of their allowed values. Distinct text values, HLA-C typings and KIR
    patterns are each interpreted once. Reasons are formatted only for the rejected rows.
    """
    schema = frame.schema
    maps = value_maps(frame, layout)
    lookup = _hla_lookup(frame, layout)
    hla = {col: _hla_exprs(col, lookup) for col in layout.hla}
    raw = frame.lazy().select(
        pl.col(layout.key).cast(pl.String),
        *(pl.col(n).alias(_raw(n)) for n in layout.present),
        *(pl.col(n).cast(pl.String) for n in layout.hla),
    )
    typed = raw.with_columns(
        *(_cast(INPUT_INDEX[n], pl.col(_raw(n)), schema[n], maps.get(n)).alias(n) for n in layout.present),
        *(pl.lit(None, INPUT_SCHEMA[n]).alias(n) for n in layout.absent),
    )
    checks = [_check(INPUT_INDEX[n], pl.col(_raw(n)), pl.col(n)) for n in layout.present]
    checks += [
        ((pl.col(a) > pl.col(b)).fill_null(False), pl.lit(msg))
        for a, b, msg in CONSISTENCY
        if a in layout.present and b in layout.present
    ]
    for col, (_, error) in hla.items():
        checks.append((error.is_not_null(), pl.format(f"{col}: got '{{}}'; {{}}", pl.col(col), error)))
    checks.append((pl.col(layout.key).is_null(), pl.lit(f"{layout.key}: missing key")))
    flagged = typed.with_columns(pl.any_horizontal([bad for bad, _ in checks]).alias(REASON))
    kir_typed = [
        _cast(INPUT_INDEX[n], pl.col(n), schema[n], maps.get(n)).alias(n) for n in layout.present if n in KIR_COLUMNS
    ]
    kir_codes = frame.select(*kir_typed).select(_kir_code(layout)).get_column(_KIR_CODE)
    reason = pl.concat_str([pl.when(bad).then(msg) for bad, msg in checks], separator="; ", ignore_nulls=True)
    rejected = flagged.filter(pl.col(REASON)).select(layout.key, reason.alias(REASON))

    def c2(col: str) -> pl.Expr:
        if col not in layout.hla:
            return pl.lit(None, pl.Int64)
        return hla[col][0]

    donor_oocytes = (
        (pl.col("oocytes") == "donor").fill_null(pl.col("oocyte_donor_hla_c").is_not_null())
        if ("oocyte_donor_hla_c" in layout.hla)
        else (pl.col("oocytes") == "donor").fill_null(False)
    )
    valid = (
        flagged.filter(~pl.col(REASON))
        .with_columns(_kir_code(layout))
        .join(_kir_lookup(kir_codes).lazy(), on=_KIR_CODE, how="left", maintain_order="left")
        .with_columns(
            c2("woman_hla_c").alias("woman_c2_count"),
            pl.when(donor_oocytes).then(c2("oocyte_donor_hla_c")).otherwise(c2("woman_hla_c")).alias("oocyte_c2_count"),
            c2("partner_hla_c").alias("sperm_c2_count"),
        )
        .with_columns(to_polars(expr).alias(name) for name, expr in DERIVED.items())
        .select(layout.key, *(f.name for f in FEATURES))
    )
    return valid, rejected


def _status(flag: pl.Expr) -> pl.Expr:
    def lit(status: Status) -> pl.Expr:
        return pl.lit(status.value, STATUS_DTYPE)

    return (
        pl.when(flag.is_null())
        .then(lit(Status.NOT_ASSESSED))
        .when(flag)
        .then(lit(Status.FLAGGED))
        .otherwise(lit(Status.WITHIN_RANGE))
    )


def output_columns(kb: KnowledgeBase) -> list[str]:
    """Names of the result columns after the key, in order."""
    return ["rpl", "rpl_losses_counted", "rif", *(r.id for r in kb.active_rules)]


def assess_lazy(valid: pl.LazyFrame, kb: KnowledgeBase, key: str = DEFAULT_KEY) -> pl.LazyFrame:
    """Key, classification and one status column per active rule, for every valid row."""
    rpl, rif = kb.selected["rpl_definition"], kb.selected["rif_definition"]
    statuses = {r.id: _status(to_polars(kb.compiled[r.id].flag)) for r in kb.active_rules}
    rpl_measure = kb.compiled[rpl].measure
    losses = to_polars(rpl_measure).cast(pl.Int64) if rpl_measure is not None else pl.lit(None, pl.Int64)
    return valid.select(
        pl.col(key),
        statuses[rpl].alias("rpl"),
        losses.alias("rpl_losses_counted"),
        statuses[rif].alias("rif"),
        *(expr.alias(rule_id) for rule_id, expr in statuses.items()),
    )


def summary(result: pl.DataFrame, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Counts of each status for every finding column."""
    out = []
    for name in ["rpl", "rif", *(r.id for r in kb.active_rules)]:
        counts = dict(result[name].value_counts().iter_rows())
        out.append({"finding": name, **{s.value: int(counts.get(s.value, 0)) for s in Status}})
    return out
