"""Benchmark KIR-ligand lookups on many HLA names, as a cohort brings them (few distinct, many repeated).

    python benchmarks/hla_lookup.py --names 5000000

Draws names from the shipped table (4-field, 2-field, G groups, colon-less and serological forms) with a
realistic skew, resolves them with ``ligands_for`` (each distinct name parsed once) and, for comparison, a sample
through ``ligand_of`` with the cache cleared each time (parsing every name). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

from decidua.immunogenetics.ligands import ligand_of, ligand_table, ligands_for


def sample_names(n: int, distinct: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    table = ligand_table()
    alleles = sorted(name for name, row in table.rows.items() if row[0] == "allele")
    pool = rng.sample(alleles, distinct // 2)
    pool += [":".join(a.split(":")[:2]).rstrip("NLSQCA") for a in rng.sample(alleles, distinct // 4)]
    pool += [f"HLA-{a}" for a in rng.sample(alleles, distinct // 8)]
    pool += [name for name, row in table.rows.items() if row[0] == "G"][: distinct // 8]
    weights = [1 / (i + 1) for i in range(len(pool))]  # a few common alleles, a long tail
    return rng.choices(pool, weights=weights, k=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=4000)
    args = parser.parse_args()
    names = sample_names(args.names, args.distinct)
    ligand_table()  # load once, outside the timing

    ligand_of.cache_clear()
    t0 = time.perf_counter()
    calls = ligands_for(names)
    resolved = [calls[n].ligand for n in names]
    bulk = time.perf_counter() - t0

    sample = names[:20_000]
    t0 = time.perf_counter()
    for name in sample:
        ligand_of.cache_clear()
        ligand_of(name)
    uncached = (time.perf_counter() - t0) / len(sample)

    print(f"{len(names):,} names ({len(calls):,} distinct) in {bulk:.2f} s; {len(resolved):,} calls")
    print(f"one uncached lookup: {uncached * 1e6:.1f} us")
    print(
        json.dumps(
            {
                "names": len(names),
                "distinct": len(calls),
                "names_per_s": round(len(names) / bulk),
                "uncached_latency_us": round(uncached * 1e6, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
