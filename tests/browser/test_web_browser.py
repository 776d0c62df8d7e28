"""The main job in a real browser: ``decidua serve`` on a fresh SQLite file, driven through Debian's chromium.

The server runs as a user starts it (the console script, in its own process); Playwright drives the system
chromium (``executable_path``, headless; Playwright never downloads a browser here). The test makes the first
admin through the setup link the server prints, enters a case in the form, sees a flagged finding and downloads
the PDF report. Without chromium the test is skipped, except under CI, where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "a long enough admin password"
NEW_PASSWORD = "another long admin passphrase"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"chromium is not installed at {CHROMIUM}; .ci/run installs Debian's chromium", pytrace=False)
    pytest.skip("Debian's chromium is not installed (apt install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _decidua() -> str:
    script = Path(sys.executable).with_name("decidua")
    return str(script) if script.exists() else "decidua"


@contextmanager
def running_server(tmp_path: Path, *options: str) -> Iterator[tuple[str, str, Path]]:
    """``decidua serve`` on a new SQLite file: (base URL, the printed setup link, the database file)."""
    database = tmp_path / "data" / "clinic.sqlite3"
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [_decidua(), "serve", "--port", str(port), "--database-url", f"sqlite:///{database}", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    setup = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"(http://\S+/setup\?token=\S+)", line):
                setup = m.group(1)
            if "Application startup complete" in line:
                break
        output = "".join(lines)
        assert "Application startup complete" in output, output
        assert f"SQLite file {database}" in output  # the path of the embedded database is shown
        assert f"running at http://127.0.0.1:{port}/" in output
        assert setup is not None, output
        assert database.exists()
        yield f"http://127.0.0.1:{port}", setup, database
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    with running_server(tmp_path) as running:
        yield running


def test_first_admin_enters_a_case_sees_a_flag_and_downloads_the_pdf(server, tmp_path: Path) -> None:
    base, setup_link, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_context(accept_downloads=True).new_page()

            # Login is required: the case list sends us to the login page.
            page.goto(f"{base}/cases")
            assert page.url.startswith(f"{base}/login")
            assert "No accounts yet" in page.content()

            # First start: the printed link creates the administrator and logs in.
            page.goto(setup_link)
            page.fill("input[name=email]", "admin@clinic.test")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=password_again]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/cases")

            # A case through the form: 36 years old, two miscarriages, peripheral NK 30 %.
            page.click("text=New case")
            page.fill("input[name=case_id]", "BROWSER-1")
            page.fill("input[name='woman.age_years']", "36")
            for i in range(2):
                page.click("button.add-row[data-section=pregnancies]")
                page.select_option(f"select[name='pregnancies[{i}].outcome']", "miscarriage")
                page.fill(f"input[name='pregnancies[{i}].gestational_week']", str(7 + i))
            page.fill("input[name='nk.peripheral.nk_percent.value']", "140")
            page.click("button.primary[type=submit]")

            # Out of range: the form comes back with the message next to the field and what was typed.
            invalid = page.locator("label.field.invalid").filter(
                has=page.locator("input[name='nk.peripheral.nk_percent.value']")
            )
            assert invalid.count() == 1
            assert "0 to 100" in invalid.inner_text()
            assert page.input_value("input[name='case_id']") == "BROWSER-1"

            page.fill("input[name='nk.peripheral.nk_percent.value']", "30")
            page.click("button.primary[type=submit]")
            page.wait_for_url(re.compile(rf"{re.escape(base)}/cases/\d+$"))

            # The assessment: RPL (two miscarriages) and the peripheral NK finding flagged (30 % > 18 % over 35).
            finding = page.locator("#finding-nk\\.peripheral\\.clinic")
            assert finding.locator(".status-flagged").count() == 1
            assert "30" in finding.inner_text()
            assert page.locator("text=BROWSER-1").count() >= 1

            with page.expect_download() as download_info:
                page.click("text=Report PDF")
            target = tmp_path / "report.pdf"
            download_info.value.save_as(target)
            data = target.read_bytes()
            assert data.startswith(b"%PDF")
            assert len(data) > 10_000

            # The administrator changes the password from the account page (the name in the header) and can
            # log in with the new one only.
            page.click("a.who")
            page.fill("input[name=current_password]", PASSWORD)
            page.fill("input[name=new_password]", NEW_PASSWORD)
            page.fill("input[name=new_password_again]", NEW_PASSWORD)
            page.click("form.card button[type=submit]")
            assert "Your password was changed" in page.content()
            page.click("text=Log out")
            page.wait_for_url(f"{base}/login")
            for password, landing in ((PASSWORD, "/login"), (NEW_PASSWORD, "/cases")):
                page.fill("input[name=email]", "admin@clinic.test")
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}{landing}")
            assert page.locator("text=BROWSER-1").count() == 1
        finally:
            browser.close()


def _first_admin(base: str, setup_link: str) -> None:
    import httpx

    token = setup_link.split("token=", 1)[1]
    form = {"token": token, "email": "admin@clinic.test", "password": PASSWORD, "password_again": PASSWORD}
    assert httpx.post(f"{base}/setup", data=form).status_code == 303


def _logins(base: str, forwarded: list[str], password: str) -> list[int]:
    import httpx

    body = {"email": "admin@clinic.test", "password": password}
    return [httpx.post(f"{base}/api/session", json=body, headers={"X-Forwarded-For": f}).status_code for f in forwarded]


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_addresses_count_only_from_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    """Without --trusted-proxy, X-Forwarded-For cannot give a guesser a fresh client address per request."""
    options = ("--trusted-proxy", "127.0.0.1") if trusted else ()
    with running_server(tmp_path, *options) as (base, setup_link, _):
        _first_admin(base, setup_link)
        assert _logins(base, [f"203.0.113.{i}" for i in range(5)], "wrong guess") == [401] * 5
        # the right password from yet another forwarded address: a new client only behind a trusted proxy
        assert _logins(base, ["198.51.100.7"], PASSWORD) == [200 if trusted else 429]


# --- triage from the case list, the case page, and a phone ------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 400, "height": 860}
# (example, RPL, RIF, blood NK, uterine NK) as the case list shows them
TRIAGED = [
    ("01-rpl-age36-nk-high.yaml", "EX-01", "met", "not met", "above", "not assessed"),
    ("06-sle-rif-uterine-nk.yaml", "EX-06", "not met", "met", "not assessed", "outside the range (high)"),
    ("08-own-oocyte-ivf-kir-aa.yaml", "EX-08", "met", "met", "not above", "not assessed"),
    ("12-unknown-history.yaml", "EX-12", "not assessed", "not assessed", "above", "not assessed"),
    ("17-unexplained-rpl-prognosis.yaml", "EX-17", "met", "not met", "not assessed", "not assessed"),
]


@pytest.fixture
def screenshots(tmp_path: Path, capsys: pytest.CaptureFixture[str], record_property: Any) -> Path:
    """Where the screenshots go for review: ``$DECIDUA_SCREENSHOTS`` if set, else a folder of the test's own
    temporary directory; printed (past the output capture) and recorded as a property of the test."""
    folder = Path(os.environ.get("DECIDUA_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    with capsys.disabled():
        print(f"\nscreenshots: {folder}")
    record_property("screenshots", str(folder))
    return folder


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "admin@clinic.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/cases")


def _rows(page: Any) -> dict[str, list[str]]:
    """The case list's rows: case id -> the texts of the RPL, RIF, blood NK and uterine NK cells."""
    out = {}
    for row in page.locator("table.triage tbody tr").all():
        columns = ("rpl", "rif", "blood_nk", "uterine_nk")
        out[row.locator("td").first.inner_text().strip()] = [
            row.locator(f"td.triage-{name}").inner_text().strip() for name in columns
        ]
    return out


def _fits(page: Any, width: int) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling of the page)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _on_screen(locator: Any, width: int) -> None:
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, box


def _not_cut(locator: Any) -> None:
    """A text box shows all its text (what it holds is not wider than the box)."""
    assert locator.evaluate("e => e.scrollWidth <= e.clientWidth"), locator.input_value()


def test_case_list_triage_case_page_and_phone_width(tmp_path: Path, screenshots: Path) -> None:
    with running_server(tmp_path) as (base, setup_link, _), sync_api.sync_playwright() as p:
        _first_admin(base, setup_link)
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            _log_in(page, base)
            for name, *_ in TRIAGED:  # through the import page, as a user pastes a case file
                page.goto(f"{base}/cases/import")
                page.fill("textarea[name=text]", (EXAMPLES / name).read_text(encoding="utf-8"))
                page.click("button.primary[type=submit]")
                page.wait_for_url(re.compile(rf"{re.escape(base)}/cases/\d+$"))

            # The list: a column per status in the rule kind's words, and when each case was assessed.
            page.goto(f"{base}/cases")
            headings = [h.strip() for h in page.locator("table.triage thead th").all_inner_texts()]
            assert headings[:6] == ["Case id", "RPL", "RIF", "Blood NK", "Uterine NK", "Last assessed"]
            assert _rows(page) == {ref: list(words) for _, ref, *words in reversed(TRIAGED)}
            assert page.locator("table.triage td.assessed").first.inner_text().strip().endswith("UTC")
            assert page.locator("tr:has-text('EX-06') td.triage-uterine_nk .status-flagged").count() == 1
            assert page.locator("tr:has-text('EX-12') td.triage-rpl .status-not_assessed").count() == 1
            page.screenshot(path=screenshots / "desktop-case-list.png", full_page=True)

            # Filters: RPL met, then any NK flag (the quick link), then RPL not assessed from the select.
            page.select_option("select[name=rpl]", "flagged")
            page.click("form.filters button[type=submit]")
            page.wait_for_url(re.compile(r".*rpl=flagged.*"))
            assert set(_rows(page)) == {"EX-01", "EX-08", "EX-17"}
            assert "Filtered: 1–3 of 3" in page.locator("main p.meta").inner_text()
            page.screenshot(path=screenshots / "desktop-case-list-rpl-met.png", full_page=True)
            page.click("nav.quick >> text=any NK flagged")
            page.wait_for_url(re.compile(r".*nk=flagged.*"))
            assert set(_rows(page)) == {"EX-01", "EX-06", "EX-12"}
            page.goto(f"{base}/cases?rpl=not_assessed&q=ex")
            assert set(_rows(page)) == {"EX-12"}
            assert page.locator("select[name=rpl]").input_value() == "not_assessed"

            # The case page: the KIR interaction plot at its drawn size, not stretched across the page.
            page.goto(f"{base}/cases")
            page.click("text=EX-08")
            page.wait_for_url(re.compile(rf"{re.escape(base)}/cases/\d+$"))
            case_url = page.url
            plot = page.locator("figure:has-text('KIR / HLA-C interactions') svg")
            drawn = plot.evaluate("e => e.width.baseVal.valueInSpecifiedUnits * 4 / 3")  # pt -> px
            width = plot.bounding_box()["width"]
            assert width <= drawn + 1
            assert width < 0.7 * page.locator("main").bounding_box()["width"]
            page.screenshot(path=screenshots / "desktop-case-page.png", full_page=True)
            page.locator("section:has(> .plots)").screenshot(path=screenshots / "desktop-case-plots.png")

            # The form: the uterine NK unit shows its whole unit.
            page.goto(f"{base}/cases/new")
            _not_cut(page.locator("input[name='nk.uterine.density.unit']"))
            assert page.input_value("input[name='nk.uterine.density.unit']") == "per 100 stromal cells"
            page.locator("fieldset:has(input[name='nk.uterine.density.unit'])").screenshot(
                path=screenshots / "desktop-form-nk-section.png"
            )

            # A phone, 400 px wide: every link of the header on screen and working, the page no wider.
            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            _log_in(phone, base)
            _fits(phone, PHONE["width"])
            links = ["Cases", "New case", "Import", "Knowledge base", "Users", "Audit"]
            for text in links:
                _on_screen(phone.locator("header.top nav a", has_text=re.compile(f"^{text}$")), PHONE["width"])
            _on_screen(phone.locator("header.top button:has-text('Log out')"), PHONE["width"])
            _on_screen(phone.locator("header.top a.who"), PHONE["width"])
            phone.screenshot(path=screenshots / "phone-case-list.png", full_page=True)
            assert set(_rows(phone)) == {ref for _, ref, *_ in TRIAGED}
            _on_screen(phone.locator("tr:has-text('EX-06') td.triage-uterine_nk .status"), PHONE["width"])
            phone.click("header.top nav >> text=Audit")
            phone.wait_for_url(f"{base}/admin/audit")
            _fits(phone, PHONE["width"])
            phone.click("header.top nav >> text=Users")
            phone.wait_for_url(f"{base}/admin/users")
            _fits(phone, PHONE["width"])
            phone.screenshot(path=screenshots / "phone-users.png", full_page=True)

            # The form at phone width: fields on screen, the unit whole, a case entered and saved.
            phone.click("header.top nav >> text=New case")
            phone.wait_for_url(f"{base}/cases/new")
            _fits(phone, PHONE["width"])
            unit = phone.locator("input[name='nk.uterine.density.unit']")
            _on_screen(unit, PHONE["width"])
            _not_cut(unit)
            phone.fill("input[name=case_id]", "PHONE-1")
            phone.fill("input[name='woman.age_years']", "38")
            _on_screen(phone.locator("input[name='woman.age_years']"), PHONE["width"])
            for i in range(3):
                phone.click("button.add-row[data-section=pregnancies]")
                phone.select_option(f"select[name='pregnancies[{i}].outcome']", "miscarriage")
            phone.fill("input[name='nk.uterine.density.value']", "6.1")
            phone.fill("input[name='nk.uterine.cycle_day']", "LH+7")
            phone.screenshot(path=screenshots / "phone-form.png", full_page=True)
            phone.click("button.primary[type=submit]")
            phone.wait_for_url(re.compile(rf"{re.escape(base)}/cases/\d+$"))
            _fits(phone, PHONE["width"])
            phone.screenshot(path=screenshots / "phone-case-page.png", full_page=True)
            phone.goto(case_url)
            _fits(phone, PHONE["width"])
            phone.screenshot(path=screenshots / "phone-case-page-kir.png", full_page=True)
            phone.locator("section:has(> .plots)").screenshot(path=screenshots / "phone-case-plots.png")
            phone.goto(f"{base}/cases?nk=flagged")
            assert set(_rows(phone)) == {"EX-01", "EX-06", "EX-12", "PHONE-1"}
        finally:
            browser.close()
    assert sorted(f.name for f in screenshots.iterdir()) == sorted(
        [
            "desktop-case-list.png",
            "desktop-case-list-rpl-met.png",
            "desktop-case-page.png",
            "desktop-case-plots.png",
            "desktop-form-nk-section.png",
            "phone-case-list.png",
            "phone-users.png",
            "phone-form.png",
            "phone-case-page.png",
            "phone-case-page-kir.png",
            "phone-case-plots.png",
        ]
    )


# --- stored script payloads never run -----------------------------------------------------------------------------

PAYLOAD = '"\'><img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2;alert(2)</script>'


def _case_with_payloads() -> dict[str, Any]:
    """A case with the payload in every free-text field a clinician can fill (case id, notes, details, methods,
    typing source, donor and embryo ids, a free condition code)."""
    return {
        "case_id": "XSS" + PAYLOAD[:150],
        "woman": {"age_years": 36},
        "note": PAYLOAD,
        "conditions": ["other:" + PAYLOAD],
        "pregnancies": [{"outcome": "miscarriage"}, {"outcome": "miscarriage"}],
        "investigations": {
            "karyotype_woman": {"result": "abnormal", "detail": PAYLOAD},
            "uterine_anatomy": {"result": "normal", "method": PAYLOAD, "detail": PAYLOAD},
            "thrombophilia": {"result": "normal", "detail": PAYLOAD},
        },
        "nk": {
            "peripheral": {"nk_percent": {"value": 30, "unit": "%"}, "method": PAYLOAD},
            "uterine": {"density": {"value": 12, "unit": "per 100 stromal cells"}, "method": PAYLOAD},
        },
        "genotypes": {
            "woman_kir": {"present": ["2DL1", "2DL3", "3DL1"], "source": PAYLOAD},
            "woman_hla_c": "C*07:01+C*03:04",
            "partner_hla_c": "C*07:02+C*04:01",
            "oocytes": "donor",
            "oocyte_donors": [{"id": PAYLOAD[:60], "hla_c": "C*06:02+C*05:01"}],
            "embryos": [{"id": PAYLOAD[:60], "hla_c": "C*07:01+C*04:01"}],
        },
    }


def test_stored_script_payloads_never_run_on_any_page(tmp_path: Path) -> None:
    """Every page that shows a stored text is opened with a dialog hook: none may open a dialog or set the
    payload's flag, and the payload is shown as text (escaped), not turned into elements."""
    import httpx

    with running_server(tmp_path) as (base, setup_link, _), sync_api.sync_playwright() as p:
        _first_admin(base, setup_link)
        with httpx.Client(base_url=base) as api:
            session = api.post("/api/session", json={"email": "admin@clinic.test", "password": PASSWORD})
            csrf = {"X-CSRF-Token": session.json()["csrf_token"]}
            created = api.post("/api/cases", json={"case": _case_with_payloads()}, headers=csrf)
            assert created.status_code == 201, created.text
            number = created.json()["case"]["number"]
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_context(viewport=DESKTOP).new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            _log_in(page, base)
            pages = [
                "/cases",
                "/cases?q=" + httpx.QueryParams({"x": PAYLOAD}).get("x", ""),
                f"/cases/{number}",
                f"/cases/{number}/versions/1",
                f"/cases/{number}/edit",
                f"/cases/{number}/lab",
                f"/cases/{number}/report.html",
                "/admin/audit",
            ]
            for path in pages:
                page.goto(base + path)
                page.wait_for_load_state("load")
                assert page.evaluate("window.__xss") is None, path
                assert page.locator("img[src=x]").count() == 0, path
            page.goto(f"{base}/cases/{number}")
            assert PAYLOAD in page.locator("main").inner_text()  # shown, as text
            # the import page shows what was pasted back with its problems
            page.goto(f"{base}/cases/import")
            page.fill("textarea[name=text]", f"case_id: x\nwoman: {{age_years: '{PAYLOAD}'}}\n")
            page.click("button.primary[type=submit]")
            page.wait_for_load_state("load")
            assert page.evaluate("window.__xss") is None
            assert dialogs == []
        finally:
            browser.close()
