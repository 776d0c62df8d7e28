"""Benchmark ``decidua batch`` end to end, Parquet to Parquet, against two floors measured in the same run.

    python benchmarks/batch.py --rows 10000000

Generates a synthetic cohort in the flat layout (ages, losses, transfers, investigations with gaps, peripheral
and uterine NK values, KIR genes for 60 % of women, HLA-C genotypes of real alleles) and writes it to Parquet in
a process of its own. Then, ``--repeat`` times (3), alternated so that the machine's load touches each alike, it
runs as processes of their own (interpreter start-up included; CPU seconds = user + system and peak RSS read with
``wait4`` for that process alone):

* ``decidua``: ``decidua batch COHORT -o RESULT`` (the local engine);
* ``polars``: the floor, a hand-written Polars lazy query producing the same two files (results and rejects)
  from the same input: the checks this cohort needs written out (ranges, categories, HLA-C alleles), categorical
  columns cast to Enums, HLA-C genotypes split and their distinct alleles mapped to C2 counts by a dictionary,
  each distinct KIR pattern classified once and mapped back by its code, and the rules, taken as the knowledge
  base's expressions translated to Polars (writing them out by hand would give the same expressions, and go
  stale with each change of the knowledge base). Its output is checked to equal decidua's;
* ``io``: reading the input (every column) and writing the output (decidua's results and rejects, read back and
  written again with the same settings): what moving the same data costs, with no work on it.

``ratio_vs_polars`` is decidua's CPU seconds over the Polars floor's, ``ratio_vs_io`` over the I/O floor's
(medians of the runs; the targets: at most 1.3 and 1.5). With ``--dask`` the Dask engine (a local cluster of two
workers) runs on the same file as many times, and its outputs are checked to equal the local engine's. The
one-patient engine is timed over a sample of the same rows. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from decidua.immunogenetics.ligands import ligand_table


def synthetic_cohort(rows: int, seed: int = 7) -> pl.DataFrame:
    """A cohort shaped like a fertility clinic's: most values present, a realistic share missing."""
    rng = np.random.default_rng(seed)

    def maybe(values: np.ndarray, missing: float) -> pl.Series:
        mask = rng.random(rows) < missing
        return pl.select(pl.when(pl.Series(mask)).then(None).otherwise(pl.Series(values))).to_series()

    def choice(options: list[str], p: list[float], missing: float) -> pl.Series:
        return maybe(rng.choice(np.array(options, dtype=object), rows, p=p), missing).cast(pl.String)

    def flag(p_true: float, missing: float) -> pl.Series:
        return maybe(rng.random(rows) < p_true, missing)

    # KIR gene carrier frequencies of the order seen in European populations (for load, not for inference):
    kir_freq = {
        "2dl1": 0.96, "2dl2": 0.5, "2dl3": 0.9, "2dl4": 1.0, "2dl5": 0.5, "2ds1": 0.37, "2ds2": 0.5, "2ds3": 0.3,
        "2ds4": 0.95, "2ds5": 0.33, "3dl1": 0.95, "3dl2": 1.0, "3dl3": 1.0, "3ds1": 0.37, "2dp1": 0.97, "3dp1": 1.0,
    }  # fmt: skip
    typed = rng.random(rows) < 0.6  # 60 % of women KIR-typed
    kir = {
        f"kir_{g}": pl.select(pl.when(pl.Series(typed)).then(pl.Series(rng.random(rows) < f))).to_series()
        for g, f in kir_freq.items()
    }
    # HLA-C typings from the real allele names of the shipped table, with a skewed (Zipf-like) spread
    c_alleles = sorted(
        {
            ":".join(n.split(":")[:2])
            for n, row in ligand_table().rows.items()
            if n.startswith("C*") and row[0] == "allele" and not n.endswith("N")
        }
    )
    weights = 1 / np.arange(1, len(c_alleles) + 1) ** 1.2
    weights /= weights.sum()

    def hla(missing: float) -> pl.Series:
        a = rng.choice(np.array(c_alleles, dtype=object), rows, p=weights)
        b = rng.choice(np.array(c_alleles, dtype=object), rows, p=weights)
        return maybe(np.char.add(np.char.add(a.astype(str), "+"), b.astype(str)), missing)

    age = np.clip(rng.normal(36, 4.5, rows).round(), 18, 50).astype(np.int64)
    miscarriages = rng.poisson(1.6, rows)
    transfers = rng.poisson(1.2, rows)
    failed = np.minimum(transfers, rng.binomial(transfers, 0.7))
    return pl.DataFrame(
        {
            "case_id": pl.Series(np.arange(rows)).cast(pl.String),
            "age_years": maybe(age, 0.02),
            "cond_sle": flag(0.01, 0.2),
            "cond_rheumatoid_arthritis": flag(0.01, 0.2),
            "cond_vasculitis": flag(0.005, 0.2),
            "cond_antiphospholipid_syndrome": flag(0.02, 0.2),
            "cond_thyroid_autoimmunity": flag(0.08, 0.2),
            "n_biochemical_losses": maybe(rng.poisson(0.6, rows), 0.05),
            "n_miscarriages": maybe(miscarriages, 0.05),
            "n_ectopic": maybe(rng.poisson(0.05, rows), 0.05),
            "n_molar": maybe(rng.poisson(0.01, rows), 0.05),
            "n_live_births": maybe(rng.poisson(0.4, rows), 0.05),
            "n_transfers": maybe(transfers, 0.3),
            "n_transfers_failed": maybe(failed, 0.3),
            "n_embryos_failed": maybe(failed * rng.integers(1, 3, rows), 0.3),
            "karyotype_woman": choice(["normal", "abnormal"], [0.97, 0.03], 0.4),
            "karyotype_partner": choice(["normal", "abnormal"], [0.97, 0.03], 0.45),
            "uterine_anatomy": choice(["normal", "congenital_anomaly", "acquired_lesion"], [0.85, 0.07, 0.08], 0.3),
            "apl_lupus_anticoagulant": flag(0.04, 0.3),
            "apl_anticardiolipin_igg": flag(0.03, 0.3),
            "apl_anticardiolipin_igm": flag(0.03, 0.3),
            "apl_anti_b2gpi_igg": flag(0.02, 0.35),
            "apl_anti_b2gpi_igm": flag(0.02, 0.35),
            "thyroid_tsh": choice(["normal", "abnormal"], [0.9, 0.1], 0.25),
            "thyroid_tpo_positive": flag(0.12, 0.25),
            "pb_nk_percent": maybe(np.clip(rng.lognormal(2.65, 0.4, rows), 1, 60).round(1), 0.3),
            "unk_per_100_stromal": maybe(np.clip(rng.lognormal(1.0, 0.5, rows), 0.1, 30).round(2), 0.8),
            "unk_lh_day": maybe(rng.integers(6, 10, rows), 0.8),
            **kir,
            "woman_hla_c": hla(0.5),
            "partner_hla_c": hla(0.6),
        }
    )


def floor_query(src: Path, results: Path, rejects: Path) -> None:
    """The Polars floor: one hand-written lazy query for this cohort (Parquet, typed columns, plain two-allele
    HLA-C genotypes), streamed from ``src`` into ``results`` and ``rejects``."""
    from decidua.core.features import FEATURES
    from decidua.engines.batch import INPUT_SCHEMA, KIR_COLUMNS, _kir_pattern, _side, assess_lazy, derive_lazy
    from decidua.engines.columnar import FEATURE_SCHEMA
    from decidua.engines.extract import KIR_FEATURES
    from decidua.knowledge.loader import load_kb

    kb = load_kb()
    lf = pl.scan_parquet(src)
    names = lf.collect_schema().names()
    specs = {f.name: f for f in FEATURES if f.name in names}
    hla = [c for c in ("woman_hla_c", "partner_hla_c") if c in names]
    kir = [c for c in KIR_COLUMNS if c in names]
    code = pl.sum_horizontal(pl.col(c).cast(pl.Int64).fill_null(2) * 3**i for i, c in enumerate(kir))

    # the distinct KIR patterns and HLA-C typings, each interpreted once by decidua's functions (a typing by its
    # two alleles), then read back by position: a typing cast to an Enum of the distinct typings
    found = pl.collect_all(
        [lf.select(code.alias("code")).unique(), *(lf.select(c).unique() for c in hla)], engine="streaming"
    )
    codes = found[0].to_series().to_list()
    distinct = pl.concat([f.to_series().rename("t") for f in found[1:]]).drop_nulls().unique().to_list()
    patterns = [_kir_pattern(c) for c in codes]
    sides = (
        pl.Series(distinct, dtype=pl.String).str.split_exact("+", 1).struct.unnest().select(pl.all().str.strip_chars())
    )
    alleles = pl.concat([sides.get_column("field_0"), sides.get_column("field_1")]).unique().to_list()
    ligands = {a: _side(a) for a in alleles}
    allele_c2 = {a: c for a, (c, _) in ligands.items()}
    unknown_alleles = [a for a, (_, error) in ligands.items() if error is not None]
    resolved = sides.select(
        sum(pl.col(f).replace_strict(allele_c2, return_dtype=pl.Int64) for f in ("field_0", "field_1")).alias("c2"),
        pl.any_horizontal(pl.col(f).is_in(unknown_alleles) for f in ("field_0", "field_1")).alias("unknown"),
    )
    typing = pl.Enum(distinct)
    c2, unknown = resolved.get_column("c2"), resolved.get_column("unknown")
    pattern = code.replace_strict(codes, list(range(len(codes))), return_dtype=pl.UInt32)

    categorical = [n for n, s in specs.items() if s.dtype == "str"]
    numbers = [n for n, s in specs.items() if s.dtype in ("int", "float")]
    typed = lf.with_columns(
        *(pl.col(n).cast(pl.Enum(specs[n].categories), strict=False).alias(f"{n}_enum") for n in categorical),
        pattern.alias("pattern"),
        *(pl.col(c).cast(typing).to_physical().alias(f"{c}_at") for c in hla),
    ).with_columns(
        *(
            pl.lit(pl.Series(p, dtype=FEATURE_SCHEMA[f])).gather(pl.col("pattern")).alias(f)
            for f, p in _columns(KIR_FEATURES, patterns)
        ),
        *(pl.lit(c2).gather(pl.col(f"{c}_at")).alias(f"{c}_c2") for c in hla),
    )
    bad = [(pl.col(f"{n}_enum").is_null() & pl.col(n).is_not_null()) for n in categorical]
    bad += [~pl.col(n).is_between(specs[n].low, specs[n].high) for n in numbers]
    bad += [pl.lit(unknown).gather(pl.col(f"{c}_at")) for c in hla]
    checked = typed.with_columns(pl.any_horizontal(b.fill_null(False) for b in bad).alias("bad"))
    missing = [n for n in INPUT_SCHEMA if n not in names and n not in KIR_COLUMNS]
    # one pass writes the results and counts the rejected rows as it goes (a second query sharing the scan would
    # hold the shared part for both: slower); the rejected rows are read again only when there are some
    bad_rows = [0]

    def count(bad: pl.Series) -> pl.Series:
        bad_rows[0] += int(bad.sum())
        return ~bad

    valid = checked.filter(pl.col("bad").map_batches(count, pl.Boolean, is_elementwise=True)).with_columns(
        *(pl.col(f"{n}_enum").alias(n) for n in categorical),
        *(pl.lit(None, INPUT_SCHEMA[n]).alias(n) for n in missing),
        pl.col("woman_hla_c_c2").alias("woman_c2_count"),
        pl.lit(None, pl.Int64).alias("oocyte_donor_c2_count"),
        pl.col("partner_hla_c_c2").alias("sperm_c2_count"),
        pl.lit(False).alias("oocytes_donor"),
    )
    with pl.Config(streaming_chunk_size=75_000):  # as decidua batch runs it
        assess_lazy(derive_lazy(valid), kb).sink_parquet(results, engine="streaming")
    rejected = checked.filter(pl.col("bad")).select("case_id", pl.lit("invalid").alias("reason"))
    (rejected if bad_rows[0] else rejected.head(0)).sink_parquet(rejects, engine="streaming")


def _columns(features: tuple[str, ...], patterns: list[tuple[object, ...]]) -> list[tuple[str, list[object]]]:
    return [(f, [p[i] for p in patterns]) for i, f in enumerate(features)]


def io_floor(src: Path, results: Path, rejects: Path, out: Path) -> None:
    """The I/O floor: read every column of ``src``; write ``results`` and ``rejects`` again as ``out`` and its
    rejects file (read back first: a small part of the cost)."""
    pl.scan_parquet(src).collect(engine="streaming")
    pl.scan_parquet(results).sink_parquet(out)
    pl.scan_parquet(rejects).sink_parquet(out.with_name(out.stem + ".rejects.parquet"))


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float  # user + system seconds of the process alone
    rss_mb: float


def run_measured(argv: list[str]) -> Measured:
    """Run a command as a process of its own; its wall time, CPU seconds and peak RSS, read with wait4."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{argv[:6]} failed: {proc.stderr.read().decode() if proc.stderr else status}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _stats(runs: list[Measured]) -> dict[str, float]:
    return {
        "cpu_min": round(min(r.cpu for r in runs), 2),
        "cpu_median": round(statistics.median(r.cpu for r in runs), 2),
        "wall_min": round(min(r.wall for r in runs), 2),
        "wall_median": round(statistics.median(r.wall for r in runs), 2),
        "rss_mb_max": round(max(r.rss_mb for r in runs)),
    }


def _same(a: Path, b: Path) -> bool:
    return pl.read_parquet(a).equals(pl.read_parquet(b))


def one_patient_rate(src: Path, sample: int) -> float:
    """Rows per second of the one-patient engine over the first ``sample`` valid rows of the cohort."""
    from decidua.engines.assess import assess_row
    from decidua.engines.batch import plan_layout, prepare
    from decidua.knowledge.loader import load_kb

    kb = load_kb()
    head = pl.scan_parquet(src).head(sample).collect()
    valid, _ = prepare(head, plan_layout(head.columns))
    rows = valid.collect().drop("case_id").to_dicts()
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        assess_row(row, kb, str(i))
    return len(rows) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of decidua and of each floor (min/median)")
    parser.add_argument("--dask", action="store_true", help="also run the Dask engine (a local cluster of two)")
    parser.add_argument("--sample", type=int, default=20_000, help="rows timed through the one-patient engine")
    parser.add_argument("--dir", type=Path, help="folder for the generated files (default: a temporary one)")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # internal: write the cohort and exit
    parser.add_argument("--floor", type=Path, nargs=3, help=argparse.SUPPRESS)  # internal: SRC RESULTS REJECTS
    parser.add_argument("--io", type=Path, nargs=4, help=argparse.SUPPRESS)  # internal: SRC RESULTS REJECTS OUT
    args = parser.parse_args()
    if args.generate is not None:
        synthetic_cohort(args.rows).write_parquet(args.generate)
        return
    if args.floor is not None:
        floor_query(*args.floor)
        return
    if args.io is not None:
        io_floor(*args.io)
        return

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src = Path(tmp) / "cohort.parquet"
        # generated in a process of its own, so that this one stays small while it starts the others
        gen = run_measured([sys.executable, __file__, "--rows", str(args.rows), "--generate", str(src)])
        print(f"generated {args.rows:,} rows in {gen.wall:.1f} s ({src.stat().st_size / 1e6:.0f} MB)", flush=True)
        out = {name: Path(tmp) / f"{name}.parquet" for name in ("decidua", "polars", "io", "dask")}
        rejects = {name: path.with_name(f"{name}.rejects.parquet") for name, path in out.items()}
        cli = [sys.executable, "-m", "decidua.entrypoints.cli.main", "batch", str(src)]
        commands = {
            "decidua": [*cli, "-o", str(out["decidua"])],
            "polars": [sys.executable, __file__, "--floor", str(src), str(out["polars"]), str(rejects["polars"])],
            "io": [
                sys.executable,
                __file__,
                "--io",
                str(src),
                str(out["decidua"]),
                str(rejects["decidua"]),
                str(out["io"]),
            ],
        }
        if args.dask:
            commands["dask"] = [*cli, "-o", str(out["dask"]), "--engine", "dask"]
        runs: dict[str, list[Measured]] = {name: [] for name in commands}
        for i in range(args.repeat):
            for name, argv in commands.items():
                runs[name].append(run_measured(argv))
                m = runs[name][-1]
                print(f"run {i + 1} {name}: {m.cpu:.2f} CPU s, {m.wall:.2f} s wall, {m.rss_mb:.0f} MB", flush=True)
        same = {
            name: _same(out[name], out["decidua"]) and _same(rejects[name], rejects["decidua"])
            for name in ("polars", "dask")
            if name in runs
        }
        assessed = pl.scan_parquet(out["decidua"]).select(pl.len()).collect().item()
        rejected = pl.scan_parquet(rejects["decidua"]).select(pl.len()).collect().item()
        print(f"{assessed:,} rows assessed, {rejected:,} rejected; outputs equal to decidua's: {same}")
        if not all(same.values()):
            raise SystemExit("an engine or the floor gave other results than decidua batch")
        single = one_patient_rate(src, args.sample)

    stats = {name: _stats(r) for name, r in runs.items()}
    ours = stats["decidua"]
    report = {
        "rows": args.rows,
        "repeat": args.repeat,
        **{f"{name}_{k}": v for name, s in stats.items() for k, v in s.items()},
        "rows_per_cpu_s": round(args.rows / ours["cpu_median"]),
        "single_rows_per_s": round(single),
        "speedup_vs_single": round(args.rows / ours["wall_median"] / single, 1),
        "load_at_start": round(load, 2),
    }
    if "dask" in stats:
        report["dask_vs_polars_engine_wall"] = round(stats["dask"]["wall_median"] / ours["wall_median"], 2)
    report["ratio_vs_polars"] = round(ours["cpu_median"] / stats["polars"]["cpu_median"], 2)
    report["ratio_vs_io"] = round(ours["cpu_median"] / stats["io"]["cpu_median"], 2)
    print(
        f"decidua {ours['cpu_min']:.2f}/{ours['cpu_median']:.2f} CPU s (min/median), floors: Polars query "
        f"{stats['polars']['cpu_min']:.2f}/{stats['polars']['cpu_median']:.2f}, I/O "
        f"{stats['io']['cpu_min']:.2f}/{stats['io']['cpu_median']:.2f}; ratios {report['ratio_vs_polars']} and "
        f"{report['ratio_vs_io']}; peak RSS {ours['rss_mb_max']} MB"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
