"""The mail console in a real browser (Debian's Chromium, driven by Playwright) against `make dev`.

One stack and one browser for the module: sign in, see mail arrive without a
reload (sent over make dev's SMTP port), open it, find that its HTML can neither run script nor fetch anything
until asked, download an attachment, retry a failed mail, compose one. Each
screen is kept as a PNG under the test's output (or CONSOLE_SCREENSHOTS), which
docs/console.md shows.
"""

from __future__ import annotations

import base64
import http.server
import os
import re
import shutil
import smtplib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import ROOT, free_port
from tests.e2e.test_dev_loop import COPIED, NOT_COPIED, Dev

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# What the probe learned: a machine with no network but loopback (docs/console.md, "Testing").
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
FAIL_SWITCH = "probe-fails"
PROBE = '''"""A mailbox the console's browser test adds: it fails while the switch file exists."""

from pathlib import Path

from chalicelib.model import StoredMail

SWITCH = Path(__file__).resolve().parents[2] / "probe-fails"


def receive(mail: StoredMail) -> None:
    if SWITCH.exists():
        raise RuntimeError("the probe is switched to fail")
'''
PROBE_ROUTE = '''

# Added by tests/e2e/test_console_browser.py: mail to probe@example.com goes to the probe mailbox.
from chalicelib.delivery.routing import Route as _Route, Router as _Router, recipient as _recipient
from chalicelib.mailboxes import console_probe as _probe

_shipped_router = router


def router(*args, **kwargs):
    return _Router([_Route("probe", _recipient("probe@example.com"), _probe.receive),
                    *_shipped_router(*args, **kwargs).routes])
'''
PDF = b"%PDF-1.4\n%console test\n" + bytes(range(256)) * 4


def message(subject: str, to: str = "support@example.com", html: str | None = None,
            attachment: bytes | None = None, sender: str = "Customer <c@example.org>") -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
    text = "Hello from the console test.\r\n"
    body = f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
    if html is not None:
        body += f"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
    body += "--alt--\r\n"
    if attachment is None:
        return (head + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n' + body).encode()
    encoded = base64.encodebytes(attachment).decode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
        '--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n' + body
        + '--mix\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="invoice.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "--mix--\r\n"
    ).encode()


class Hits(http.server.BaseHTTPRequestHandler):
    """A local web server that records every request: where a mail's remote content would go."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Hits.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(base64.b64decode("R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAUwAOw=="))

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def remote() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hits)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("console-project")
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, root / name, ignore=NOT_COPIED)
        else:
            shutil.copy2(ROOT / name, root / name)
    mailboxes = root / "chalicelib" / "mailboxes"
    (mailboxes / "console_probe.py").write_text(PROBE)
    (mailboxes / "__init__.py").write_text((mailboxes / "__init__.py").read_text() + PROBE_ROUTE)
    return root


@pytest.fixture(scope="module")
def dev(project: Path) -> Iterator[Dev]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILS_"))}
    env.update(PORT=str(free_port()), MOTO_PORT=str(free_port()), SMTP_PORT=str(free_port()),
               DEV_STATE_DIR=str(project / ".dev"), MAX_ATTEMPTS="1")
    stack = Dev(project, env)
    yield stack
    stack.kill()
    if os.environ.get("SHOW_DEV_CONSOLE"):
        print("\n".join(stack.lines))


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("CONSOLE_SCREENSHOTS")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("console-screens")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"NO BROWSER TEST: {CHROMIUM} is missing (Debian's chromium package; `make test` installs it "
                    "where it runs as root with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, dev: Dev) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert errors == []


def send(dev: Dev, source: bytes) -> str:
    """Sent over make dev's SMTP port, as a program would send it; the id, from the mail's own Message-ID."""
    message_id = f"<console-{uuid.uuid4().hex}@example.org>"
    # smtplib sends bytes as they are: line ends made CRLF here, as a mail program writes them.
    source = re.sub(rb"\r?\n", b"\r\n", f"Message-ID: {message_id}\r\n".encode() + source)
    recipients = re.findall(rb"^To: (\S+)", source, re.MULTILINE)[0].decode()
    with smtplib.SMTP("127.0.0.1", int(dev.env["SMTP_PORT"]), timeout=30) as client:
        client.sendmail("c@example.org", [recipients], source)
    found = requests.get(f"{dev.base}/mails", params={"limit": 100},
                         headers={"Authorization": f"Bearer {dev.token}"}, timeout=30).json()["mails"]
    for summary in found:
        if (dev.read(summary["id"])["message_id"] or "").strip("<>") == message_id.strip("<>"):
            return str(summary["id"])
    raise AssertionError(f"{message_id} was not stored")


def row(page: Any, subject: str) -> Any:
    return page.locator("#mails tr", has_text=subject)


def test_1_signing_in_shows_the_mailboxes_and_new_mail_appears_without_a_reload(
    dev: Dev, page: Any, screens: Path
) -> None:
    page.goto(f"{dev.base}/console")
    page.screenshot(path=screens / "sign-in.png")
    page.fill("#token", "wrong-token")
    page.press("#token", "Enter")
    page.locator("#login-error").filter(has_text="That token is not one of this service's.").wait_for()
    page.fill("#token", dev.token)
    page.press("#token", "Enter")
    page.locator("#list-title").filter(has_text="All mail").wait_for()
    assert page.evaluate("sessionStorage.length") == 1
    assert dev.token not in page.url
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")

    mail_id = send(dev, message("Order #1042 shipped", sender="Shop <orders@shop.example>"))
    send(dev, message("Weekly report", to="reports@example.com", sender="Metrics <metrics@example.net>"))
    row(page, "Order #1042 shipped").wait_for()
    row(page, "Weekly report").wait_for()
    assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations
    page.locator("#boxes button", has_text="reports@example.com").wait_for()
    assert page.locator("#boxes button").all_inner_texts() == ["All mail", "reports@example.com",
                                                               "support@example.com"]
    page.locator(f'#mails tr[data-id="{mail_id}"] .badge', has_text="delivered").wait_for()
    page.screenshot(path=screens / "inbox.png")

    page.fill("#search", "weekly")
    expect(page.locator("#mails tr")).to_have_count(1)
    assert page.locator("#mails tr").all_inner_texts()[0].startswith("metrics@example.net")
    page.fill("#search", "")
    page.locator("#boxes button", has_text="support@example.com").click()
    expect(page.locator("#mails tr")).to_have_count(1)
    expect(page.locator("#mails tr")).to_contain_text("Order #1042 shipped")


def test_2_the_html_preview_runs_no_script_and_fetches_nothing_until_asked(
    dev: Dev, page: Any, remote: str, screens: Path
) -> None:
    html = (
        f"<html><head><link rel='stylesheet' href='{remote}/style.css'>"
        f"<meta http-equiv='refresh' content='0; url={remote}/refresh'></head><body>"
        "\n<h1 id='greeting'>Your invoice is ready</h1>"
        "\n<p style='color:#2456d3'>Styled inline, as mail is.</p>"
        f"\n<img src='{remote}/pixel.gif' alt='tracking pixel' id='pixel'>"
        f"\n<script>document.body.setAttribute('data-ran', 'yes'); fetch('{remote}/script-ran');"
        "try { parent.document.title = 'pwned' } catch (e) {}</script>"
        f"\n<form action='{remote}/form' method='get'><input name='q' value='x'><button id='go'>go</button></form>"
        "</body></html>"
    )
    Hits.seen.clear()
    page.locator("#boxes button", has_text="All mail").click()
    mail_id = send(dev, message("Invoice with remote content", html=html, attachment=PDF))
    row(page, "Invoice with remote content").wait_for()
    row(page, "Invoice with remote content").focus()
    page.keyboard.press("Enter")  # opened from the keyboard
    page.locator("#detail-subject").filter(has_text="Invoice with remote content").wait_for()
    frame = page.frame_locator("#html-frame")
    frame.locator("#greeting").filter(has_text="Your invoice is ready").wait_for()
    frame.locator("#go").click(timeout=5000)  # a form in the mail cannot be sent (no allow-forms)
    page.wait_for_timeout(1500)
    assert Hits.seen == []
    assert frame.locator("body[data-ran]").count() == 0
    assert page.title() == "Mail console"
    assert page.locator("#html-frame").get_attribute("sandbox") == ""
    page.screenshot(path=screens / "mail.png")

    page.click("#load-remote")
    frame.locator("#greeting").wait_for()
    page.wait_for_timeout(1500)
    # Asked for: the images load; the style sheet, the script, the refresh and the form still do not.
    assert sorted(set(Hits.seen)) == ["/pixel.gif"]
    assert frame.locator("body[data-ran]").count() == 0

    with page.expect_download() as download:
        page.locator("#attachments button", has_text="invoice.pdf").click()
    assert download.value.suggested_filename == "invoice.pdf"
    assert Path(download.value.path()).read_bytes() == PDF
    with page.expect_download() as download:
        page.click("#download-eml")
    assert download.value.suggested_filename == f"{mail_id}.eml"
    eml = Path(download.value.path()).read_bytes()
    assert b"\r\nFrom: Customer <c@example.org>\r\nTo: support@example.com\r\n" in eml

    page.click("#tab-raw")
    page.locator("#raw-body").filter(has_text="Subject: Invoice with remote content").wait_for()
    page.click("#tab-headers")
    page.locator("#all-headers tr", has_text="Subject").wait_for()
    page.screenshot(path=screens / "headers.png")
    page.keyboard.press("Escape")
    page.locator("#list-view").wait_for()
    assert page.evaluate("document.activeElement.dataset.id") == mail_id


def test_3_a_failed_mail_is_retried_from_its_page(dev: Dev, page: Any, project: Path, screens: Path) -> None:
    (project / FAIL_SWITCH).touch()
    mail_id = send(dev, message("Handler will fail", to="probe@example.com"))
    page.locator(f'#mails tr[data-id="{mail_id}"] .badge', has_text="failed").wait_for()
    page.locator("#status-filter").select_option("failed")
    expect(page.locator("#mails tr")).to_have_count(1)
    page.locator(f'#mails tr[data-id="{mail_id}"]').click()
    page.click("#tab-processing")
    page.locator("#processing tr", has_text="the probe is switched to fail").wait_for()
    page.screenshot(path=screens / "failed.png")
    # With MAX_ATTEMPTS=1 the queue's maxReceiveCount (6, for 5 attempts) shows the spent message five more times
    # before it is dead-lettered; each of those marks the mail failed again, so the retry waits for the last.
    dev.wait_for(rf'"id":"{mail_id}","outcome":"failed".*"receive_count":6', timeout=60)
    (project / FAIL_SWITCH).unlink()
    page.click("#retry")
    page.locator("#retry-result").filter(has_text="Sent back to its handler: pending.").wait_for()
    page.keyboard.press("Escape")
    page.locator("#status-filter").select_option("")
    page.locator(f'#mails tr[data-id="{mail_id}"] .badge', has_text="delivered").wait_for()
    # The last error stays on record after the retry delivered it.
    assert dev.read(mail_id)["processing"] == {
        "status": "delivered", "attempts": 1,
        "error": {"class": "RuntimeError", "message": "the probe is switched to fail", "route": "probe"},
    }


def test_4_a_mail_composed_in_the_console_arrives_through_the_webhook(
    dev: Dev, page: Any, screens: Path
) -> None:
    page.click("#compose-open")
    page.fill("#c-from", "tester@example.org")
    page.fill("#c-to", "support@example.com")
    page.fill("#c-subject", "Composed in the console")
    page.fill("#c-text", "Typed in a form.")
    page.fill("#c-html", "<p>Typed in a <b>form</b>.</p>")
    page.set_input_files("#c-files", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a note\n"}])
    page.screenshot(path=screens / "compose.png")
    page.click("#compose-send")
    page.locator("#detail-subject").filter(has_text="Composed in the console").wait_for()
    page.frame_locator("#html-frame").locator("b").filter(has_text="form").wait_for()
    mail_id = page.get_attribute("#detail-view", "data-id")
    stored = dev.read(mail_id)
    assert (stored["mode"], stored["subject"], stored["envelope"]) == (
        "raw", "Composed in the console", {"from": "tester@example.org", "to": ["support@example.com"]}
    )
    attachment = requests.get(f"{dev.base}/mails/{mail_id}/attachments/1",
                              headers={"Authorization": f"Bearer {dev.token}"}, timeout=30)
    assert attachment.content == b"a note\n"
    page.keyboard.press("Escape")
    page.click("#logout")
    page.locator("#login-view").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
