"""Write the example cohort ``cohort.csv``: 2,000 synthetic women, in the batch engine's input layout plus two
research columns. Synthetic: no real patient; the figures it gives demonstrate the commands, not biology.

    python examples/cohort/generate.py            # rewrites examples/cohort/cohort.csv (same bytes: fixed seed)

What the generator builds in, so that a user can check the commands find it and nothing else:

* ``healthy_volunteer``: 600 women recruited as a reference group (no pregnancy loss, no autoimmune condition);
  their peripheral NK % is log-normal with median about 13 % (no age effect), the clinic's patients a little
  higher. ``cohort reference-interval --where healthy_volunteer`` derives the clinic's own interval from them.
* ``live_birth``: the next pregnancy's outcome for the 1,400 patients, with a probability that falls with age
  and with the number of miscarriages, and does not depend on NK cells, KIR or HLA-C at all: ``cohort scan``
  should find no genotype association beyond chance, and says how little power 1,400 women give.
* KIR genes typed in 80 %, from two haplotypes per woman (centromeric and telomeric A or B motifs, about 3 in 10
  women KIR AA); HLA-C of the woman and partner in 70 %, with allele frequencies of the order reported for
  European populations; about 3 % of NK values and ages missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ROWS, VOLUNTEERS, SEED = 2000, 600, 20261130
KIR_GENES = (
    "2dl1", "2dl2", "2dl3", "2dl4", "2dl5", "2ds1", "2ds2", "2ds3", "2ds4", "2ds5", "3dl1", "3dl2", "3dl3", "3ds1",
    "2dp1", "3dp1",
)  # fmt: skip
# Haplotypes as centromeric + telomeric gene content (A: 2DL3 / 3DL1+2DS4; B: 2DL2+2DS2 / 3DS1+2DS1), drawn so
# that about 3 in 10 women are KIR AA, of the order reported for Europeans; framework genes on every haplotype.
_FRAME = {"3dl3", "3dp1", "2dl4", "3dl2"}
CEN = {"A": _FRAME | {"2dl3", "2dp1", "2dl1"}, "B": _FRAME | {"2ds2", "2dl2", "2dl5", "2ds3", "2dp1", "2dl1"}}
TEL = {"A": {"3dl1", "2ds4"}, "B": {"3ds1", "2dl5", "2ds5", "2ds1"}}
P_CEN_A, P_TEL_A = 0.68, 0.72
HLA_C = ["C*07:01", "C*07:02", "C*04:01", "C*06:02", "C*03:04", "C*05:01", "C*12:03", "C*02:02", "C*03:03", "C*08:02"]
HLA_C_FREQ = [0.15, 0.14, 0.12, 0.1, 0.09, 0.09, 0.08, 0.08, 0.08, 0.07]


def cohort() -> pl.DataFrame:
    rng = np.random.default_rng(SEED)
    volunteer = np.arange(ROWS) < VOLUNTEERS
    age = np.clip(np.round(rng.normal(35, 4.5, ROWS)), 20, 48)
    miscarriages = np.where(volunteer, 0, rng.choice([2, 3, 4, 5], ROWS, p=[0.35, 0.4, 0.15, 0.1]))
    nk = np.round(np.exp(rng.normal(np.log(13.0) + 0.12 * ~volunteer, 0.33, ROWS)), 1)
    p_birth = 1 / (1 + np.exp(-(1.2 - 0.09 * (age - 35) - 0.35 * (miscarriages - 2))))
    birth = rng.random(ROWS) < p_birth
    kir_typed = rng.random(ROWS) < 0.8
    hla_typed = rng.random(ROWS) < 0.7

    def genotype() -> list[str | None]:
        a, b = rng.choice(HLA_C, ROWS, p=HLA_C_FREQ), rng.choice(HLA_C, ROWS, p=HLA_C_FREQ)
        return [f"{x}+{y}" if t else None for x, y, t in zip(a, b, hla_typed, strict=True)]

    def missing(values: np.ndarray, share: float) -> list[float | None]:
        gone = rng.random(ROWS) < share
        return [None if g else float(v) for v, g in zip(values, gone, strict=True)]

    data: dict[str, object] = {
        "case_id": [f"C{i:05d}" for i in range(1, ROWS + 1)],
        "age_years": [None if a is None else int(a) for a in missing(age, 0.03)],
        "n_miscarriages": miscarriages,
        "pb_nk_percent": missing(nk, 0.03),
        **kir_genes(rng),
        "woman_hla_c": genotype(),
        "partner_hla_c": genotype(),
        "healthy_volunteer": np.where(volunteer, "yes", "no"),
        "live_birth": [None if v else ("yes" if b else "no") for v, b in zip(volunteer, birth, strict=True)],
    }
    frame = pl.DataFrame(data)
    untyped = ~pl.Series(kir_typed)
    return frame.with_columns(
        pl.when(untyped).then(None).otherwise(pl.col(f"kir_{gene}")).alias(f"kir_{gene}") for gene in KIR_GENES
    )


def kir_genes(rng: np.random.Generator) -> dict[str, list[str]]:
    """P/A per gene from two haplotypes per woman, each a centromeric and a telomeric motif."""
    present: list[set[str]] = []
    for _ in range(ROWS):
        genes: set[str] = set()
        for _ in range(2):
            genes |= CEN["A" if rng.random() < P_CEN_A else "B"] | TEL["A" if rng.random() < P_TEL_A else "B"]
        present.append(genes)
    return {f"kir_{g}": ["P" if g in genes else "A" for genes in present] for g in KIR_GENES}


if __name__ == "__main__":
    out = Path(__file__).with_name("cohort.csv")
    cohort().write_csv(out)
    print(f"{out}: {ROWS} rows")
