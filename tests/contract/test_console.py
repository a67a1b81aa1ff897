"""GET /console and POST /console/compose: on only where the stage says so, strict headers, compose as raw mode."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from html.parser import HTMLParser
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.console import routes as console_routes
from chalicelib.wiring import services
from tests.conftest import CONFIG, TOKEN, read_headers

PAGES = {
    "/console": "text/html; charset=utf-8",
    "/console/console.js": "text/javascript; charset=utf-8",
    "/console/console.css": "text/css; charset=utf-8",
}
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


def form(**fields: Any) -> dict[str, Any]:
    return {
        "from": "alice@example.org", "to": ["support@example.com"], "subject": "Hello from the console",
        "text": "plain words", "html": "<p>rich <b>words</b></p>",
        "attachments": [{"filename": "report.pdf", "content_type": "application/pdf",
                         "data": base64.b64encode(PDF).decode()}],
        **fields,
    }


def switched(monkeypatch: pytest.MonkeyPatch, **switches: bool) -> None:
    """The settings with the console's switches as given: Chalice's test client sets the stage's variables anew
    for each request, so the environment cannot say it."""
    settings = dataclasses.replace(services.settings(), **switches)
    monkeypatch.setattr(services, "settings", lambda: settings)


def compose(client: Client, body: Any, token: str = TOKEN) -> Any:
    return client.http.post(
        "/console/compose", body=json.dumps(body).encode(),
        headers={**read_headers(token), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(("path", "content_type"), PAGES.items())
def test_each_file_is_served_with_its_type_and_the_strict_headers(client: Client, path: str, content_type: str) -> None:
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    name = "index.html" if path == "/console" else path.rsplit("/", 1)[1]
    assert response.body.decode("utf-8") == (console_routes.STATIC / name).read_text()


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def test_the_page_has_no_inline_script_and_no_inline_handler(client: Client) -> None:
    page = _Scripts()
    page.feed(client.http.get("/console").body.decode())
    assert page.scripts == [{"type": "module", "src": "console/console.js"}]
    assert page.handlers == []


def test_the_script_never_writes_markup() -> None:
    script = (console_routes.STATIC / "console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script


@pytest.mark.parametrize("path", [*PAGES, "/console/config"])
def test_with_console_off_every_console_route_is_404(
    client: Client, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    switched(monkeypatch, console=False, console_compose=False)
    assert client.http.get(path, headers=read_headers()).status_code == 404
    assert compose(client, form()).status_code == 404


def test_prod_has_no_console_and_local_and_dev_have_it_with_compose() -> None:
    stages = CONFIG["stages"]
    assert {name: (s["environment_variables"].get("CONSOLE"), s["environment_variables"].get("CONSOLE_COMPOSE"))
            for name, s in stages.items()} == {"local": ("on", "on"), "dev": ("on", "on"), "prod": (None, None)}


def test_config_tells_the_page_whether_it_may_compose(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.http.get("/console/config").status_code == 401
    assert json.loads(client.http.get("/console/config", headers=read_headers()).body) == {"compose": True}
    switched(monkeypatch, console_compose=False)
    assert json.loads(client.http.get("/console/config", headers=read_headers()).body) == {"compose": False}
    assert compose(client, form()).status_code == 404


def test_a_composed_mail_is_stored_as_a_raw_mode_post_and_read_back(client: Client) -> None:
    response = compose(client, form(to=["Support@Example.com", "ops@example.com"]))
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert answer["duplicate"] is False
    mail = json.loads(client.http.get(f"/mails/{answer['id']}", headers=read_headers()).body)
    assert mail["mode"] == "raw"
    assert (mail["subject"], mail["from"]["address"], mail["text"].strip(), mail["html"].strip()) == (
        "Hello from the console", "alice@example.org", "plain words", "<p>rich <b>words</b></p>",
    )
    assert mail["envelope"] == {"from": "alice@example.org", "to": ["support@example.com", "ops@example.com"]}
    [attachment] = mail["attachments"]
    assert (attachment["filename"], attachment["content_type"], attachment["sha256"]) == (
        "report.pdf", "application/pdf", hashlib.sha256(PDF).hexdigest(),
    )
    stored = client.http.get(f"/mails/{answer['id']}/attachments/1", headers=read_headers())
    assert stored.body == PDF
    assert mail["processing"]["status"] == "pending"


def test_a_scoped_token_composes_only_to_its_own_mailboxes(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READ_TOKENS", f"{TOKEN},narrow-token=*@example.com")
    services.reset()
    assert compose(client, form(to=["a@example.com", "b@elsewhere.org"]), "narrow-token").status_code == 403
    assert compose(client, form(to=["a@example.com"]), "narrow-token").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the form is a JSON object"),
        (form(extra=1), "the form is a JSON object"),
        (form(to="a@example.com"), "to must be a list of addresses"),
        (form(to=[]), "to must name 1 to 50 addresses"),
        (form(to=["x\r\nBcc: y@example.com"]), "to must be a list of addresses"),
        (form(subject="a\r\nBcc: y@example.com"), "subject must be one line"),
        (form(**{"from": "nobody"}), "from must be an address"),
        (form(attachments=[{"filename": "a", "content_type": "text/plain", "data": "%%"}]),
         "an attachment's data must be base64"),
    ],
)
def test_a_bad_form_is_a_400_that_says_why(client: Client, body: Any, message: str) -> None:
    response = compose(client, body)
    assert response.status_code == 400
    assert json.loads(response.body)["Message"].startswith(message)


def test_compose_needs_a_read_token(client: Client) -> None:
    response = client.http.post("/console/compose", body=json.dumps(form()).encode(),
                                headers={"Content-Type": "application/json"})
    assert response.status_code == 401
