"""Benchmark the batch engine end to end, Parquet to Parquet, on a synthetic cohort.

    python benchmarks/batch.py --rows 10000000

Generates a realistic cohort in the flat layout (ages, losses, transfers, investigations with gaps, peripheral
and uterine NK values), writes it to Parquet, then times ``decidua batch``'s local engine reading it and writing
results and rejects. It also times the one-patient engine over a sample of the same rows. The last line printed
is JSON: ``rows``, ``rows_per_s`` (end to end), ``rules_rows_per_s`` (rule evaluation only, in memory),
``read_only_rows_per_s`` (reading the input file alone: the ceiling of any end-to-end rate), ``peak_rss_mb``,
``single_rows_per_s`` and ``speedup_vs_single``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from decidua.adapters.batchio import DEFAULT_CHUNK_ROWS
from decidua.engines.assess import assess_row
from decidua.engines.batch import assess_lazy, plan_layout, prepare
from decidua.immunogenetics.ligands import ligand_table
from decidua.knowledge.loader import load_kb


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


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Run a command; (seconds, its own peak RSS in MB), read with wait4 for that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.read().decode() if proc.stderr else status}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="rows timed through the one-patient engine")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # internal: write the cohort and exit
    args = parser.parse_args()
    if args.generate is not None:
        synthetic_cohort(args.rows).write_parquet(args.generate)
        return
    kb = load_kb()

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "cohort.parquet", Path(tmp) / "result.parquet"
        # Generated in a process of its own, so that this one stays small when it starts the batch run
        # (a forked child's peak RSS would otherwise count the parent's pages).
        seconds, _ = run_measured([sys.executable, __file__, "--rows", str(args.rows), "--generate", str(src)])
        print(f"generated {args.rows} rows in {seconds:.1f} s ({src.stat().st_size / 1e6:.0f} MB)")
        # End to end in a process of its own, through the command line, so that its memory is its own.
        cli = [sys.executable, "-m", "decidua.entrypoints.cli.main", "batch", str(src), "-o", str(dst)]
        end_to_end, batch_rss = run_measured([*cli, "--chunk-rows", str(args.chunk_rows)])
        rows_out = pl.scan_parquet(dst).select(pl.len()).collect().item()
        print(f"end to end (decidua batch, Parquet to Parquet): {end_to_end:.2f} s, {rows_out} rows written")

        t0 = time.perf_counter()
        frame = pl.read_parquet(src)
        read_only = time.perf_counter() - t0
        print(f"reading the input alone (every column, in memory): {read_only:.2f} s")
        layout = plan_layout(frame.columns)
        valid, _ = prepare(frame, layout)
        valid_df = valid.collect()
        t0 = time.perf_counter()
        assess_lazy(valid_df.lazy(), kb).collect()
        rules_only = time.perf_counter() - t0
        print(f"rules only (in memory): {rules_only:.2f} s")

        sample = valid_df.head(args.sample).drop("case_id").to_dicts()
        t0 = time.perf_counter()
        for i, row in enumerate(sample):
            assess_row(row, kb, str(i))
        single = time.perf_counter() - t0
        single_rate = len(sample) / single
        print(f"one-patient engine: {single_rate:,.0f} rows/s over {len(sample)} rows")

    rate = args.rows / end_to_end
    print(
        json.dumps(
            {
                "rows": args.rows,
                "rows_per_s": round(rate),
                "rules_rows_per_s": round(valid_df.height / rules_only),
                "read_only_rows_per_s": round(args.rows / read_only),
                "peak_rss_mb": round(batch_rss),
                "single_rows_per_s": round(single_rate),
                "speedup_vs_single": round(rate / single_rate, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
