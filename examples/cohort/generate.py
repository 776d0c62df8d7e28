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
* KIR genes typed in 80 %, HLA-C of the woman and partner in 70 %, with carrier and allele frequencies of the
  order reported for European populations; about 3 % of NK values and ages missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ROWS, VOLUNTEERS, SEED = 2000, 600, 20261130
KIR = {
    "2dl1": 0.96, "2dl2": 0.5, "2dl3": 0.9, "2dl4": 1.0, "2dl5": 0.5, "2ds1": 0.37, "2ds2": 0.5, "2ds3": 0.3,
    "2ds4": 0.95, "2ds5": 0.33, "3dl1": 0.95, "3dl2": 1.0, "3dl3": 1.0, "3ds1": 0.37, "2dp1": 0.97, "3dp1": 1.0,
}  # fmt: skip
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
        **{f"kir_{gene}": ["P" if p else "A" for p in rng.random(ROWS) < freq] for gene, freq in KIR.items()},
        "woman_hla_c": genotype(),
        "partner_hla_c": genotype(),
        "healthy_volunteer": np.where(volunteer, "yes", "no"),
        "live_birth": [None if v else ("yes" if b else "no") for v, b in zip(volunteer, birth, strict=True)],
    }
    frame = pl.DataFrame(data)
    untyped = ~pl.Series(kir_typed)
    return frame.with_columns(
        pl.when(untyped).then(None).otherwise(pl.col(f"kir_{gene}")).alias(f"kir_{gene}") for gene in KIR
    )


if __name__ == "__main__":
    out = Path(__file__).with_name("cohort.csv")
    cohort().write_csv(out)
    print(f"{out}: {ROWS} rows")
