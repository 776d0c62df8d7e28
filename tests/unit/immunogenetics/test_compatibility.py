from __future__ import annotations

from fractions import Fraction
from itertools import product

import pytest

from decidua.core.expr import evaluate
from decidua.core.features import DERIVED
from decidua.immunogenetics.compatibility import (
    CLigand,
    c2_count,
    embryo_distribution,
    outlook,
    p_more_c2_than_mother,
    p_paternal_c2,
    rank_donors,
)

C1, C2, NULL = CLigand.C1, CLigand.C2, CLigand.NONE
GENOTYPES = {"C1C1": (C1, C1), "C1C2": (C1, C2), "C2C2": (C2, C2)}
q = Fraction


# Every parental combination: (oocyte, sperm) -> (C1C1, C1C2, C2C2), P(paternal C2), P(more C2 than mother)
# with the mother's own oocytes. Worked by hand from Mendel's first law.
TABLE = {
    ("C1C1", "C1C1"): ((q(1), q(0), q(0)), q(0), q(0)),
    ("C1C1", "C1C2"): ((q(1, 2), q(1, 2), q(0)), q(1, 2), q(1, 2)),
    ("C1C1", "C2C2"): ((q(0), q(1), q(0)), q(1), q(1)),
    ("C1C2", "C1C1"): ((q(1, 2), q(1, 2), q(0)), q(0), q(0)),
    ("C1C2", "C1C2"): ((q(1, 4), q(1, 2), q(1, 4)), q(1, 2), q(1, 4)),
    ("C1C2", "C2C2"): ((q(0), q(1, 2), q(1, 2)), q(1), q(1, 2)),
    ("C2C2", "C1C1"): ((q(0), q(1), q(0)), q(0), q(0)),
    ("C2C2", "C1C2"): ((q(0), q(1, 2), q(1, 2)), q(1, 2), q(0)),
    ("C2C2", "C2C2"): ((q(0), q(0), q(1)), q(1), q(0)),
}


@pytest.mark.parametrize(("mother", "father"), sorted(TABLE))
def test_probabilities_for_every_parental_combination(mother: str, father: str) -> None:
    (c1c1, c1c2, c2c2), paternal, more = TABLE[(mother, father)]
    m, f = GENOTYPES[mother], GENOTYPES[father]
    dist = embryo_distribution(m, f)
    assert {k: dist.get(k, q(0)) for k in ("C1C1", "C1C2", "C2C2")} == {"C1C1": c1c1, "C1C2": c1c2, "C2C2": c2c2}
    assert sum(dist.values()) == 1
    assert p_paternal_c2(f) == paternal
    assert p_more_c2_than_mother(m, f, m) == more


def test_egg_donation_compares_the_embryo_with_the_recipient() -> None:
    recipient = (C1, C1)
    donor = (C2, C2)
    partner = (C1, C1)
    view = outlook(donor, partner, recipient)
    assert view.p_paternal_c2 == 0  # nothing from the father ...
    assert view.p_more_c2_than_mother == 1  # ... yet every embryo carries a C2 the recipient lacks
    assert view.distribution == {"C1C2": 1}


def test_null_alleles_present_no_ligand() -> None:
    dist = embryo_distribution((C1, NULL), (C2, NULL))
    assert dist == {"--": q(1, 4), "C1-": q(1, 4), "C1C2": q(1, 4), "C2-": q(1, 4)}
    assert p_more_c2_than_mother((C1, NULL), (C2, NULL), (C1, NULL)) == q(1, 2)


@pytest.mark.parametrize(
    ("oocyte", "sperm", "uterus"),
    list(product([*GENOTYPES.values(), (C1, NULL), (C2, NULL)], repeat=3)),
)
def test_feature_expressions_equal_the_exact_model(oocyte: tuple, sperm: tuple, uterus: tuple) -> None:
    row = {"oocyte_c2_count": c2_count(oocyte), "sperm_c2_count": c2_count(sperm), "woman_c2_count": c2_count(uterus)}
    view = outlook(oocyte, sperm, uterus)
    assert evaluate(DERIVED["p_embryo_paternal_c2"], row) == float(view.p_paternal_c2)
    assert evaluate(DERIVED["p_embryo_more_c2_than_mother"], row) == float(view.p_more_c2_than_mother)


def test_unknown_parent_gives_no_probability() -> None:
    row = {"oocyte_c2_count": None, "sperm_c2_count": 1, "woman_c2_count": 2}
    assert evaluate(DERIVED["p_embryo_more_c2_than_mother"], row) is None
    assert evaluate(DERIVED["p_embryo_paternal_c2"], row) == 0.5


def test_donors_are_ranked_by_c2_load_with_ties_and_unknowns_last() -> None:
    ranks = rank_donors(
        [
            ("D-c2c2", (C2, C2), None),
            ("D-c1c1", (C1, C1), None),
            ("D-unknown", None, "HLA-C*07:AB is an NMDP code"),
            ("D-c1c2", (C1, C2), None),
            ("D-c1c1-b", (C1, C1), None),
        ],
        sperm=(C1, C2),
        uterus=(C1, C1),
    )
    assert [(r.donor_id, r.rank) for r in ranks] == [
        ("D-c1c1", 1),
        ("D-c1c1-b", 1),
        ("D-c1c2", 3),
        ("D-c2c2", 4),
        ("D-unknown", None),
    ]
    assert ranks[-1].reason == "HLA-C*07:AB is an NMDP code"
