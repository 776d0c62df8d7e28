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
