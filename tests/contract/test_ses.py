"""SES as a second ingress: notifications through SQS, the message as SES wrote it to S3."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from chalice.test import Client

from chalicelib.errors import MalformedMailError, StorageUnavailableError
from chalicelib.ingress.ses import ingestor as ses_ingestor
from chalicelib.ingress.ses.notice import parse_notice
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, TABLE, mail_path, read_headers

RECEIVED = datetime(2026, 11, 27, 21, 0, 0, tzinfo=UTC)


def notification(key: str, recipients: list[str], raw_delivery: bool = False, **verdicts: str) -> str:
    ses = {
        "notificationType": "Received",
        "mail": {"timestamp": "2026-11-27T21:00:00.000Z", "source": "sender@example.org", "messageId": key[4:],
                 "destination": recipients},
        "receipt": {
            "recipients": recipients,
            **{f"{name}Verdict": {"status": status} for name, status in verdicts.items()},
            "action": {"type": "S3", "topicArn": "arn:aws:sns:us-east-1:123456789012:ses", "bucketName": BUCKET,
                       "objectKey": key},
        },
    }
    if raw_delivery:
        return json.dumps(ses)
    return json.dumps({"Type": "Notification", "MessageId": "n1", "TopicArn": "arn:aws:sns:us-east-1:1:ses",
                       "Message": json.dumps(ses)})


def message(number: int, attachments: tuple[bytes, ...] = (), to: str = "info@example.com") -> bytes:
    head = (
        f"Return-Path: <sender@example.org>\r\n"
        f"Received-SPF: pass (spfCheck: domain of example.org designates 192.0.2.1 as permitted sender)\r\n"
        f"Authentication-Results: amazonses.com; spf=pass smtp.mailfrom=example.org; "
        f"dkim=pass header.i=@example.org; dkim=fail header.d=other.example; dmarc=pass header.from=example.org;\r\n"
        f"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
        f"From: =?UTF-8?B?5aSn5qCX5a6X?= <sender@example.org>\r\nTo: {to}\r\n"
        f"Subject: =?ISO-2022-JP?B?GyRCJT8lJCVIJWskRyQ5GyhC?=\r\nMessage-ID: <ses-{number}@example.org>\r\n"
        f"Date: Fri, 27 Nov 2026 20:59:00 +0000\r\nMIME-Version: 1.0\r\n"
    ).encode()
    text = "本文です。".encode("iso2022_jp")
    parts = b"--S\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n" + text + b"\r\n"
    for index, data in enumerate(attachments, start=1):
        parts += (
            f"--S\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: attachment; filename=\"part{index}.bin\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + base64.encodebytes(data) + b"\r\n"
    return head + b'Content-Type: multipart/mixed; boundary="S"\r\n\r\n' + parts + b"--S--\r\n"


@pytest.fixture
def ses_client(client: Client) -> Client:
    services.ses().clock = lambda: RECEIVED
    return client


def deliver(client: Client, s3: Any, key: str, data: bytes | None, recipients: list[str], **kwargs: Any) -> None:
    if data is not None:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    event = client.events.generate_sqs_event(message_bodies=[notification(key, recipients, **kwargs)],
                                              queue_name="inbound-mail-ses")
    client.lambda_.invoke("receive_ses", event)


def mail_ids(dynamodb: Any) -> list[str]:
    return [i["id"]["S"] for i in dynamodb.scan(TableName=TABLE)["Items"] if i["sk"]["S"] == "mail"]


def get_mail(client: Client, mail_id: str) -> dict[str, Any]:
    response = client.http.get(f"/mails/{mail_id}", headers=read_headers())
    assert response.status_code == 200
    result: dict[str, Any] = json.loads(response.body)
    return result


def test_a_20_mb_message_is_stored_from_where_ses_wrote_it_and_downloads_byte_exact(
    ses_client: Client, s3: Any, dynamodb: Any
) -> None:
    attachments = (os.urandom(7_500_000), os.urandom(7_500_001), b"small")
    source = message(1, attachments)
    assert len(source) > 20_000_000
    deliver(ses_client, s3, "ses/abc123", source, ["info@example.com"], spam="PASS", virus="PASS",
            spf="PASS", dkim="PASS", dmarc="PASS")
    [mail_id] = mail_ids(dynamodb)
    mail = get_mail(ses_client, mail_id)
    assert mail["mode"] == "ses"
    assert mail["subject"] == "タイトルです"
    assert mail["from"] == {"name": "大栗宗", "address": "sender@example.org"}
    assert mail["text"] == "本文です。\r\n" or mail["text"] == "本文です。"
    assert mail["envelope"] == {"from": "sender@example.org", "to": ["info@example.com"]}
    assert mail["spf"] == "pass"
    assert mail["dkim"] == [{"domain": "example.org", "result": "pass"}, {"domain": "other.example", "result": "fail"}]
    assert mail["verdicts"] == {"spam": "pass", "virus": "pass", "spf": "pass", "dkim": "pass", "dmarc": "pass"}
    assert mail["raw_size"] == len(source)
    assert mail["raw_sha256"] == hashlib.sha256(source).hexdigest()
    assert [(a["filename"], a["size"]) for a in mail["attachments"]] == [
        ("part1.bin", len(attachments[0])), ("part2.bin", len(attachments[1])), ("part3.bin", 5)]

    for index, data in enumerate(attachments, start=1):
        response = ses_client.http.get(f"/mails/{mail_id}/attachments/{index}", headers=read_headers())
        if response.status_code == 302:
            response_bytes = requests.get(response.headers["Location"], timeout=60).content
        else:
            response_bytes = response.body
        assert hashlib.sha256(response_bytes).digest() == hashlib.sha256(data).digest()
    raw = ses_client.http.get(f"/mails/{mail_id}/raw", headers=read_headers())
    assert raw.status_code == 302
    assert requests.get(raw.headers["Location"], timeout=60).content == source

    # No second copy of the original: SES's object is the one the mail points at.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert [k for k in keys if k.endswith("/raw")] == []
    assert "ses/abc123" in keys


def test_a_notification_delivered_twice_stores_the_mail_once(ses_client: Client, s3: Any, dynamodb: Any) -> None:
    source = message(2)
    deliver(ses_client, s3, "ses/m2", source, ["info@example.com"])
    deliver(ses_client, s3, "ses/m2-retry", source, ["info@example.com"])
    assert len(mail_ids(dynamodb)) == 1
    assert s3.head_object(Bucket=BUCKET, Key="ses/m2-retry")  # SES's own object is never deleted


def test_the_same_mail_through_sendgrid_and_ses_is_stored_once(ses_client: Client, s3: Any, dynamodb: Any) -> None:
    source = message(3)
    deliver(ses_client, s3, "ses/m3", source, ["info@example.com"])
    body, content_type = build_body(source, raw=True, envelope_to=["info@example.com"])
    response = ses_client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert json.loads(response.body) == {"id": mail_ids(dynamodb)[0], "duplicate": True}


def test_verdicts_come_from_the_headers_when_the_notification_lacks_them(
    ses_client: Client, s3: Any, dynamodb: Any
) -> None:
    deliver(ses_client, s3, "ses/m4", message(4), ["info@example.com"])
    mail = get_mail(ses_client, mail_ids(dynamodb)[0])
    assert mail["verdicts"] == {"spam": "pass", "virus": "pass", "spf": "pass", "dkim": "pass", "dmarc": "pass"}


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"\x00\xff" * 100], ids=["empty", "blank", "binary"])
def test_a_corrupt_object_is_quarantined_and_the_message_is_not_retried(
    ses_client: Client, s3: Any, dynamodb: Any, data: bytes
) -> None:
    deliver(ses_client, s3, "ses/bad", data, ["info@example.com"])  # returns: no retry
    assert mail_ids(dynamodb) == []
    kept = s3.get_object(Bucket=BUCKET, Key="quarantine/2026-11-27/bad")
    assert kept["Body"].read() == data
    assert kept["ContentType"] == "application/octet-stream"
    reason = "the stored message has no headers" if data == b"\x00\xff" * 100 else "the stored message is empty"
    assert kept["Metadata"] == {"original-key": "ses/bad", "reason": reason}


def test_an_object_under_a_deeper_key_is_quarantined_under_its_last_name(
    ses_client: Client, s3: Any, dynamodb: Any
) -> None:
    deliver(ses_client, s3, "ses/inbox/bad", b"", ["info@example.com"])
    assert s3.get_object(Bucket=BUCKET, Key="quarantine/2026-11-27/bad")["Metadata"]["original-key"] == "ses/inbox/bad"


def test_a_missing_object_or_a_foreign_key_is_dropped_without_reading(
    ses_client: Client, s3: Any, dynamodb: Any
) -> None:
    deliver(ses_client, s3, "ses/never-written", None, ["info@example.com"])
    s3.put_object(Bucket=BUCKET, Key="mails/not-ses", Body=message(5))
    deliver(ses_client, s3, "mails/not-ses", None, ["info@example.com"])
    assert mail_ids(dynamodb) == []


def test_a_storage_outage_raises_so_sqs_retries(ses_client: Client, s3: Any, dynamodb: Any) -> None:
    dynamodb.delete_table(TableName=TABLE)
    with pytest.raises(StorageUnavailableError):
        deliver(ses_client, s3, "ses/m6", message(6), ["info@example.com"])


def test_a_corrupt_object_that_cannot_be_set_aside_raises_so_sqs_retries(
    ses_client: Client, s3: Any, dynamodb: Any
) -> None:
    """Dropping the notice would lose the only pointer to the object: it is kept for a retry instead."""
    def down(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    services.s3().meta.events.register("before-parameter-build.s3.CopyObject", down)
    with pytest.raises(StorageUnavailableError, match=r"^S3 CopyObject failed \(EndpointConnectionError\)$"):
        deliver(ses_client, s3, "ses/bad", b"", ["info@example.com"])
    assert mail_ids(dynamodb) == []


def test_sns_envelopes_and_raw_delivery_are_both_read() -> None:
    for raw in (False, True):
        notice = parse_notice(notification("ses/k", ["A@example.com"], raw_delivery=raw, spam="FAIL"))
        assert (notice.bucket, notice.key, notice.recipients) == (BUCKET, "ses/k", ("A@example.com",))
        assert notice.verdicts["spam"] == "fail"
    for junk in ("", "{}", "[]", '{"Type": "Notification", "Message": "{}"}', '{"notificationType": "Bounce"}'):
        with pytest.raises(MalformedMailError):
            parse_notice(junk)


@pytest.mark.parametrize(("spare", "stored"), [(0, True), (-1, False)])
def test_the_ses_object_bound_holds_to_the_byte(
    ses_client: Client, s3: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, spare: int, stored: bool
) -> None:
    source = message(7)
    monkeypatch.setattr(ses_ingestor, "MAX_MESSAGE_BYTES", len(source) + spare)
    deliver(ses_client, s3, "ses/m7", source, ["info@example.com"])  # returns either way: no retry
    assert bool(mail_ids(dynamodb)) is stored
    quarantined = s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/").get("Contents", [])
    assert [entry["Key"] for entry in quarantined] == ([] if stored else ["quarantine/2026-11-27/m7"])
