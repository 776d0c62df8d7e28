"""Assess a cohort in the flat feature layout, column-wise, with Polars.

The pipeline is lazy end to end: :func:`prepare` casts and checks the input columns and splits valid rows
from rejected ones (each with its reason), :func:`assess_lazy` adds one status column per active rule and the
classification. The rules are the knowledge base's compiled expressions translated by
:mod:`decidua.engines.columnar`, so every row gets exactly the one-patient result.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

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


def vocabulary(spec: FeatureSpec) -> dict[str, bool | str | None]:
    """The words a text cell of a boolean or categorical column may say (lower case) -> its value.

    Labs write "Normal", " abnormal" or "Yes"; these are read case- and space-insensitively with the words of
    every table decidua reads (:mod:`decidua.core.cells`): yes/no columns only unambiguous yes/no words, KIR gene
    columns also present/absent, P/A and the not-tested words (null).
    """
    if spec.name in KIR_COLUMNS:
        return dict(GENE_WORDS)  # present / absent / not tested, as a KIR sheet says them
    if spec.dtype == "bool":
        return dict(WORDS)  # yes / no only: "A" or "ND" on a lab sheet are not guessed
    return {c.lower(): c for c in spec.categories}


ValueMap = dict[str, bool | str | None]


def spellings(spec: FeatureSpec, values: Sequence[str]) -> ValueMap:
    """Each spelling in ``values`` (a text column's) that means something allowed -> its value, read as
    :mod:`decidua.core.cells` reads a cell (trimmed, lower case); spellings that mean nothing allowed are left
    out, so they are rejected with their row."""
    words = vocabulary(spec)
    return {raw: words[raw.strip().lower()] for raw in values if raw.strip().lower() in words}


def _is_text(spec: FeatureSpec, source: pl.DataType) -> bool:
    """A boolean or categorical column written as text: read through its vocabulary."""
    return spec.dtype in ("bool", "str") and source == pl.String


_NOT_TESTED = -1  # the code of a spelling that says "not tested" (a null value that is not an error)


class _Spellings:
    """How one text column's cells read (:func:`spellings`), learnt a morsel of the input at a time: every cell is
    cast to an Enum of the spellings met so far (the vocabulary's words in lower, upper and title case to begin
    with) and its meaning read back by position; the few spellings not met yet are read in Python and added. The
    meaning is the category for a categorical column, and for a yes/no column a code: 1 yes, 0 no, -1 not tested;
    null for a spelling that means nothing allowed (and for an empty cell)."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.dtype: pl.DataType = pl.Enum(spec.categories) if spec.dtype == "str" else pl.Int8()
        self.meaning: dict[str, Any] = {}
        self.lock = threading.Lock()
        words = vocabulary(spec)
        self._learn([v for w in words for v in (w, w.upper(), w.title())] + list(spec.categories))

    def _learn(self, values: Sequence[str]) -> None:
        known = spellings(self.spec, values)
        for raw in dict.fromkeys(values):
            if raw in known and self.spec.dtype == "bool":
                meant = known[raw]
                self.meaning[raw] = _NOT_TESTED if meant is None else int(bool(meant))
            else:
                self.meaning.setdefault(raw, known.get(raw))
        # replaced as one (read without the lock by other morsels): an Enum of the spellings, their meanings
        self.table = (pl.Enum(list(self.meaning)), pl.Series(list(self.meaning.values()), dtype=self.dtype))

    def __call__(self, cells: pl.Series) -> pl.Series:
        enum, values = self.table
        at = cells.cast(enum, strict=False)
        new = at.is_null() & cells.is_not_null()
        if new.any():
            with self.lock:
                self._learn([c for c in cells.filter(new).unique().to_list() if c not in self.meaning])
                enum, values = self.table
            at = cells.cast(enum, strict=False)
        return values.gather(at.to_physical())


def _typed(spec: FeatureSpec, col: pl.Expr, source: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """(the column's value in the feature layout, is the raw value bad? - ``None`` when it cannot be) for one input
    column of type ``source``.

    A value present but not of the column's type, vocabulary or range is bad, except a spelling that says "not
    tested".
    """
    target = INPUT_SCHEMA[spec.name]
    if _is_text(spec, source):
        read = _Spellings(spec)
        meant = col.map_batches(read, read.dtype, is_elementwise=True)
        if spec.dtype == "str":
            return meant, col.is_not_null() & meant.is_null()
        return pl.when(meant >= 0).then(meant == 1), col.is_not_null() & meant.is_null()
    if spec.dtype == "str":
        value = col.cast(pl.String).cast(pl.Enum(spec.categories), strict=False)
    else:
        if source == pl.String:
            col = col.str.strip_chars()
        if spec.dtype == "int" and source in (pl.Float32, pl.Float64):
            # a whole-number float (Excel, pandas) is accepted; 2.5 pregnancies is not
            value = pl.when(col == col.round(0)).then(col).otherwise(None).cast(target, strict=False)
        else:
            value = col.cast(target, strict=False)
    # present but not of the column's type (cannot happen when it is of the type already), or out of range
    bad = None if source == target else col.is_not_null() & value.is_null()
    if spec.dtype not in ("bool", "str") and spec.low is not None and spec.high is not None:
        out = (~value.is_between(spec.low, spec.high)).fill_null(False)
        bad = out if bad is None else bad | out
    return value, bad


def _message(spec: FeatureSpec, raw: pl.Expr) -> pl.Expr:
    """Why a bad value of one feature column is refused, naming the value."""
    if spec.name in KIR_COLUMNS:
        allowed = GENE_CELL_HELP_SHORT
    elif spec.dtype == "bool":
        allowed = CELL_HELP_SHORT
    elif spec.dtype == "str":
        allowed = "one of " + ", ".join(spec.categories)
    else:
        allowed = f"{'an integer' if spec.dtype == 'int' else 'a number'} from {spec.low:g} to {spec.high:g}"
    return pl.format(f"{spec.name}: got '{{}}'; allowed: {allowed}", raw.cast(pl.String).fill_null(""))


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
_CACHE = 1 << 16  # distinct alleles, typings and KIR patterns remembered within a process


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


def hla_table(typings: pl.Series) -> pl.DataFrame:
    """Each of the distinct HLA-C ``typings`` (text, no nulls) with its C2 count and error message (null when it
    is fine), in the order given.

    Plain genotypes (``A+B``) are split and each distinct side interpreted once (and remembered within the
    process); the C2 count of a genotype is the sum of its sides', and its error the errors of its sides.
    """
    frame = typings.to_frame(_TYPING).with_row_index("__order")
    simple = frame.filter(pl.col(_TYPING).str.contains(_SIMPLE_GENOTYPE))
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
        "__order", _TYPING, (c2("a") + c2("b")).alias(_C2), pl.when(both != "").then(both).alias(_ERROR)
    )
    whole = frame.filter(~pl.col(_TYPING).str.contains(_SIMPLE_GENOTYPE))
    resolved_whole = pl.DataFrame(
        [(i, text, *_whole(text)) for i, text in whole.iter_rows()],
        schema={"__order": pl.UInt32, _TYPING: pl.String, _C2: pl.Int64, _ERROR: pl.String},
        orient="row",
    )
    return pl.concat([resolved_sides, resolved_whole]).sort("__order").drop("__order")


def _derived(col: str, kind: str) -> str:
    return f"__{kind}_{col}"


_KIR_CODE = "__kir_code"
_UNTESTED = 2  # a locus' digit in the KIR pattern code: 0 absent, 1 present, 2 not tested
_UNTYPED = sum(_UNTESTED * 3**i for i in range(len(KIR_COLUMNS)))


def _kir_code(present: Sequence[str], typed: dict[str, pl.Expr]) -> pl.Expr:
    """One integer per row encoding its KIR loci (base 3), so each distinct pattern is classified once."""
    digits = [
        (typed[name].cast(pl.Int64).fill_null(_UNTESTED) if name in present else pl.lit(_UNTESTED, pl.Int64)) * 3**i
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


_KIR_DTYPE = pl.Struct({n: FEATURE_SCHEMA[n] for n in KIR_FEATURES})


def kir_table(codes: pl.Series) -> pl.DataFrame:
    """The KIR feature columns of each of the distinct pattern ``codes``, in the order given."""
    schema = {_KIR_CODE: pl.Int64, **{n: FEATURE_SCHEMA[n] for n in KIR_FEATURES}}
    return pl.DataFrame([(code, *_kir_pattern(code)) for code in codes.to_list()], schema=schema, orient="row")


class _KirPatterns:
    """Every KIR pattern code met in this process with its features (a struct), in a table that only grows: the
    streaming engine hands each morsel of the input to :meth:`__call__`, which classifies the patterns it has not
    met yet (a few hundred in a cohort) and reads every row's features back by position."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.table = kir_table(pl.Series([], dtype=pl.Int64)).drop(_KIR_CODE).to_struct("kir")
        self.lock = threading.Lock()

    def __call__(self, codes: pl.Series) -> pl.Series:
        distinct = codes.unique()
        values = distinct.to_list()
        with self.lock:
            new = [c for c in dict.fromkeys(values) if c not in self.index]
            if new:
                for code in new:
                    self.index[code] = len(self.index)
                rows = kir_table(pl.Series(new, dtype=pl.Int64)).drop(_KIR_CODE).to_struct("kir")
                self.table = pl.concat([self.table, rows], rechunk=len(self.index) < 4096)
            table, positions = self.table, [self.index[c] for c in values]
        return table.gather(codes.replace_strict(distinct, pl.Series(positions, dtype=pl.UInt32)))


_kir_lookup = _KirPatterns()


def first_look(frame: pl.LazyFrame, layout: Layout) -> pl.DataFrame:
    """The input's distinct HLA-C typings (only those columns are read), each interpreted once: :func:`hla_table`
    (its order is that of the Enum the typings are cast to, so that a row's result is read by position)."""
    distinct = [frame.select(pl.col(c).cast(pl.String)).unique() for c in layout.hla]
    found = pl.collect_all(distinct, engine="streaming") if distinct else []
    typings = pl.concat([f.to_series().rename(_TYPING) for f in found]) if found else pl.Series([], dtype=pl.String)
    return hla_table(typings.drop_nulls().unique(maintain_order=True))


OnRejected = Callable[[int], None]


@overload
def prepare(
    frame: pl.DataFrame | pl.LazyFrame, layout: Layout, typings: pl.DataFrame | None = None, on_rejected: None = None
) -> tuple[pl.LazyFrame, pl.LazyFrame]: ...


@overload
def prepare(
    frame: pl.DataFrame | pl.LazyFrame, layout: Layout, typings: pl.DataFrame | None, on_rejected: OnRejected
) -> tuple[pl.LazyFrame, None]: ...


def prepare(
    frame: pl.DataFrame | pl.LazyFrame,
    layout: Layout,
    typings: pl.DataFrame | None = None,
    on_rejected: OnRejected | None = None,
) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    """Cast the input, check it, derive the genotype features, and split (valid rows, rejected rows with reason).

    One lazy query, streamable, with no per-row Python: categorical columns become Enums of their allowed values,
    and the distinct spellings of text columns, HLA-C typings (``typings``; by default :func:`first_look`, a look
    at those columns alone) and KIR patterns are each interpreted once and read back by position. Reasons are
    formatted only for the rejected rows.

    With ``on_rejected``, the rejected rows are not a query of their own: the valid rows' query tells
    ``on_rejected`` how many it meets, a morsel at a time, and the second item returned is ``None``. A run then
    reads the input once when no row is rejected, and prepares it again for the rejected rows' reasons only when
    there are some (two queries sharing one read cost more: the shared part of the query is held for both).
    """
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    typings = first_look(lazy, layout) if typings is None else typings
    raw = lazy.select(
        pl.col(layout.key).cast(pl.String),
        *(pl.col(n).alias(_raw(n)) for n in layout.present),
        *(pl.col(n).cast(pl.String) for n in layout.hla),
    )
    columns = {n: _typed(INPUT_INDEX[n], pl.col(_raw(n)), schema[n]) for n in layout.present}
    kir = [n for n in layout.present if n in KIR_COLUMNS]
    c2s, errors = typings.get_column(_C2), typings.get_column(_ERROR)
    wrong = errors.is_not_null()
    typings_enum = pl.Enum(typings.get_column(_TYPING))
    typed = raw.with_columns(
        *(value.alias(n) for n, (value, _) in columns.items()),
        *(pl.lit(None, INPUT_SCHEMA[n]).alias(n) for n in layout.absent),
        # each typing's place in the table of distinct typings: its C2 count and error are read from there
        *(pl.col(col).cast(typings_enum).to_physical().alias(_derived(col, _TYPING)) for col in layout.hla),
    ).with_columns(
        *(pl.lit(c2s).gather(pl.col(_derived(col, _TYPING))).alias(_derived(col, _C2)) for col in layout.hla),
        *(pl.lit(wrong).gather(pl.col(_derived(col, _TYPING))).alias(_derived(col, _ERROR)) for col in layout.hla),
    )
    if kir:
        code = _kir_code(kir, {n: pl.col(n) for n in kir})
        features = code.map_batches(_kir_lookup, _KIR_DTYPE, is_elementwise=True).struct.unnest()
    else:  # an untyped cohort: every feature null
        features = pl.lit(None, _KIR_DTYPE).struct.unnest()
    typed = typed.with_columns(features)
    checks = [(bad, _message(INPUT_INDEX[n], pl.col(_raw(n)))) for n, (_, bad) in columns.items() if bad is not None]
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
        error = pl.lit(errors).gather(pl.col(_derived(col, _TYPING)))  # formatted for the rejected rows only
        checks.append(
            (pl.col(_derived(col, _ERROR)).fill_null(False), pl.format(f"{col}: got '{{}}'; {{}}", pl.col(col), error))
        )
    checks.append((pl.col(layout.key).is_null(), pl.lit(f"{layout.key}: missing key")))
    flagged = typed.with_columns(pl.any_horizontal([bad for bad, _ in checks]).alias(REASON))
    reason = pl.concat_str([pl.when(bad).then(msg) for bad, msg in checks], separator="; ", ignore_nulls=True)
    if on_rejected is None:
        rejected: pl.LazyFrame | None = flagged.filter(pl.col(REASON)).select(layout.key, reason.alias(REASON))
        keep = ~pl.col(REASON)
    else:
        rejected = None

        def tee(bad: pl.Series) -> pl.Series:
            count = int(bad.sum())
            if count:
                on_rejected(count)
            return ~bad

        keep = pl.col(REASON).map_batches(tee, pl.Boolean, is_elementwise=True)

    def c2(col: str) -> pl.Expr:
        return pl.col(_derived(col, _C2)) if col in layout.hla else pl.lit(None, pl.Int64)

    donor_oocytes = (
        (pl.col("oocytes") == "donor").fill_null(pl.col("oocyte_donor_hla_c").is_not_null())
        if ("oocyte_donor_hla_c" in layout.hla)
        else (pl.col("oocytes") == "donor").fill_null(False)
    )
    valid = flagged.filter(keep).with_columns(
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


def _finding_columns(kb: KnowledgeBase) -> list[str]:
    return ["rpl", "rif", *PATHWAY_COLUMNS, *(r.id for r in kb.active_rules)]


def counts_lazy(result: pl.LazyFrame, kb: KnowledgeBase) -> pl.LazyFrame:
    """One row: the count of each status in every finding column of ``result`` (one streaming pass)."""
    return result.select(
        (pl.col(name) == status.value).sum().alias(f"{name}\x00{status.value}")
        for name in _finding_columns(kb)
        for status in Status
    )


def summary_of(counts: pl.DataFrame, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The rows of :func:`counts_lazy`'s answer, one per finding: ``{"finding": name, status: count, ...}``."""
    it = iter(counts.row(0))
    return [{"finding": name, **{s.value: int(next(it)) for s in Status}} for name in _finding_columns(kb)]


def summary(result: pl.DataFrame, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Counts of each status for every finding column (one pass over the result)."""
    return summary_of(counts_lazy(result.lazy(), kb).collect(), kb)
