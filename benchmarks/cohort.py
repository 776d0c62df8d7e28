"""Benchmark the research commands (``decidua cohort ...``) on a synthetic cohort, against the floor of reading
the same columns with Polars alone in the same run.

    python benchmarks/cohort.py --rows 10000000

Generates the batch benchmark's cohort (``benchmarks/batch.py``: ages, losses, NK values, KIR genes, HLA-C) plus a
``live_birth`` outcome and a ``healthy_volunteer`` flag, writes it to Parquet, then runs each command as a process
of its own (``--json``, interpreter start-up included; CPU seconds and peak RSS read with ``wait4`` for that
process alone). The floor is a process that reads the columns the command reads and counts distinct values with
Polars, nothing else. Each command and its floor run ``--repeat`` times (3), alternated. The last line printed is
JSON: for each command the min and median of wall and CPU seconds, the floor's CPU seconds, their ratios, rows/s
and the peak RSS.
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
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from batch import synthetic_cohort


def run(argv: list[str]) -> dict[str, float]:
    """Run a command; its wall seconds, CPU seconds and peak RSS (MB), read with wait4 for that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"{argv[:5]} failed: {proc.stderr.read().decode() if proc.stderr else status}")
    return {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def generate(rows: int, path: Path) -> None:
    frame = synthetic_cohort(rows)
    rng = np.random.default_rng(11)
    age = frame["age_years"].fill_null(35).to_numpy()
    birth = rng.random(rows) < 1 / (1 + np.exp(-(1.0 - 0.08 * (age - 35))))
    frame.with_columns(
        pl.Series("live_birth", birth), pl.Series("healthy_volunteer", rng.random(rows) < 0.3)
    ).write_parquet(path)


FLOOR = """
import sys, polars as pl
frame = pl.scan_parquet(sys.argv[1])
cols = sys.argv[2].split(",")
print(frame.select(cols).group_by(cols).len().collect().height)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command and its floor (min/median)")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # internal: write the cohort and exit
    args = parser.parse_args()
    if args.generate is not None:
        generate(args.rows, args.generate)
        return
    decidua = [sys.executable, "-m", "decidua.entrypoints.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "cohort.parquet"
        # generated in a process of its own: a forked child's peak RSS would otherwise count this one's pages
        made = run([sys.executable, __file__, "--rows", str(args.rows), "--generate", str(data)])
        print(f"generated {args.rows:,} rows in {made['seconds']:.1f} s", flush=True)
        commands = {
            "reference-interval": (
                ["reference-interval", str(data), "--column", "pb_nk_percent", "--where", "healthy_volunteer",
                 "--partition", "age_years > 35"],
                "pb_nk_percent,healthy_volunteer,age_years",
            ),
            "cutoff": (
                ["cutoff", str(data), "--marker", "pb_nk_percent", "--outcome", "live_birth"],
                "pb_nk_percent,live_birth,age_years",
            ),
            "association": (
                ["association", str(data), "--exposure", "pb_nk_percent > 24", "--outcome", "live_birth",
                 "--adjust", "age_years"],
                "pb_nk_percent,live_birth,age_years",
            ),
            "scan": (
                ["scan", str(data), "--outcome", "live_birth"],
                "case_id,live_birth,woman_hla_c,partner_hla_c,kir_2dl1,kir_2dl2,kir_2dl3,kir_2ds1,kir_3dl1,kir_3ds1",
            ),
        }  # fmt: skip
        results: dict[str, dict[str, float]] = {}
        for name, (argv, columns) in commands.items():
            floors, runs = [], []
            for _ in range(args.repeat):  # alternated, so that the machine's load touches both alike
                floors.append(run([sys.executable, "-c", FLOOR, str(data), columns]))
                runs.append(run([*decidua, "cohort", *argv, "--json"]))
            cpu = sorted(r["cpu_s"] for r in runs)
            floor_cpu = sorted(f["cpu_s"] for f in floors)
            wall = sorted(r["seconds"] for r in runs)
            figures = {
                "cpu_s_min": cpu[0],
                "cpu_s_median": statistics.median(cpu),
                "floor_cpu_s_min": floor_cpu[0],
                "floor_cpu_s_median": statistics.median(floor_cpu),
                "cpu_ratio_min": cpu[0] / floor_cpu[0],
                "cpu_ratio_median": statistics.median(cpu) / statistics.median(floor_cpu),
                "seconds_min": wall[0],
                "seconds_median": statistics.median(wall),
                "rows_per_s_median": args.rows / statistics.median(wall),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
            results[name] = {k: round(v, 3) for k, v in figures.items()}
            print(
                f"{name}: {figures['seconds_min']:.1f}/{figures['seconds_median']:.1f} s wall (min/median of "
                f"{args.repeat}), {figures['cpu_s_min']:.1f}/{figures['cpu_s_median']:.1f} CPU s, "
                f"{figures['rows_per_s_median']:,.0f} rows/s, peak RSS {figures['peak_rss_mb']:.0f} MB; floor (read "
                f"the same columns with Polars) {figures['floor_cpu_s_min']:.1f}/{figures['floor_cpu_s_median']:.1f} "
                f"CPU s; CPU ratio {figures['cpu_ratio_min']:.1f}/{figures['cpu_ratio_median']:.1f}",
                flush=True,
            )
    print(json.dumps({"rows": args.rows, "commands": results}))


if __name__ == "__main__":
    main()
