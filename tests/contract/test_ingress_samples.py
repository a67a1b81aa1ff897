"""Payloads the providers themselves produced (tests/fixtures/*/README.md says where from), through their ingress."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from chalicelib.ingress.mailgun.poster import signed_fields
from chalicelib.wiring import services
from tests.conftest import read_headers
from tests.support.ingresses import MAILGUN_KEY, basic

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def stored(client: Client, response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.body
    mail_id = json.loads(response.body)["id"]
    document: dict[str, Any] = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)
    return document


def test_postmarks_sample_post_is_stored_with_every_field_read(client: Client) -> None:
    body = (FIXTURES / "postmark" / "valid_http_post.json").read_bytes()
    sample = json.loads(body)
    mail = stored(client, client.http.post(
        "/ingress/postmark", body=body, headers={"Content-Type": "application/json", "Authorization": basic()}
    ))
    assert mail["mode"] == "postmark"
    assert mail["message_id"] == "<CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.gmail.com>"
    assert mail["date"] == "2012-04-05T16:59:01+02:00"
    assert mail["subject"] == "Hi There"
    assert mail["from"] == {"name": "Bob Bobson", "address": "bob@bob.com"}
    assert mail["to"] == [{"name": "", "address": "api-hash@inbound.postmarkapp.com"}]
    assert mail["cc"] == [{"name": "Full name", "address": "sample.cc@emailDomain.com"},
                          {"name": "Another Cc", "address": "another.cc@emailDomain.com"}]
    assert mail["reply_to"] == [{"name": "", "address": "new-comment+sometoken@yeah.com"}]
    assert (mail["text"], mail["html"]) == ("\nThis is awesome!\n\n", "<p>We no speak americano</p>")
    assert (mail["spf"], mail["spam_score"], mail["envelope"]) == ("pass", -0.1, None)
    pngs = [base64.b64decode(entry["Content"]) for entry in sample["Attachments"]]
    assert [(a["filename"], a["content_type"], a["sha256"], a["disposition"]) for a in mail["attachments"]] == [
        ("chart.png", "image/png", hashlib.sha256(pngs[0]).hexdigest(), "attachment"),
        ("chart2.png", "image/png", hashlib.sha256(pngs[1]).hexdigest(), "attachment"),
    ]
    assert pngs[0].startswith(b"\x89PNG\r\n")
    assert [name for name, _ in mail["headers"]][-1] == "Message-ID"


@pytest.fixture
def mailgun_key(monkeypatch: pytest.MonkeyPatch, configured: str) -> None:
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    services.reset()


@pytest.mark.usefixtures("mailgun_key")
def test_mailguns_route_tester_post_is_stored_with_every_field_read(client: Client) -> None:
    sample = json.loads((FIXTURES / "mailgun" / "route_tester.json").read_text())
    # Mailgun's own signature is by a key that is not published: signed again, everything else as Mailgun sent it.
    fields = {name: value for name, value in sample.items() if name not in ("timestamp", "token", "signature")}
    body = urlencode([*fields.items(), *signed_fields(MAILGUN_KEY, int(time.time()))]).encode()
    mail = stored(client, client.http.post("/ingress/mailgun", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": basic()}))
    domain = "sandbox085a3b878a964897b9b9efb2395a1f5a.mailgun.org"
    assert mail["mode"] == "mailgun"
    assert mail["message_id"] == f"<517ACC75.5010709@{domain}>"
    assert mail["date"] == "2013-04-26T11:50:29-07:00"
    assert mail["subject"] == "Re: Sample POST request"
    assert mail["from"] == {"name": "Bob", "address": f"bob@{domain}"}
    assert mail["to"] == [{"name": "Alice", "address": f"alice@{domain}"}]
    assert mail["envelope"] == {"from": f"bob@{domain}", "to": [f"alice@{domain}"]}
    assert mail["text"] == sample["body-plain"]
    assert mail["html"] == sample["body-html"]
    assert "How are you doin©?" in mail["html"]
    assert len(mail["headers"]) == 14 and mail["headers"][0][0] == "Received"
    assert mail["attachments"] == []  # the sample kept none of its two


@pytest.mark.usefixtures("mailgun_key")
def test_mailguns_route_tester_post_with_its_own_stale_signature_is_refused(client: Client) -> None:
    body = urlencode(json.loads((FIXTURES / "mailgun" / "route_tester.json").read_text())).encode()
    response = client.http.post("/ingress/mailgun", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": basic()})
    assert json.loads(response.body) == {"Code": "AuthenticationError",
                                         "Message": "signature timestamp outside tolerance"}
