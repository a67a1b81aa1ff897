"""A stored mail's content for handlers and GET /mails/{id}/eml: attachment bytes, the message, read when asked."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import requests
from chalice.test import Client
from requests_toolbelt import MultipartEncoder

from chalicelib.errors import NotConfiguredError, NotFoundError
from chalicelib.model import StoredMail
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, fixture_body, mail_path, read_headers
from tests.contract.test_ses import RECEIVED
from tests.contract.test_ses import deliver as deliver_ses
from tests.contract.test_ses import message as ses_message

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def multipart_eml() -> bytes:
    """A message with a text, an HTML body showing an inline image, and a PDF."""
    return (
        b"Received: from mx.example.org by in.example.com; Mon, 30 Nov 2026 08:00:00 +0000\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1;\r\n"
        b"\th=from:to:subject; bh=abc=; b=def=\r\n"
        b"From: =?UTF-8?B?5aSn5qCX5a6X?= <billing@example.org>\r\n"
        b"To: invoices@example.com\r\n"
        b"Subject: =?UTF-8?B?6KuL5rGC5pu4?= 2026-11\r\n"
        b"Message-ID: <inv-2026-11@example.org>\r\n"
        b"Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="M"\r\n\r\n'
        b'--M\r\nContent-Type: multipart/related; boundary="R"\r\n\r\n'
        b'--R\r\nContent-Type: multipart/alternative; boundary="A"\r\n\r\n'
        b"--A\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        + "請求書を添付します。\r\n".encode("iso2022_jp")
        + b"\r\n--A\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + '<p>請求書</p><img src="cid:logo@example.org">\r\n'.encode()
        + b"\r\n--A--\r\n"
        b"--R\r\nContent-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PNG) + b"--R--\r\n"
        b"--M\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF) + b"--M--\r\n"
    )


def post(client: Client, body: bytes, content_type: str) -> str:
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.body
    mail_id: str = json.loads(response.body)["id"]
    return mail_id


def stored(mail_id: str) -> StoredMail:
    return StoredMail.from_document(services.store().document(mail_id), services.content())


def eml(client: Client, mail_id: str, token_headers: dict[str, str] | None = None) -> Any:
    return client.http.get(f"/mails/{mail_id}/eml", headers=token_headers or read_headers())


def test_raw_mode_gives_back_the_message_sendgrid_posted_byte_for_byte(client: Client) -> None:
    source = multipart_eml()
    mail = stored(post(client, *build_body(source, raw=True, envelope_to=["invoices@example.com"])))
    assert mail.raw_message() == source
    assert mail.message()["Subject"] == "請求書 2026-11"
    assert mail.attachment_bytes(1) == PNG
    assert mail.attachment_bytes(2) == PDF


def test_ses_gives_back_the_object_ses_wrote(client: Client, s3: Any) -> None:
    services.ses().clock = lambda: RECEIVED
    source = ses_message(1, attachments=(PDF,))
    deliver_ses(client, s3, "ses/abc", source, ["info@example.com"])
    (entry,) = json.loads(client.http.get("/mails", headers=read_headers()).body)["mails"]
    mail = stored(entry["id"])
    assert mail.raw_message() == source
    assert mail.attachment_bytes(1) == PDF
    assert mail.message().get_body(("plain",)).get_content() == "本文です。"


def test_parsed_mode_is_rebuilt_with_its_header_block_its_bodies_and_every_attachment(client: Client) -> None:
    source = multipart_eml()
    mail = stored(post(client, *build_body(source, envelope_to=["invoices@example.com"])))
    raw = mail.raw_message()
    head, _, _ = raw.partition(b"\r\n\r\n")
    # SendGrid's header block, byte for byte, less the headers of the structure that is rebuilt.
    assert head.split(b"\r\n")[:8] == [
        b"Received: from mx.example.org by in.example.com; Mon, 30 Nov 2026 08:00:00 +0000",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1;",
        b"\th=from:to:subject; bh=abc=; b=def=",
        b"From: =?UTF-8?B?5aSn5qCX5a6X?= <billing@example.org>",
        b"To: invoices@example.com",
        b"Subject: =?UTF-8?B?6KuL5rGC5pu4?= 2026-11",
        b"Message-ID: <inv-2026-11@example.org>",
        b"Date: Mon, 30 Nov 2026 08:00:00 +0000",
    ]
    assert head.count(b"MIME-Version:") == 1 and head.count(b"Content-Type:") == 1
    assert raw.count(b"MIME-Version:") == 1
    message = mail.message()
    assert message.get_content_type() == "multipart/mixed"
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed", "multipart/related", "multipart/alternative", "text/plain", "text/html", "image/png",
        "application/pdf",
    ]
    assert message.get_body(("plain",)).get_content() == mail.text == "請求書を添付します。\r\n"
    assert message.get_body(("html",)).get_content() == mail.html
    (pdf,) = message.iter_attachments()
    assert (pdf.get_filename(), pdf.get_content(), pdf.get_content_disposition()) == ("請求書.pdf", PDF, "attachment")
    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    (image,) = [part for part in related.iter_parts() if part.get_content_type() == "image/png"]
    assert (image["Content-ID"], image.get_content(), image.get_content_disposition()) == (
        "<logo@example.org>", PNG, "inline"
    )


def test_sendgrids_own_parsed_sample_rebuilds_as_text_and_html(client: Client) -> None:
    mail = stored(post(client, *fixture_body("default_data.txt")))
    message = mail.message()
    assert message["Subject"] == "Inbound Parse Test Data"
    assert message["Received"] == "by 0.0.0.0 with HTTP; Wed, 10 Aug 2016 18:10:13 -0700 (PDT)"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == "Hello Twilio SendGrid!\n"
    assert message.get_body(("html",)).get_content() == "<html><body><strong>Hello Twilio SendGrid!</body></html>\n"


def test_a_hostile_attachment_type_or_content_id_adds_no_header_to_the_rebuilt_message(client: Client) -> None:
    info = {"attachment1": {"filename": "a\r\nX-Injected: 1.txt", "type": "text/plain\r\nX-Injected: 2",
                            "content-id": "x>\r\nX-Injected: 3"}}
    form = [
        ("headers", b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\nX-Injected-Not: kept\r\n"),
        ("text", b"hello"), ("html", b"<p>hello</p>"),
        ("attachment1", ("a.txt", b"data", "text/plain")), ("attachment-info", json.dumps(info)),
        ("charsets", json.dumps({"text": "UTF-8", "html": "UTF-8"})),
    ]
    encoder = MultipartEncoder(fields=form)
    mail = stored(post(client, encoder.to_string(), encoder.content_type))
    message = mail.message()
    headers = [name for part in message.walk() for name in part]
    assert "X-Injected" not in headers
    assert message["X-Injected-Not"] == "kept"
    (attachment,) = message.iter_attachments()
    assert (attachment.get_content_type(), attachment.get_filename(), attachment["Content-ID"]) == (
        mail.attachments[0]["content_type"], mail.attachments[0]["filename"], None
    )
    assert attachment.get_payload(decode=True) == b"data"


def test_eml_serves_the_message_as_a_download_and_only_to_a_token_that_sees_the_mail(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = multipart_eml()
    mail_id = post(client, *build_body(source, raw=True, envelope_to=["invoices@example.com"]))
    response = eml(client, mail_id)
    assert response.status_code == 200
    assert response.body == source
    assert response.headers["Content-Type"] == "message/rfc822"
    disposition = f"attachment; filename=\"{mail_id}.eml\"; filename*=UTF-8''{mail_id}.eml"
    assert response.headers["Content-Disposition"] == disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert client.http.get(f"/mails/{mail_id}/eml").status_code == 401
    assert eml(client, mail_id, read_headers("wrong-token-0123456789")).status_code == 401
    assert eml(client, "a" * 26).status_code == 404
    monkeypatch.setenv("READ_TOKENS", "scoped-token-0123456789=*@other.example")
    services.reset()
    assert eml(client, mail_id, read_headers("scoped-token-0123456789")).status_code == 404


def test_a_message_too_large_to_answer_is_kept_beside_the_mail_and_linked(client: Client, s3: Any) -> None:
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    source = multipart_eml().replace(base64.encodebytes(PDF), base64.encodebytes(big))
    mail_id = post(client, *build_body(source, envelope_to=["invoices@example.com"]))
    response = eml(client, mail_id)
    assert response.status_code == 302
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    linked = requests.get(response.headers["Location"], timeout=30)
    assert linked.status_code == 200
    assert linked.headers["Content-Type"] == "message/rfc822"
    assert linked.content == stored(mail_id).raw_message()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"mails/{mail_id}/")
    keys = [o["Key"] for o in listed["Contents"]]
    assert sum(key.endswith("/message.eml") for key in keys) == 1
    assert hashlib.sha256(linked.content).digest() != hashlib.sha256(source).digest()  # rebuilt, not the original


def test_content_is_read_only_when_asked_and_the_message_once(client: Client, s3: Any) -> None:
    mail_id = post(client, *build_body(multipart_eml(), raw=True, envelope_to=["invoices@example.com"]))
    reads: list[str] = []
    services.s3().meta.events.register(
        "before-parameter-build.s3.GetObject", lambda **kw: reads.append(kw["params"]["Key"])
    )
    mail = stored(mail_id)
    assert reads == []
    first = mail.raw_message()
    assert mail.raw_message() is first
    assert mail.message() is not mail.message()
    assert len(reads) == 1


def test_an_unknown_attachment_is_not_found_and_a_mail_without_content_says_so(client: Client) -> None:
    mail_id = post(client, *build_body(multipart_eml(), raw=True, envelope_to=["invoices@example.com"]))
    with pytest.raises(NotFoundError, match="no attachment with that index"):
        stored(mail_id).attachment_bytes(3)
    bare = StoredMail.from_document(services.store().document(mail_id))
    with pytest.raises(NotConfiguredError, match="without access to the stored bytes"):
        bare.raw_message()
