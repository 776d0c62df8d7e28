from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from decidua.adapters.report import content_digest, render_html, render_pdf
from decidua.app.casefile import read_case
from decidua.engines.assess import assess
from decidua.entrypoints.cli.main import app
from decidua.knowledge.loader import KnowledgeBase

from conftest import EXAMPLES

runner = CliRunner()
DATE = dt.date(2025, 6, 1)


def html_of(name: str, kb: KnowledgeBase) -> str:
    case = read_case(EXAMPLES / name)
    return render_html(case, assess(case, kb), kb, DATE)


def test_report_has_the_sections_of_a_lab_report(kb: KnowledgeBase) -> None:
    html = html_of("01-rpl-age36-nk-high.yaml", kb)
    for heading in ("Pathway", "Results", "Findings", "Options with evidence", "References", "Scope"):
        assert f"<h2>{heading}</h2>" in html
    assert "EX-01" in html
    assert "Report SHA-256" in html
    assert "not a diagnosis or a prescription" in html
    # results table: value, H flag, unit and the knowledge base's cut-offs
    assert re.search(
        r'<tr class="flag-H"><td>NK cells, CD3-CD56\+ \(blood\)</td><td class="num">20</td><td class="flag">H</td>',
        html,
    )
    assert "≤ 18 (older than 35); ≤ 24; population 4-26" in html
    # the guidelines' stances next to the clinic's finding, with the evidence against, citations numbered
    assert "<strong>ESHRE RPL guideline 2017 (table of recommendations)</strong> (strong; evidence very low" in html
    assert "There is insufficient evidence to recommend natural killer (NK) cell testing" in html
    assert "Evidence against:</span> A systematic review" in html
    assert "Chance of success in the next pregnancy" in html
    assert re.search(r"<sup>\[\d+(,\d+)*\]</sup>", html)
    assert "<svg" in html  # the peripheral NK plot


def test_report_is_deterministic_and_its_digest_covers_the_content(kb: KnowledgeBase) -> None:
    case = read_case(EXAMPLES / "09-egg-donation-donor-ranking.yaml")
    a = assess(case, kb)
    first, second = render_html(case, a, kb, DATE), render_html(case, a, kb, DATE)
    assert first == second
    digest = content_digest(case, a, kb, DATE)
    assert digest in first
    assert content_digest(case, a, kb, dt.date(2025, 6, 2)) != digest


def test_compatibility_section_with_interaction_map_and_donor_ranking(kb: KnowledgeBase) -> None:
    html = html_of("09-egg-donation-donor-ranking.yaml", kb)
    assert "Compatibility category:</strong> unfavourable" in html
    assert "embryo HLA-C ligand genotype" in html  # the interaction map's title, in its SVG
    assert "no randomised trial supports donor selection by HLA-C yet" in html
    assert html.count("<svg") == 1  # no NK results in this case: only the interaction map


def test_alternative_explanations_are_grouped_first(kb: KnowledgeBase) -> None:
    html = html_of("04-aps-alternative-explanation.yaml", kb)
    assert html.index("Alternative explanations to consider first") < html.index("<h3>NK cells</h3>")


def test_pdf_pages_render_and_are_not_blank(kb: KnowledgeBase, tmp_path: Path) -> None:
    case = read_case(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml")
    pdf_bytes = render_pdf(case, assess(case, kb), kb, DATE)
    assert pdf_bytes.startswith(b"%PDF")
    pdf = pdfium.PdfDocument(pdf_bytes)
    assert len(pdf) >= 2
    for i in range(len(pdf)):
        image = pdf[i].render(scale=0.5).to_pil().convert("L")
        histogram = image.histogram()  # 256 bins of grey levels
        dark = sum(histogram[:200])
        assert dark > 0.01 * image.width * image.height, f"page {i + 1} is blank"
        pdf[i].close()
    pdf.close()


@pytest.mark.parametrize("suffix", [".html", ".pdf"])
def test_cli_writes_the_report(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    result = runner.invoke(
        app, ["report", str(EXAMPLES / "06-sle-rif-uterine-nk.yaml"), "-o", str(out), "--report-date", "2025-06-02"]
    )
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 5000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "r.docx"], "unknown report format '.docx'"),
        (["-o", "r.html", "--report-date", "2025-13-01"], "--report-date: got '2025-13-01'"),
    ],
)
def test_cli_bad_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    argv = [
        "report",
        str(EXAMPLES / "01-rpl-age36-nk-high.yaml"),
        *[a.replace("r.", str(tmp_path / "r.")) for a in args],
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["01-rpl-age36-nk-high.yaml", "08-own-oocyte-ivf-kir-aa.yaml"])
def test_citations_are_numbered_in_order_of_first_appearance(kb: KnowledgeBase, name: str) -> None:
    html = html_of(name, kb)
    body, references = html.split('<section class="references">')
    seen: list[int] = []
    for group in re.findall(r"<sup>\[([\d,]+)\]</sup>", body):
        for n in map(int, group.split(",")):
            if n not in seen:
                seen.append(n)
    assert seen == list(range(1, len(seen) + 1))
    # every reference listed is cited in the text, and each one is printed as the knowledge base words it
    listed = [int(n) for n in re.findall(r'<li value="(\d+)">', references)]
    assert listed == seen
    assert " *</li>" in references  # unverified references are marked, and the marker is explained once
    assert references.count("could not be checked against a record of the source") == 1


def test_report_of_a_patient_outside_the_pathway_puts_the_work_up_apart(kb: KnowledgeBase) -> None:
    html = html_of("11-not-rpl-high-nk.yaml", kb)
    assert "Work-up does not apply." in html
    body, apart = html.split('<section class="not-indicated">')
    assert "Corticosteroids" not in body.split("<h2>Findings</h2>")[1]
    assert "meets neither the RPL nor the RIF definition in force" in apart
    assert "Corticosteroids (e.g. prednisolone)" in apart


def test_compatibility_block_cites_its_sources(kb: KnowledgeBase) -> None:
    html = html_of("08-own-oocyte-ivf-kir-aa.yaml", kb)
    assert re.search(r"Compatibility category:</strong> \w+ <sup>\[\d+(,\d+)*\]</sup>", html)
    assert "(not possible)" in html  # the C2C2 column of a couple who cannot have C2C2 embryos


def test_report_date_falls_back_to_today_and_says_so(kb: KnowledgeBase) -> None:
    case = read_case(EXAMPLES / "08-own-oocyte-ivf-kir-aa.yaml")
    assert case.test_date is None
    html = render_html(case, assess(case, kb), kb)
    assert f'{dt.date.today().isoformat()}</span> <span class="muted">(today (no test date given))' in html


def test_uterine_result_row_and_plot(kb: KnowledgeBase) -> None:
    html = html_of("06-sle-rif-uterine-nk.yaml", kb)
    assert re.search(
        r"Uterine NK, CD56\+ \(endometrium\)</td><td class=\"num\">5.2</td><td class=\"flag\">H</td>", html
    )
    assert "reference 1.2-4.5 per 100 stromal cells" in html  # the uterine plot's legend, from the KB rule
    assert html.count("<svg") == 1


def test_cli_invalid_case_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "case.yaml"
    bad.write_text("case_id: X\nwoman: {age_years: 30}\nnk: {peripheral: {nk_percent: {value: 140, unit: '%'}}}\n")
    out = tmp_path / "r.pdf"
    result = runner.invoke(app, ["report", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert "nk.peripheral.nk_percent" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.yaml"]


def test_without_the_pdf_engine_the_cli_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as on a machine without WeasyPrint's libraries
    out = tmp_path / "r.pdf"
    result = runner.invoke(app, ["report", str(EXAMPLES / "01-rpl-age36-nk-high.yaml"), "-o", str(out)])
    assert result.exit_code == 1
    assert "apt install libpango-1.0-0" in result.stderr
    assert "The HTML report works without them" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # nothing half-written
