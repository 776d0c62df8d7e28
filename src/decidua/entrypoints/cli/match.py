"""``decidua match``: maternal KIR against the HLA-C of partners, donors and embryos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from decidua.entrypoints.cli.assess import KbOverride
from decidua.entrypoints.cli.common import escape, fail, input_errors, out_console, print_json, print_table, split_csv

if TYPE_CHECKING:  # imported by the functions that use them (start-up time)
    from decidua.engines.matching import MatchResult
    from decidua.immunogenetics.compatibility import ResolvedC
    from decidua.knowledge.loader import KnowledgeBase


def _p(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _person(r: ResolvedC | None) -> dict[str, Any] | None:
    from decidua.immunogenetics.compatibility import genotype_label

    if r is None:
        return None
    return {
        "typing": r.text,
        "ligands": None if r.genotype is None else genotype_label(*r.genotype),
        "reason": r.reason,
    }


def match_data(result: MatchResult, kb: KnowledgeBase) -> dict[str, Any]:
    """The ``--json`` output."""
    from decidua.app.presenters import citation_data
    from decidua.immunogenetics.compatibility import genotype_label

    view = result.outlook
    kir = result.woman_kir
    release = next(
        (r.release for r in (result.woman, result.oocyte_source, result.sperm_source) if r and r.release), None
    )
    return {
        "kb_version": result.kb_version,
        "hla_release": release,
        "woman_kir_genotype": None if kir is None or kir.genotype is None else kir.genotype.value,
        "woman_kir": None if kir is None else kir.to_record(),
        "woman_hla_c": _person(result.woman),
        "oocyte_source_hla_c": _person(result.oocyte_source),
        "oocyte_donor_id": result.oocyte_donor,
        "sperm_source_hla_c": _person(result.sperm_source),
        "p_embryo_paternal_c2": None if view is None else _p(view.p_paternal_c2),
        "p_embryo_c2": None if view is None else _p(view.p_embryo_c2),
        "p_embryo_more_c2_than_mother": None if view is None else _p(view.p_more_c2_than_mother),
        "embryo_distribution": None if view is None else {k: float(v) for k, v in view.distribution.items()},
        "pairs": [
            {
                "receptor": p.receptor,
                "ligand": p.ligand,
                "effect": p.effect,
                "strength": p.strength,
                "receptor_present": p.receptor_present,
                "p_embryo_ligand": _p(p.p_embryo_ligand),
                "note": p.note,
                "citations": list(p.citations),
            }
            for p in result.pairs
        ],
        "category": result.category,
        "findings": [
            {"rule_id": f.rule_id, "status": f.status.value, "summary": f.summary, "citations": list(f.citations)}
            for f in result.findings
        ],
        "donors": [
            {
                "id": d.donor_id,
                "rank": d.rank,
                "ligands": None if d.genotype is None else genotype_label(*d.genotype),
                "p_embryo_c2": None if d.outlook is None else _p(d.outlook.p_embryo_c2),
                "p_embryo_more_c2_than_mother": None if d.outlook is None else _p(d.outlook.p_more_c2_than_mother),
                "reason": d.reason,
            }
            for d in result.donors
        ],
        "embryos": [
            {
                "id": e.embryo_id,
                "typing": e.typing,
                "ligands": e.genotype,
                "c2_more_than_mother": e.c2_more_than_mother,
                "reason": e.reason,
            }
            for e in result.embryos
        ],
        "warnings": list(result.warnings),
        "citations": [citation_data(kb, k) for k in result.citations],
    }


def _parse_people(values: list[str], prefix: str) -> list[dict[str, str]]:
    """``ID=GL`` or plain ``GL`` (then ids are prefix1, prefix2, ...)."""
    out = []
    for i, value in enumerate(values, start=1):
        ident, sep, typing = value.partition("=")
        if sep and "*" not in ident:
            out.append({"id": ident.strip(), "hla_c": typing.strip()})
        else:
            out.append({"id": f"{prefix}{i}", "hla_c": value.strip()})
    return out


def match_command(
    woman_kir: Annotated[
        str | None, typer.Option(help="Woman's KIR genes present, comma-separated (others count as absent).")
    ] = None,
    woman_kir_untested: Annotated[str | None, typer.Option(help="KIR genes not tested, comma-separated.")] = None,
    woman_hla_c: Annotated[
        str | None, typer.Option(help="Woman's HLA-C genotype, GL String (C*07:02+C*06:02).")
    ] = None,
    partner_hla_c: Annotated[str | None, typer.Option(help="Partner's HLA-C genotype (GL String).")] = None,
    sperm_donor_hla_c: Annotated[
        str | None, typer.Option(help="Sperm donor's HLA-C genotype; the embryos' paternal half comes from him.")
    ] = None,
    donor_hla_c: Annotated[
        list[str] | None, typer.Option(help="An oocyte donor's HLA-C genotype, as GL or ID=GL; repeat for several.")
    ] = None,
    embryo_hla_c: Annotated[
        list[str] | None, typer.Option(help="A typed embryo's HLA-C, as GL or ID=GL; repeatable.")
    ] = None,
    case: Annotated[Path | None, typer.Option(help="Read the genotypes from a case file instead.")] = None,
    kb_override: KbOverride = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Maternal KIR vs embryo HLA-C: Mendelian probabilities, receptor-ligand pairs, category, donor ranking."""
    from decidua.app.casefile import parse_case, read_case
    from decidua.engines.matching import match
    from decidua.knowledge.loader import load_kb

    with input_errors():
        kb = load_kb(kb_override)
        if case is not None:
            the_case = read_case(case)
        else:
            if woman_kir is None and woman_hla_c is None:
                fail("give --woman-kir and --woman-hla-c (with --partner-hla-c or donors), or --case FILE")
            genotypes: dict[str, Any] = {}
            if woman_kir is not None:
                genotypes["woman_kir"] = {"present": split_csv(woman_kir), "untested": split_csv(woman_kir_untested)}
            for key, value in (("woman_hla_c", woman_hla_c), ("partner_hla_c", partner_hla_c)):
                if value is not None:
                    genotypes[key] = value
            if sperm_donor_hla_c is not None:
                genotypes |= {"sperm_donor_hla_c": sperm_donor_hla_c, "sperm": "donor"}
            if donor_hla_c:
                genotypes["oocyte_donors"] = _parse_people(donor_hla_c, "D")
            if embryo_hla_c:
                genotypes["embryos"] = _parse_people(embryo_hla_c, "E")
            the_case = parse_case({"case_id": "match", "woman": {}, "genotypes": genotypes}, "options")
        result = match(the_case, kb)
    data = match_data(result, kb)
    if as_json:
        print_json(data)
        return
    _print(data)


def _fmt(p: float | None) -> str:
    return "n/a" if p is None else f"{p * 100:g} %"


def _print(data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append(f"Compatibility category: {data['category']}\n", style="bold")
    head.append(f"Woman KIR genotype: {data['woman_kir_genotype'] or 'n/a'}; ")
    woman = data["woman_hla_c"] or {}
    head.append(f"HLA-C ligands: {woman.get('ligands') or 'n/a'}\n")
    if data["oocyte_donor_id"] is not None:
        head.append(
            f"Oocyte donor of the cycle: {data['oocyte_donor_id']} (the probabilities use this donor's HLA-C)\n"
        )
    head.append(f"P(embryo inherits a paternal C2): {_fmt(data['p_embryo_paternal_c2'])}\n")
    head.append(f"P(embryo carries more C2 than the mother): {_fmt(data['p_embryo_more_c2_than_mother'])}\n")
    if data["embryo_distribution"]:
        head.append(
            "Embryo HLA-C ligand genotypes: "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in data["embryo_distribution"].items())
        )
    out_console.print(head)
    pairs = Table(title="Receptor-ligand pairs at the implantation site", title_justify="left")
    for col in ("maternal receptor", "present", "fetal ligand", "effect", "P(embryo carries ligand)"):
        pairs.add_column(col)
    for p in data["pairs"]:
        present = {True: "yes", False: "no", None: "not typed"}[p["receptor_present"]]
        pairs.add_row(
            p["receptor"], present, p["ligand"], f"{p['effect']} ({p['strength']})", _fmt(p["p_embryo_ligand"])
        )
    print_table(pairs)
    for f in data["findings"]:
        out_console.print(f"[bold]{escape(f['status'])}[/]: {escape(f['summary'])}", markup=True)
    if data["donors"]:
        donors = Table(
            title="Oocyte donors, least HLA-C2 load first (an option, not a standard of care)", title_justify="left"
        )
        for col in ("rank", "donor", "ligands", "P(embryo C2)", "P(more C2 than recipient)"):
            donors.add_column(col)
        for d in data["donors"]:
            donors.add_row(
                str(d["rank"] or "-"),
                d["id"],
                d["ligands"] or d["reason"] or "n/a",
                _fmt(d["p_embryo_c2"]),
                _fmt(d["p_embryo_more_c2_than_mother"]),
            )
        print_table(donors)
    for e in data["embryos"]:
        out_console.print(
            f"embryo {e['id']}: {e['ligands'] or e['reason']}; more C2 than mother: {e['c2_more_than_mother']}"
        )
    for w in data["warnings"]:
        out_console.print(f"[yellow]warning:[/] {escape(w)}", markup=True)
