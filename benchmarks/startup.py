"""Benchmark the command line's start-up: each command as a process of its own, as a user runs it.

    python benchmarks/startup.py --runs 5

Runs ``decidua --help``, ``decidua --version``, ``decidua assess examples/01-rpl-age36-nk-high.yaml`` and
``decidua kb show`` (output to /dev/null) ``--runs`` times each, round-robin so that a burst of load on a shared
machine touches every command alike, together with the floor measured in the same run: ``python -c pass`` (the
interpreter alone) and ``python -c "import typer"`` (the interpreter and the CLI framework). Wall time is the
elapsed time of the process; CPU time is its user + system time, read with ``os.wait4`` for that process alone
(less disturbed by other work on the machine than wall time). The machine's load average is printed before and
after. Last line: one JSON object with min and median of each figure and each command's ratio to the floors.

Python's bytecode cache is used as an installed package has it (``pip install`` compiles every module): the
commands run with ``PYTHONPYCACHEPREFIX`` set to a folder under the system's temporary directory and without
``PYTHONDONTWRITEBYTECODE``, so the untimed warm-up run compiles each module once and the timed runs read the
bytecode (nothing is written into the source tree). ``--no-bytecode-cache`` runs with the environment as it is
(with ``PYTHONDONTWRITEBYTECODE=1`` every module of decidua is compiled from source on every start).

The target (issue 17): ``decidua --help`` and ``decidua assess`` under 0.35 s wall on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "01-rpl-age36-nk-high.yaml"


def decidua_command() -> list[str]:
    """The installed console script next to this interpreter (what a user runs), else the module."""
    script = Path(sys.executable).with_name("decidua")
    return [str(script)] if script.exists() else [sys.executable, "-m", "decidua.entrypoints.cli.main"]


def commands(cli: list[str]) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "decidua --help": [*cli, "--help"],
        "decidua --version": [*cli, "--version"],
        "decidua assess": [*cli, "assess", str(EXAMPLE)],
        "decidua kb show": [*cli, "kb", "show"],
    }


FLOORS = ("python -c pass", "python -c 'import typer'")


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process; its output is discarded, a failure stops the run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="Runs of each command (default 5).")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs of each first (file cache; default 1).")
    parser.add_argument(
        "--decidua",
        help="The command that runs decidua, e.g. 'python -m decidua.entrypoints.cli.main' with PYTHONPATH set to "
        "another checkout's src (default: the console script next to this interpreter).",
    )
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="Run with the environment's bytecode settings as they are."
    )
    args = parser.parse_args()
    env = {**os.environ, "COLUMNS": "100", "TERM": "dumb"}
    env.pop("DECIDUA_PLAIN", None)
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "decidua-startup-pycache")
    bytecode = "cached" if env.get("PYTHONPYCACHEPREFIX") or not env.get("PYTHONDONTWRITEBYTECODE") else "not written"
    cli = shlex.split(args.decidua) if args.decidua else decidua_command()
    cmds = commands(cli)
    load_before = os.getloadavg()
    for _ in range(args.warmup):
        for argv in cmds.values():
            run_once(argv, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for _ in range(args.runs):
        for name, argv in cmds.items():
            samples[name].append(run_once(argv, env))
    load_after = os.getloadavg()

    figures: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        figures[name] = {
            "wall_min_s": round(min(walls), 4),
            "wall_median_s": round(statistics.median(walls), 4),
            "cpu_min_s": round(min(cpus), 4),
            "cpu_median_s": round(statistics.median(cpus), 4),
        }
    print(
        f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs"
    )
    print(f"{args.runs} runs each (bytecode {bytecode}); seconds, min / median")
    print(f"{'command':28} {'wall':>17} {'cpu':>17}")
    for name, f in figures.items():
        wall = f"{f['wall_min_s']:7.3f} / {f['wall_median_s']:7.3f}"
        print(f"{name:28} {wall} {f['cpu_min_s']:7.3f} / {f['cpu_median_s']:7.3f}")
    ratios: dict[str, dict[str, float]] = {}
    python_floor = figures["python -c pass"]["wall_median_s"]
    typer_floor = figures["python -c 'import typer'"]["wall_median_s"]
    typer_cpu = figures["python -c 'import typer'"]["cpu_median_s"]
    for name, f in figures.items():
        if name in FLOORS:
            continue
        ratios[name] = {
            "wall_vs_python": round(f["wall_median_s"] / python_floor, 2),
            "wall_vs_typer": round(f["wall_median_s"] / typer_floor, 2),
            "over_typer_s": round(f["wall_median_s"] - typer_floor, 4),
            "cpu_vs_typer": round(f["cpu_median_s"] / typer_cpu, 2),  # steadier than wall on a loaded machine
        }
        print(
            f"{name}: {ratios[name]['wall_vs_python']}x python -c pass, {ratios[name]['wall_vs_typer']}x import typer "
            f"(+{ratios[name]['over_typer_s'] * 1000:.0f} ms; CPU {ratios[name]['cpu_vs_typer']}x)"
        )
    target = 0.35
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "runs": args.runs,
                "cpus": os.cpu_count(),
                "bytecode": bytecode,
                "decidua": " ".join(cli),
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in load_after],
                "figures": figures,
                "ratios": ratios,
                "target_wall_s": target,
                "target_met": {
                    name: figures[name]["wall_median_s"] < target for name in ("decidua --help", "decidua assess")
                },
            }
        )
    )


if __name__ == "__main__":
    main()
