"""Every ingress holds the one status contract, and one message through any two of them is one mail.

Each message is posted the way its provider documents it (the posters beside
each ingress), through Chalice's test client, against moto's server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.ingress.mailgun import poster as mailgun_poster
from tests.conftest import BUCKET, TABLE, read_headers
from tests.support.ingresses import BOX, MAILGUN_KEY, MAILGUN_OLD_KEY, MODES, POSTERS, Hook, basic, down, inject

__all__ = ["inject"]

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EML = (
    b"From: =?UTF-8?B?w4lsb2RpZSBNYXJ0aW4=?= <sender@example.org>\r\n"
    b"To: Box <box@example.com>\r\n"
    b"Cc: other@example.net\r\n"
    b"Subject: =?UTF-8?Q?R=C3=A9union_de_l=27=C3=A9quipe?=\r\n"
    b"Date: Tue, 01 Dec 2026 09:30:00 +0100\r\n"
    b"Message-ID: <ingress-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Bonjour, la r=C3=A9union est =C3=A0 10 h.\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    + "<p>Bonjour, la réunion est à 10 h.</p>\r\n".encode()
    + b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="agenda.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + __import__("base64").encodebytes(PDF).replace(b"\n", b"\r\n")
    + b"--outer--\r\n"
)
NEW = ("relay", "postmark", "postmark-raw", "mailgun", "mailgun-mime", "sendgrid")


@pytest.fixture(autouse=True)
def mailgun_keys(monkeypatch: pytest.MonkeyPatch, configured: str) -> None:
    """Two signing keys, as during a rotation; MAIL_CREDENTIALS (conftest) is checked too."""
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", f"{MAILGUN_OLD_KEY},{MAILGUN_KEY}")


def mails(dynamodb: Any) -> list[dict[str, Any]]:
    return [item for item in dynamodb.scan(TableName=TABLE)["Items"] if item["sk"]["S"] == "mail"]


def objects(s3: Any) -> list[str]:
    return sorted(entry["Key"] for entry in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def answer(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status_code, json.loads(response.body)


@pytest.mark.parametrize("ingress", NEW)
def test_a_message_posted_as_the_provider_posts_it_is_stored_with_the_ingress_named(
    client: Client, ingress: str
) -> None:
    status, body = answer(POSTERS[ingress](client, EML))
    assert (status, body["duplicate"]) == (200, False)
    mail = json.loads(client.http.get(f"/mails/{body['id']}", headers=read_headers()).body)
    assert mail["mode"] == MODES[ingress]
    assert mail["message_id"] == "<ingress-1@example.org>"
    assert mail["subject"] == "Réunion de l'équipe"
    assert mail["from"] == {"name": "Élodie Martin", "address": "sender@example.org"}
    assert mail["to"] == [{"name": "Box", "address": "box@example.com"}]
    assert mail["cc"] == [{"name": "", "address": "other@example.net"}]
    assert mail["date"] == "2026-12-01T09:30:00+01:00"
    assert mail["text"].strip() == "Bonjour, la réunion est à 10 h."
    assert mail["html"].strip() == "<p>Bonjour, la réunion est à 10 h.</p>"
    assert mail["envelope"]["to"] == [BOX]
    assert [(a["filename"], a["content_type"], a["sha256"]) for a in mail["attachments"]] == [
        ("agenda.pdf", "application/pdf", hashlib.sha256(PDF).hexdigest())
    ]
    pdf = client.http.get(f"/mails/{body['id']}/attachments/1", headers=read_headers())
    assert pdf.body == PDF


@pytest.mark.parametrize("ingress", NEW)
def test_the_same_post_again_is_a_duplicate(client: Client, ingress: str, dynamodb: Any) -> None:
    first = answer(POSTERS[ingress](client, EML))[1]
    assert answer(POSTERS[ingress](client, EML)) == (200, {"id": first["id"], "duplicate": True})
    assert len(mails(dynamodb)) == 1


@pytest.mark.parametrize("first", (*NEW, "sendgrid-raw"))
def test_one_message_through_two_ingresses_is_stored_once(client: Client, first: str, dynamodb: Any) -> None:
    """Every ordered pair: the message through ``first``, then through each other ingress, is one mail."""
    one = answer(POSTERS[first](client, EML))[1]
    others = [name for name in (*NEW, "sendgrid-raw") if name != first]
    assert {name: answer(POSTERS[name](client, EML)) for name in others} == dict.fromkeys(
        others, (200, {"id": one["id"], "duplicate": True})
    )
    assert len(mails(dynamodb)) == 1


@pytest.mark.parametrize("ingress", NEW)
@pytest.mark.parametrize(
    ("auth", "message"),
    [(None, "credentials missing"), (basic("sendgrid", "wrong"), "credentials wrong")],
)
def test_credentials_missing_or_wrong_are_401_and_nothing_is_stored(
    client: Client, ingress: str, auth: str | None, message: str, dynamodb: Any, s3: Any
) -> None:
    response = POSTERS[ingress](client, EML, auth=auth or "Bearer nothing")
    assert answer(response) == (401, {"Code": "AuthenticationError", "Message": message})
    assert dynamodb.scan(TableName=TABLE)["Items"] == [] and objects(s3) == []


@pytest.mark.parametrize("ingress", NEW)
def test_with_nothing_configured_to_check_every_post_is_503(
    client: Client, ingress: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAIL_CREDENTIALS")
    monkeypatch.delenv("MAILGUN_SIGNING_KEY")
    from chalicelib.wiring import services

    services.reset()
    status, body = answer(POSTERS[ingress](client, EML))
    assert (status, body["Code"]) == (503, "NotConfiguredError")


@pytest.mark.parametrize("ingress", NEW)
def test_a_body_over_the_bound_is_413(client: Client, ingress: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "200")
    from chalicelib.wiring import services

    services.reset()
    assert answer(POSTERS[ingress](client, EML)) == (
        413, {"Code": "PayloadTooLargeError", "Message": "request body exceeds 200 bytes"}
    )


@pytest.mark.parametrize("ingress", NEW)
def test_a_storage_outage_is_503_and_nothing_is_committed(
    client: Client, ingress: str, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    inject("s3", "PutObject", down)
    response = POSTERS[ingress](client, EML)
    assert answer(response) == (503, {"Code": "StorageUnavailableError",
                                      "Message": "S3 PutObject failed (EndpointConnectionError)"})
    assert response.headers["Retry-After"] == "60"
    assert mails(dynamodb) == []


# Authenticated bodies no retry can make readable, one per ingress, with the reason each gives.
UNREADABLE: dict[str, tuple[str, str, bytes, str, str]] = {
    "relay": ("/ingress/relay", "message/rfc822", b"\r\n\r\n", "the message is empty", ""),
    "postmark": ("/ingress/postmark", "application/json", b'["not", "an object"]',
                 "the body is not a JSON object", ""),
    "postmark-raw": ("/ingress/postmark", "application/json", b'{"RawEmail": "no header here"}',
                     "the message has no headers", ""),
    "mailgun": ("/ingress/mailgun", "application/x-www-form-urlencoded", b"sender=a%40b.example",
                "the form carries neither body-mime nor message-headers/body-plain", "signed"),
    "mailgun-mime": ("/ingress/mailgun/mime", "application/x-www-form-urlencoded", b"body-mime=",
                     "the message is empty", "signed"),
}


@pytest.mark.parametrize("ingress", sorted(UNREADABLE))
def test_an_unreadable_body_is_400_and_kept_aside(client: Client, ingress: str, s3: Any, dynamodb: Any) -> None:
    path, content_type, body, reason, signed = UNREADABLE[ingress]
    if signed:
        body += b"&" + "&".join(f"{k}={v}" for k, v in mailgun_poster.signed_fields(MAILGUN_KEY)).encode()
    response = client.http.post(path, body=body, headers={"Content-Type": content_type, "Authorization": basic()})
    status, refusal = answer(response)
    assert (status, refusal["Code"], refusal["Message"]) == (400, "MalformedMailError", reason)
    kept = s3.get_object(Bucket=BUCKET, Key=refusal["quarantine"])
    assert kept["Body"].read() == body
    assert mails(dynamodb) == []


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/ingress/relay", "text/plain"), ("/ingress/postmark", "text/plain"), ("/ingress/mailgun", "text/plain")],
)
def test_another_media_type_is_415(client: Client, path: str, content_type: str) -> None:
    response = client.http.post(path, body=EML, headers={"Content-Type": content_type, "Authorization": basic()})
    assert response.status_code == 415
