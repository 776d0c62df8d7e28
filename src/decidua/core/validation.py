"""Checks on a structurally valid case: units, plausible ranges and contradictions.

:func:`check_case` returns every problem found (an empty list for a good case) so that a clinician sees
all of them at once. Limits here are physical or definitional (a percentage is 0-100; a loss at or after
24 weeks is a stillbirth, not a miscarriage), never clinical thresholds: those live in the knowledge base.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from decidua.core.case import (
    CONDITION_CODE_SYSTEMS,
    Case,
    Condition,
    Measurement,
    PregnancyOutcome,
)
from decidua.core.errors import Problem, UnitError
from decidua.core.units import Quantity, allowed_units, to_canonical

AGE_RANGE = (10, 70)
MAX_CASE_ID = 200  # characters of the pseudonymous case id
YEAR_RANGE = (1900, 2100)  # of a pregnancy; not after the test date's year when there is one
# Pregnancy loss before 24 completed weeks is a miscarriage (ESHRE 2022 RPL guideline); at or after, a stillbirth.
VIABILITY_WEEK = 24.0
MAX_GESTATIONAL_WEEK = 45.0
MAX_EMBRYOS_PER_TRANSFER = 8
CYCLE_DAY = re.compile(r"^(?:LH\+(?P<lh>\d{1,2})|(?:CD|day ?)(?P<cd>\d{1,2}))$", re.IGNORECASE)
ET_RATIO = re.compile(r"^\d{1,3}:\d{1,3}$")

PHYSICAL_RANGE: dict[Quantity, tuple[float, float]] = {
    Quantity.PERCENT: (0.0, 100.0),
    Quantity.CELLS_PER_UL: (0.0, 100_000.0),
    Quantity.UNK_PER_100_STROMAL: (0.0, 100.0),
    Quantity.UNK_PER_MM2: (0.0, 10_000.0),
    Quantity.TSH: (0.0, 1_000.0),
}


def age_on(date_of_birth: dt.date, on: dt.date) -> int:
    """Age in completed years on a date (a woman of 35 years and 11 months is 35)."""
    before_birthday = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - int(before_birthday)


def case_age(case: Case) -> int | None:
    """The woman's age in completed years at the tests, or ``None`` if it cannot be known."""
    if case.woman.age_years is not None:
        return case.woman.age_years
    if case.woman.date_of_birth is not None and case.test_date is not None:
        return age_on(case.woman.date_of_birth, case.test_date)
    return None


def lh_day(cycle_day: str | None) -> int | None:
    """Days after the LH surge for a cycle day written ``LH+7``; ``None`` otherwise."""
    if cycle_day is None:
        return None
    m = CYCLE_DAY.match(cycle_day.strip())
    if m is None or m.group("lh") is None:
        return None
    return int(m.group("lh"))


def measurement_value(m: Measurement, quantity: Quantity) -> float:
    """The canonical value of an already validated measurement."""
    return to_canonical(m.value, m.unit, quantity)


def uterine_quantity(unit: str) -> Quantity | None:
    """Which uterine NK quantity a unit denotes: per 100 stromal cells, or per mm2; ``None`` if neither."""
    for q in (Quantity.UNK_PER_100_STROMAL, Quantity.UNK_PER_MM2):
        if unit.strip() in allowed_units(q):
            return q
    return None


def _measurement(path: str, m: Measurement | None, quantity: Quantity, out: list[Problem]) -> None:
    if m is None:
        return
    try:
        value = to_canonical(m.value, m.unit, quantity)
    except UnitError:
        out.append(Problem(f"{path}.unit", m.unit, f"allowed units: {', '.join(allowed_units(quantity))}"))
        return
    lo, hi = PHYSICAL_RANGE[quantity]
    if not lo <= value <= hi:
        canonical = allowed_units(quantity)[0]
        out.append(Problem(f"{path}.value", m.value, f"allowed: {lo:g} to {hi:g} {canonical} ({m.unit} given)"))


# Sizes no patient's case file reaches: a list or text beyond them is a mistake or an attack, refused with its path
# before a store keeps it and every later read re-assesses it (see "Security and operations" in the docs).
MAX_LIST: dict[str, int] = {
    "conditions": 50,
    "pregnancies": 50,
    "transfers": 100,
    "genotypes.oocyte_donors": 50,
    "genotypes.embryos": 100,
}
MAX_TEXT = 20_000  # characters of a free text (the note, a result's detail)
MAX_TYPING_TEXT = 200_000  # characters of a typing (a GL String of an ambiguous HLA-C typing may be long)


def _sizes(value: object, path: str, out: list[Problem]) -> None:
    """Every list and text of the case within :data:`MAX_LIST`, :data:`MAX_TEXT` and :data:`MAX_TYPING_TEXT`."""
    if isinstance(value, str):
        typing = "hla_c" in path or "gl_string" in path or "kir" in path
        most = MAX_TYPING_TEXT if typing else MAX_TEXT
        if len(value) > most:
            out.append(Problem(path, f"{len(value):,} characters", f"allowed: at most {most:,} characters"))
    elif isinstance(value, tuple):
        entries = MAX_LIST.get(path)
        if entries is not None and len(value) > entries:
            out.append(Problem(path, f"{len(value):,} entries", f"allowed: at most {entries} entries"))
            return
        for i, item in enumerate(value[:1000]):  # a list not in MAX_LIST (genes, allele lists) is short
            _sizes(item, f"{path}[{i}]", out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _sizes(getattr(value, f.name), f"{path}.{f.name}" if path else f.name, out)


def check_case(case: Case) -> list[Problem]:
    """Every unit, range, size and consistency problem in ``case``; empty if there is none. An oversized list is
    reported with the other size problems only (its items are not checked one by one)."""
    out: list[Problem] = []
    _sizes(case, "", out)
    if any(p.allowed.endswith(" entries") for p in out):
        return out
    if not case.case_id.strip() or len(case.case_id) > MAX_CASE_ID:
        out.append(Problem("case_id", case.case_id, f"allowed: a pseudonymous id of 1 to {MAX_CASE_ID} characters"))
    w = case.woman
    if w.age_years is not None and not AGE_RANGE[0] <= w.age_years <= AGE_RANGE[1]:
        out.append(Problem("woman.age_years", w.age_years, f"allowed: {AGE_RANGE[0]} to {AGE_RANGE[1]} years"))
    if w.date_of_birth is not None:
        if case.test_date is None:
            out.append(Problem("test_date", None, "required with woman.date_of_birth, to compute the age"))
        else:
            age = age_on(w.date_of_birth, case.test_date)
            if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
                out.append(
                    Problem(
                        "woman.date_of_birth",
                        w.date_of_birth.isoformat(),
                        f"gives age {age} on test_date; allowed {AGE_RANGE[0]} to {AGE_RANGE[1]} years",
                    )
                )
            elif w.age_years is not None and w.age_years != age:
                out.append(
                    Problem("woman.age_years", w.age_years, f"must agree with date_of_birth and test_date (age {age})")
                )

    known = {c.value for c in Condition}
    for i, code in enumerate(case.conditions or ()):
        system, sep, rest = code.partition(":")
        if code in known or (sep and system in CONDITION_CODE_SYSTEMS and rest.strip()):
            continue
        out.append(
            Problem(
                f"conditions[{i}]",
                code,
                f"allowed: one of {', '.join(sorted(known))}, "
                f"or a free code prefixed with {', '.join(s + ':' for s in CONDITION_CODE_SYSTEMS)}",
            )
        )

    last_year = case.test_date.year if case.test_date is not None else YEAR_RANGE[1]
    for i, p in enumerate(case.pregnancies or ()):
        path = f"pregnancies[{i}]"
        if p.year is not None and not YEAR_RANGE[0] <= p.year <= last_year:
            limit = "the test date's year" if case.test_date is not None else str(YEAR_RANGE[1])
            out.append(Problem(f"{path}.year", p.year, f"allowed: {YEAR_RANGE[0]} to {limit}"))
        week = p.gestational_week
        if week is None:
            continue
        if not 0 < week <= MAX_GESTATIONAL_WEEK:
            out.append(
                Problem(
                    f"{path}.gestational_week", week, f"allowed: above 0 and at most {MAX_GESTATIONAL_WEEK:g} weeks"
                )
            )
        elif p.outcome in (PregnancyOutcome.MISCARRIAGE, PregnancyOutcome.BIOCHEMICAL_LOSS) and week >= VIABILITY_WEEK:
            out.append(
                Problem(
                    f"{path}.gestational_week",
                    week,
                    f"a {p.outcome.value} is a loss before {VIABILITY_WEEK:g} weeks; "
                    f"record a loss at or after {VIABILITY_WEEK:g} weeks as outcome 'stillbirth'",
                )
            )
        elif p.outcome is PregnancyOutcome.STILLBIRTH and week < VIABILITY_WEEK:
            out.append(
                Problem(
                    f"{path}.gestational_week",
                    week,
                    f"a stillbirth is a fetal death at or after {VIABILITY_WEEK:g} weeks; before, record 'miscarriage'",
                )
            )

    for i, t in enumerate(case.transfers or ()):
        if not 1 <= t.embryos <= MAX_EMBRYOS_PER_TRANSFER:
            out.append(Problem(f"transfers[{i}].embryos", t.embryos, f"allowed: 1 to {MAX_EMBRYOS_PER_TRANSFER}"))

    g = case.genotypes
    for field_name, people in (("oocyte_donors", g.oocyte_donors), ("embryos", g.embryos)):
        seen: set[str] = set()
        for i, person in enumerate(people):
            if person.id in seen:
                out.append(Problem(f"genotypes.{field_name}[{i}].id", person.id, "ids must be unique"))
            seen.add(person.id)
    donor_ids = [d.id for d in g.oocyte_donors]
    if g.oocyte_donor_id is not None and g.oocyte_donor_id not in donor_ids:
        out.append(
            Problem(
                "genotypes.oocyte_donor_id", g.oocyte_donor_id, f"allowed: one of the oocyte_donors ids {donor_ids}"
            )
        )
    if g.oocytes == "own" and g.oocyte_donor_id is not None:
        out.append(Problem("genotypes.oocyte_donor_id", g.oocyte_donor_id, "only with oocytes: donor"))

    thyroid = case.investigations.thyroid
    if thyroid is not None:
        _measurement("investigations.thyroid.tsh", thyroid.tsh, Quantity.TSH, out)

    pb = case.nk.peripheral
    if pb is not None:
        base = "nk.peripheral"
        _measurement(f"{base}.nk_percent", pb.nk_percent, Quantity.PERCENT, out)
        _measurement(f"{base}.absolute_count", pb.absolute_count, Quantity.CELLS_PER_UL, out)
        _measurement(f"{base}.cd56_bright_percent", pb.cd56_bright_percent, Quantity.PERCENT, out)
        _measurement(f"{base}.cd56_dim_percent", pb.cd56_dim_percent, Quantity.PERCENT, out)
        _measurement(f"{base}.cd16_positive_percent", pb.cd16_positive_percent, Quantity.PERCENT, out)
        if pb.cytotoxicity is not None:
            _measurement(f"{base}.cytotoxicity.percent", pb.cytotoxicity.percent, Quantity.PERCENT, out)
            if not ET_RATIO.match(pb.cytotoxicity.effector_target_ratio.strip()):
                out.append(
                    Problem(
                        f"{base}.cytotoxicity.effector_target_ratio",
                        pb.cytotoxicity.effector_target_ratio,
                        "allowed: effector:target such as '50:1'",
                    )
                )

    u = case.nk.uterine
    if u is not None:
        q = uterine_quantity(u.density.unit)
        if q is None:
            allowed = allowed_units(Quantity.UNK_PER_100_STROMAL) + allowed_units(Quantity.UNK_PER_MM2)
            out.append(
                Problem(
                    "nk.uterine.density.unit",
                    u.density.unit,
                    f"allowed: {', '.join(allowed)} (per-100-stromal-cell and per-mm2 results are different "
                    "measures and are not converted into each other)",
                )
            )
        else:
            _measurement("nk.uterine.density", u.density, q, out)
        if u.cycle_day is not None and not CYCLE_DAY.match(u.cycle_day.strip()):
            out.append(
                Problem(
                    "nk.uterine.cycle_day",
                    u.cycle_day,
                    "allowed: 'LH+N' (days after the LH surge) or 'CDn' (cycle day)",
                )
            )
    return out
