"""POST /mails and the reads behind it, through Chalice's test client against moto's server over HTTP.

One test per row of the status contract, plus duplicates, outages and logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from chalice.test import Client

import app as app_module
from chalicelib.ingress.sendgrid import payload
from chalicelib.storage import store as store_module
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, KEY, SECRET, TABLE, TOKEN, fixture_body, mail_path, read_headers

RECEIVED = datetime(2026, 11, 27, 21, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(client: Client) -> None:
    services.sendgrid().clock = lambda: RECEIVED


def post(client: Client, body: bytes, content_type: str, path: str | None = None, **headers: str) -> Any:
    return client.http.post(path or mail_path(), body=body, headers={"Content-Type": content_type, **headers})


def mail_items(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return [item for item in items if item["sk"]["S"] == "mail"]


def object_keys(s3: Any) -> list[str]:
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def nothing_stored(dynamodb: Any, s3: Any) -> bool:
    return dynamodb.scan(TableName=TABLE)["Items"] == [] and object_keys(s3) == []


SIMPLE_EML = (
    b"From: =?UTF-8?B?5aSn5qCX5a6X?= <sender@example.com>\r\n"
    b"To: info@example.com\r\n"
    b"Subject: =?UTF-8?B?44K/44Kk44OI44Or44Gn44GZ?=\r\n"
    b"Date: Wed, 25 Sep 2013 18:16:53 +0900\r\n"
    b"Message-ID: <abc.123@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    + "本文です。\r\n".encode()
)


def test_sendgrid_parsed_sample_is_stored_and_read_back_exactly(client: Client) -> None:
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert response.status_code == 200
    answer = json.loads(response.body)
    assert answer["duplicate"] is False
    assert re.fullmatch(r"[a-z2-7]{26}", answer["id"])

    stored = client.http.get(f"/mails/{answer['id']}", headers=read_headers())
    assert stored.status_code == 200
    assert json.loads(stored.body) == {
        "id": answer["id"],
        "received_at": "2026-11-27T21:00:00.123Z",
        "mode": "parsed",
        "message_id": None,
        "date": "2016-08-10T18:10:13-07:00",
        "subject": "Testing non-raw",
        "from": {"name": "Example User", "address": "test@example.com"},
        "to": [{"name": "", "address": "inbound@inbound.example.com"}],
        "cc": [],
        "reply_to": [],
        "envelope": {"from": "test@example.com", "to": ["inbound@inbound.example.com"]},
        "text": "Hello Twilio SendGrid!\n",
        "html": "<html><body><strong>Hello Twilio SendGrid!</body></html>\n",
        "headers": [
            ["MIME-Version", "1.0"],
            ["Received", "by 0.0.0.0 with HTTP; Wed, 10 Aug 2016 18:10:13 -0700 (PDT)"],
            ["From", "Example User <test@example.com>"],
            ["Date", "Wed, 10 Aug 2016 18:10:13 -0700"],
            ["Subject", "Inbound Parse Test Data"],
            ["To", "inbound@inbound.example.com"],
            ["Content-Type", "multipart/alternative; boundary=001a113df448cad2d00539c16e89"],
        ],
        "attachments": [],
        "spf": "pass",
        "dkim": [{"domain": "sendgrid.com", "result": "pass"}],
        "spam_score": None,
        "spam_report": None,
        "sender_ip": "0.0.0.0",
        "verdicts": None,
        "raw_size": len(body),
        "raw_sha256": hashlib.sha256(body).hexdigest(),
        "processing": {"status": "pending", "attempts": 0, "error": None},
    }


def test_sendgrid_raw_sample_decodes_text_and_quoted_printable_html(client: Client) -> None:
    body, content_type = fixture_body("raw_data.txt")
    answer = json.loads(post(client, body, content_type).body)
    mail = json.loads(client.http.get(f"/mails/{answer['id']}", headers=read_headers()).body)
    assert mail["mode"] == "raw"
    assert mail["subject"] == "Inbound Parse Test Raw Data"
    assert mail["text"] == "Hello Twilio SendGrid!\n"
    assert mail["html"] == "<html><body><strong>Hello Twilio SendGrid!</body></html>\n"
    assert mail["to"] == [{"name": "", "address": "inbound@inbound.inbound.com"}]
    assert mail["date"] == "2016-08-10T14:44:21-07:00"
    assert mail["attachments"] == []


def test_sendgrid_raw_sample_attachment_is_stored_byte_exact(client: Client, s3: Any) -> None:
    body, content_type = fixture_body("raw_data_with_attachments.txt")
    answer = json.loads(post(client, body, content_type).body)
    mail = json.loads(client.http.get(f"/mails/{answer['id']}", headers=read_headers()).body)
    [attachment] = mail["attachments"]
    keys = [k for k in object_keys(s3) if k.endswith("/attachments/1")]
    data = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert data[:3] == b"\xff\xd8\xff"  # a JPEG, decoded from base64
    assert attachment == {
        "index": 1,
        "filename": "SendGrid.jpg",
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_id": None,
        "disposition": "attachment",
    }


def test_utf8_mail_built_from_an_eml_is_exact_in_both_modes(client: Client) -> None:
    for raw in (False, True):
        message_id = f"<abc.123.{raw}@example.com>"
        body, content_type = build_body(SIMPLE_EML.replace(b"<abc.123@example.com>", message_id.encode()), raw=raw)
        answer = json.loads(post(client, body, content_type).body)
        mail = json.loads(client.http.get(f"/mails/{answer['id']}", headers=read_headers()).body)
        assert mail["mode"] == ("raw" if raw else "parsed")
        assert mail["subject"] == "タイトルです"
        assert mail["from"] == {"name": "大栗宗", "address": "sender@example.com"}
        assert mail["text"] == "本文です。\r\n"
        assert mail["message_id"] == message_id
        assert mail["date"] == "2013-09-25T18:16:53+09:00"


def test_the_same_bytes_again_is_a_duplicate_and_stores_nothing_new(
    client: Client, dynamodb: Any, s3: Any
) -> None:
    body, content_type = fixture_body("default_data.txt")
    first = json.loads(post(client, body, content_type).body)
    keys = object_keys(s3)
    second = post(client, body, content_type)
    assert second.status_code == 200
    assert json.loads(second.body) == {"id": first["id"], "duplicate": True}
    assert len(mail_items(dynamodb)) == 1
    assert object_keys(s3) == keys


def test_the_same_message_id_under_another_boundary_is_a_duplicate(
    client: Client, dynamodb: Any, s3: Any
) -> None:
    first_body, first_type = build_body(SIMPLE_EML)
    second_body, second_type = build_body(SIMPLE_EML)
    assert first_body != second_body  # toolbelt draws a new boundary each time
    first = json.loads(post(client, first_body, first_type).body)
    keys = object_keys(s3)
    second = json.loads(post(client, second_body, second_type).body)
    assert second == {"id": first["id"], "duplicate": True}
    assert len(mail_items(dynamodb)) == 1
    # The redelivery's own original was removed; the first one stays, byte-exact.
    assert object_keys(s3) == keys
    raw = client.http.get(f"/mails/{first['id']}/raw", headers=read_headers())
    assert raw.body == first_body


def test_the_same_message_id_to_another_recipient_is_another_mail(client: Client) -> None:
    first = json.loads(post(client, *build_body(SIMPLE_EML, envelope_to=["a@example.com"])).body)
    second = json.loads(post(client, *build_body(SIMPLE_EML, envelope_to=["b@example.com"])).body)
    assert first["id"] != second["id"]
    assert second["duplicate"] is False


def test_raw_original_is_returned_byte_for_byte_as_bytes_to_save_never_with_the_posters_type(client: Client) -> None:
    body, content_type = build_body(SIMPLE_EML)
    # A poster's own Content-Type, which a browser must never be told: its boundary ends in ",text/html".
    body = body.replace(content_type.split("boundary=")[1].encode(), b"a,text/html")
    answer = json.loads(post(client, body, "multipart/form-data; boundary=a,text/html").body)
    raw = client.http.get(f"/mails/{answer['id']}/raw", headers=read_headers())
    assert raw.status_code == 200
    assert raw.body == body
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["Content-Disposition"] == (
        f"attachment; filename=\"{answer['id']}.bin\"; filename*=UTF-8''{answer['id']}.bin"
    )
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    assert raw.headers["Content-Security-Policy"] == "sandbox"


@pytest.mark.parametrize(
    "path",
    [
        "/mails",
        "/mails?MailKey=sendgrid",
        f"/mails?MailKey={KEY}&MailSecret=wrong",
        f"/mails?MailKey=other&MailSecret={SECRET}",
    ],
)
def test_missing_or_wrong_credentials_are_401_and_store_nothing(
    client: Client, dynamodb: Any, s3: Any, path: str
) -> None:
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type, path=path)
    assert response.status_code == 401
    assert json.loads(response.body)["Code"] == "AuthenticationError"
    assert "Retry-After" not in response.headers  # only a 5xx says when to come back
    assert nothing_stored(dynamodb, s3)


def test_http_basic_and_a_second_pair_for_rotation_are_accepted(client: Client, dynamodb: Any) -> None:
    body, content_type = fixture_body("default_data.txt")
    basic = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    first = post(client, body, content_type, path="/mails", Authorization=basic)
    assert (first.status_code, json.loads(first.body)["duplicate"]) == (200, False)
    # The second pair, during a rotation, stores a mail of its own, not only a duplicate of the first.
    other, other_type = build_body(SIMPLE_EML)
    second = post(client, other, other_type, path=mail_path("old", "previous-secret"))
    assert (second.status_code, json.loads(second.body)["duplicate"]) == (200, False)
    assert len(mail_items(dynamodb)) == 2


def test_a_body_that_is_not_a_form_is_415_and_stores_nothing(client: Client, dynamodb: Any, s3: Any) -> None:
    response = post(client, b'{"text": "hi"}', "application/json")
    assert response.status_code == 415
    assert nothing_stored(dynamodb, s3)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"this is not multipart at all", "multipart body has no opening boundary"),
        (b'--xYzZY\r\nContent-Disposition: form-data; name="to"\r\n\r\nx@example.com\r\n--xYzZY--\r\n',
         "the form carries neither headers/text/html nor email"),
    ],
)
def test_an_unreadable_body_is_400_and_kept_aside_for_an_operator(
    client: Client, dynamodb: Any, s3: Any, body: bytes, message: str
) -> None:
    response = post(client, body, "multipart/form-data; boundary=xYzZY")
    assert response.status_code == 400
    answer = json.loads(response.body)
    key = f"quarantine/2026-11-27/{hashlib.sha256(body).hexdigest()}"
    assert answer == {"Code": "MalformedMailError", "Message": message, "quarantine": key}
    kept = s3.get_object(Bucket=BUCKET, Key=key)
    assert kept["Body"].read() == body
    assert kept["ContentType"] == "application/octet-stream"
    assert kept["Metadata"] == {"original-content-type": "multipart/form-data; boundary=xYzZY", "reason": message}
    assert mail_items(dynamodb) == []


def test_a_body_over_the_bound_is_413_and_stores_nothing(
    client: Client, dynamodb: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    services.reset()
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert response.status_code == 413
    assert json.loads(response.body)["Code"] == "PayloadTooLargeError"
    assert nothing_stored(dynamodb, s3)


@pytest.mark.parametrize(("spare", "status"), [(0, 200), (-1, 413)])
def test_the_body_bound_holds_to_the_byte(
    client: Client, monkeypatch: pytest.MonkeyPatch, spare: int, status: int
) -> None:
    body, content_type = fixture_body("default_data.txt")
    monkeypatch.setenv("MAX_BODY_BYTES", str(len(body) + spare))
    services.reset()
    assert post(client, body, content_type).status_code == status


def test_a_bug_of_ours_is_a_500_so_that_the_provider_retries_and_nothing_is_stored(
    client: Client, dynamodb: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(form: Any) -> Any:
        raise KeyError("a bug in the decoder")

    monkeypatch.setattr(payload, "parse", broken)
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert response.status_code == 500
    assert json.loads(response.body) == {"Code": "InternalServerError", "Message": "internal error"}
    assert nothing_stored(dynamodb, s3)


def test_mailboxes_past_one_transaction_are_repaired_by_the_redelivery(
    client: Client, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first mailboxes go in the commit, the rest after it: a redelivery writes what a fault left out.

    Four mailboxes to a transaction here, not 99: moto takes over a second to
    refuse a 100-item transaction, past the 2 s read timeout on a loaded
    machine. test_storage_faults.py sends the full 99 through moto.
    """
    monkeypatch.setattr(store_module, "TRANSACTION_MAILBOXES", 4)
    recipients = [f"r{n:03d}@example.com" for n in range(10)]
    body, content_type = build_body(SIMPLE_EML, envelope_to=recipients)

    def down(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.example")

    services.dynamodb().meta.events.register("before-call.dynamodb.BatchWriteItem", down)
    first = post(client, body, content_type)
    assert (first.status_code, json.loads(first.body)["Code"]) == (503, "StorageUnavailableError")
    services.dynamodb().meta.events.unregister("before-call.dynamodb.BatchWriteItem", down)
    items = dynamodb.scan(TableName=TABLE)["Items"]
    boxes = {item["sk"]["S"] for item in items if item["sk"]["S"].startswith("to#")}
    assert boxes == {f"to#{address}" for address in recipients[:4]}  # committed, its overflow not written
    assert [item for item in items if item["sk"]["S"] == "mailbox"] == []  # and so the mailbox register
    again = post(client, body, content_type)
    assert json.loads(again.body)["duplicate"] is True
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert {item["sk"]["S"] for item in items if item["sk"]["S"].startswith("to#")} == {
        f"to#{address}" for address in recipients}
    assert {item["pk"]["S"] for item in items if item["sk"]["S"] == "mailbox"} == {
        f"mailbox#{address}" for address in recipients}


def test_no_configured_credentials_fails_closed_with_503(
    client: Client, dynamodb: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAIL_CREDENTIALS")
    services.reset()
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert response.status_code == 503
    assert json.loads(response.body)["Code"] == "NotConfiguredError"
    assert response.headers["Retry-After"] == "60"
    assert nothing_stored(dynamodb, s3)


def test_a_missing_table_is_503_and_the_retry_succeeds(client: Client, dynamodb: Any) -> None:
    from scripts.create_resources import create_resources

    dynamodb.delete_table(TableName=TABLE)
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert response.status_code == 503
    assert json.loads(response.body)["Code"] == "StorageUnavailableError"
    create_resources(TABLE, BUCKET)
    retry = post(client, body, content_type)
    assert retry.status_code == 200
    assert json.loads(retry.body)["duplicate"] is False
    assert len(mail_items(dynamodb)) == 1


def test_a_missing_bucket_is_503_and_nothing_is_committed(client: Client, dynamodb: Any, s3: Any) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type)
    assert (response.status_code, json.loads(response.body)["Code"]) == (503, "StorageUnavailableError")
    assert mail_items(dynamodb) == []


def test_a_large_mail_keeps_its_item_far_below_dynamodbs_limit(client: Client, dynamodb: Any) -> None:
    text = "long line of text ✓\n" * 40_000  # about 880 KB
    eml = SIMPLE_EML.replace("本文です。\r\n".encode(), text.encode())
    body, content_type = build_body(eml)
    answer = json.loads(post(client, body, content_type).body)
    [item] = mail_items(dynamodb)
    assert len(json.dumps(item).encode()) < store_module.INLINE_DOCUMENT_BYTES + 4096
    mail = json.loads(client.http.get(f"/mails/{answer['id']}", headers=read_headers()).body)
    assert mail["text"] == text


def test_reads_need_a_bearer_token_and_not_the_ingest_secret(client: Client) -> None:
    body, content_type = fixture_body("default_data.txt")
    mail_id = json.loads(post(client, body, content_type).body)["id"]
    for headers in ({}, {"Authorization": f"Bearer {SECRET}"}, {"Authorization": "Bearer nope"}):
        for path in (f"/mails/{mail_id}", f"/mails/{mail_id}/raw"):
            assert client.http.get(path, headers={"Accept": "*/*", **headers}).status_code == 401
    assert client.http.get(f"/mails/{mail_id}", headers=read_headers(TOKEN)).status_code == 200


@pytest.mark.parametrize("mail_id", ["a" * 26, "not-an-id", "A" * 26])
def test_an_unknown_id_is_404(client: Client, mail_id: str) -> None:
    for path in (f"/mails/{mail_id}", f"/mails/{mail_id}/raw"):
        response = client.http.get(path, headers=read_headers())
        assert response.status_code == 404
        assert json.loads(response.body)["Code"] == "NotFoundError"


def test_every_request_logs_one_line_without_secrets_or_content(
    client: Client, log_records: pytest.LogCaptureFixture, dynamodb: Any
) -> None:
    body, content_type = build_body(SIMPLE_EML)
    calls = [
        lambda: post(client, body, content_type),
        lambda: post(client, body, content_type),
        lambda: post(client, body, content_type, path=f"/mails?MailKey={KEY}&MailSecret=wrong-{SECRET}"),
        lambda: post(client, b"junk", "multipart/form-data; boundary=xYzZY"),
        lambda: client.http.get("/mails/" + "a" * 26, headers=read_headers()),
        lambda: client.http.get("/mails/" + "a" * 26, headers=read_headers("bad-" + TOKEN)),
    ]
    for call in calls:
        call()
    dynamodb.delete_table(TableName=TABLE)
    post(client, *build_body(SIMPLE_EML.replace(b"abc.123", b"other")))

    lines = [r.getMessage() for r in log_records.records if r.name == app_module.app.log.name]
    assert len(lines) == len(calls) + 1
    outcomes = [json.loads(line)["outcome"] for line in lines]
    assert outcomes == [
        "stored", "duplicate", "AuthenticationError", "MalformedMailError",
        "NotFoundError", "AuthenticationError", "StorageUnavailableError",
    ]
    stored = json.loads(lines[0])
    assert (stored["route"], stored["status"], stored["bytes"], stored["attachments"]) == (
        "POST /mails", 200, len(body), 0
    )
    everything = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in log_records.records
    )
    for forbidden in (SECRET, TOKEN, "本文", "abc.123@example.com", "sender@example.com"):
        assert forbidden not in everything


def test_multipart_is_declared_binary_so_api_gateway_passes_bytes_untouched() -> None:
    assert "multipart/form-data" in app_module.app.api.binary_types
