"""The holes an attacker who can send mail found, each held shut, through the HTTP API and the queue functions.

A forged Message-ID, a field written twice, a read token's reach, content a
browser would run, a reply address anyone can guess, odd input answered with
the wrong status. Only the API and Lambda's entry points are used, so the
same file also ran against the code before these rules (and failed there).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import pytest
import requests
from chalice.test import Client
from requests_toolbelt import MultipartEncoder

from scripts.send_mail import build_body, sendgrid_fields
from scripts.sqs_poller import event_for
from tests.conftest import BUCKET, QUEUE, TABLE, mail_path, read_headers

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def message(subject: str, message_id: str = "<order-1234@shop.example>", to: str = "orders@example.com",
            body: str = "Your order has shipped.") -> bytes:
    return (
        f"From: Shop <noreply@shop.example>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def post(client: Client, source: bytes, **kwargs: Any) -> Any:
    body, content_type = build_body(source, **kwargs)
    return client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})


def stored(client: Client, source: bytes, **kwargs: Any) -> str:
    response = post(client, source, **kwargs)
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert answer["duplicate"] is False
    mail_id: str = answer["id"]
    return mail_id


def document(client: Client, mail_id: str, token: str | None = None) -> Any:
    response = client.http.get(f"/mails/{mail_id}", headers=read_headers(*([token] if token else [])))
    assert response.status_code == 200, response.body
    return json.loads(response.body)


# -- 1. A forged Message-ID suppresses no real mail -----------------------------------------------


def test_a_forged_message_id_sent_first_does_not_suppress_the_real_mail(client: Client, s3: Any) -> None:
    forged = stored(client, message("Order 1234 cancelled", body="Click here to confirm."))
    real = stored(client, message("Order 1234 shipped"))
    assert real != forged
    assert document(client, forged)["subject"] == "Order 1234 cancelled"
    assert document(client, real)["subject"] == "Order 1234 shipped"
    # Each kept its own objects: nothing of the first was deleted as a duplicate's.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mails/")["Contents"]]
    assert {key.split("/")[1] for key in keys} == {forged, real}


def test_the_same_mail_again_is_still_a_duplicate_whatever_the_boundary_or_the_recipients_order(
    client: Client,
) -> None:
    first = stored(client, message("Order 1234 shipped"), envelope_to=["a@example.com", "b@example.com"])
    again = post(client, message("Order 1234 shipped"), envelope_to=["b@example.com", "a@example.com"])
    assert json.loads(again.body) == {"id": first, "duplicate": True}


@pytest.mark.parametrize(("one", "other"), [("<a b@shop.example>", "<ab@shop.example>"), ("1", "<1>")])
def test_message_ids_are_compared_as_written(client: Client, one: str, other: str) -> None:
    assert stored(client, message("Same", message_id=one)) != stored(client, message("Same", message_id=other))


# -- 2. A field written twice is refused, not taken first-come ------------------------------------


def test_a_form_with_a_sendgrid_field_twice_is_400_quarantined_and_stores_nothing(
    client: Client, s3: Any, dynamodb: Any
) -> None:
    fields = sendgrid_fields(message("SPF twice"))
    fields = [(name, "fail" if name == "SPF" else value) for name, value in fields] + [("SPF", "pass")]
    encoder = MultipartEncoder(fields=fields)
    body = encoder.to_string()
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": encoder.content_type})
    assert response.status_code == 400
    answer = json.loads(response.body)
    assert (answer["Code"], answer["Message"]) == ("MalformedMailError", "the form carries a field twice")
    assert s3.get_object(Bucket=BUCKET, Key=answer["quarantine"])["Body"].read() == body
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


# -- 3. A read token reads only its scope ---------------------------------------------------------


@pytest.fixture
def scoped(client: Client, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two mails, one in the help desk's scope, and a token for everything and one for the help desk."""
    monkeypatch.setenv("READ_TOKENS", "everything-token, help-token=support@help.example.com *@desk.example.com")
    inside = stored(client, message("Help!", "<h1@x.example>", "Support@Help.example.com"))
    outside = stored(client, PNG_MAIL, envelope_to=["ceo@example.com"])
    return {"inside": inside, "outside": outside}


PNG_MAIL = (
    b"From: a@x.example\r\nTo: ceo@example.com\r\nSubject: board\r\nMessage-ID: <b1@x.example>\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsecret\r\n'
    b"--B\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG) + b"\r\n--B--\r\n"
)


def test_a_scoped_token_reads_its_mail_and_nothing_else_looks_there(client: Client, scoped: dict[str, str]) -> None:
    assert document(client, scoped["inside"], "help-token")["subject"] == "Help!"
    for path in (f"/mails/{scoped['outside']}", f"/mails/{scoped['outside']}/raw",
                 f"/mails/{scoped['outside']}/attachments/1"):
        assert client.http.get(path, headers=read_headers("help-token")).status_code == 404, path
        assert client.http.get(path, headers=read_headers("everything-token")).status_code == 200, path
    retry = client.http.post(f"/mails/{scoped['outside']}/retry", headers=read_headers("help-token"))
    assert retry.status_code == 404


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 403),  # all mail: not for a scoped token
        ("?to=ceo@example.com", 403),
        ("?to=support@help.example.com", 200),
        ("?to=SUPPORT@help.example.com", 200),
        ("?to=anyone@desk.example.com", 200),
        ("?to=%20", 400),
        ("?to=", 400),
    ],
)
def test_a_scoped_token_lists_only_mailboxes_of_its_scope(
    client: Client, scoped: dict[str, str], query: str, status: int
) -> None:
    assert client.http.get(f"/mails{query}", headers=read_headers("help-token")).status_code == status


def test_an_unscoped_token_lists_everything_but_a_blank_mailbox(client: Client, scoped: dict[str, str]) -> None:
    listing = json.loads(client.http.get("/mails", headers=read_headers("everything-token")).body)
    assert {mail["id"] for mail in listing["mails"]} == set(scoped.values())
    assert client.http.get("/mails?to=%20", headers=read_headers("everything-token")).status_code == 400


def test_a_cursor_serves_only_the_scope_it_was_issued_for(client: Client, scoped: dict[str, str]) -> None:
    stored(client, message("Help again", "<h2@x.example>", "support@help.example.com"))
    path = "/mails?to=support@help.example.com&limit=1"
    page = json.loads(client.http.get(path, headers=read_headers("everything-token")).body)
    assert page["cursor"]
    foreign = client.http.get(f"{path}&cursor={page['cursor']}", headers=read_headers("help-token"))
    assert foreign.status_code == 400
    own = json.loads(client.http.get(path, headers=read_headers("help-token")).body)
    assert client.http.get(f"{path}&cursor={own['cursor']}", headers=read_headers("help-token")).status_code == 200


# -- 4. Nothing a browser would run is served as itself -------------------------------------------


def with_attachment(content_type: str, data: bytes, disposition: str = "inline") -> bytes:
    return (
        b"From: a@x.example\r\nTo: b@example.com\r\nSubject: file\r\nMessage-ID: <f-" + content_type.encode()
        + b'@x.example>\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
        b"see\r\n--B\r\nContent-Type: " + content_type.encode() + b"\r\nContent-Disposition: " + disposition.encode()
        + b"; filename=f\r\nContent-ID: <c1>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(data) + b"\r\n--B--\r\n"
    )


@pytest.mark.parametrize(
    ("content_type", "data", "served", "disposition"),
    [
        ("text/html", b"<script>alert(1)</script>", "application/octet-stream", "attachment"),
        ("image/svg+xml", b"<svg onload='alert(1)'/>", "application/octet-stream", "attachment"),
        ("application/xml", b"<x/>", "application/octet-stream", "attachment"),
        ("image/png", PNG, "image/png", "inline"),
        ("application/pdf", b"%PDF-1.4", "application/pdf", "inline"),
    ],
)
def test_only_passive_types_are_served_as_themselves_and_every_download_is_sandboxed(
    client: Client, content_type: str, data: bytes, served: str, disposition: str
) -> None:
    mail_id = stored(client, with_attachment(content_type, data), raw=True)
    response = client.http.get(f"/mails/{mail_id}/attachments/1", headers=read_headers())
    if response.status_code == 302:  # a type API Gateway would garble: the link's own answer must say the same
        response = requests.get(response.headers["Location"], timeout=30)
        assert response.status_code == 200
        assert response.content == data
    else:
        assert (response.status_code, response.body) == (200, data)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Content-Type"] == served
    assert response.headers["Content-Disposition"].split(";")[0] == disposition


def test_a_redirect_to_a_stored_object_is_sandboxed_too(client: Client) -> None:
    mail_id = stored(client, with_attachment("text/html", b"<p>hi</p>"), raw=True)
    # Served from S3 when the type is not one API Gateway passes as bytes, or the object is large.
    response = client.http.get(f"/mails/{mail_id}/attachments/1", headers=read_headers())
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_the_original_from_ses_is_a_message_to_save(client: Client, s3: Any) -> None:
    source = message("Via SES", "<ses-raw@shop.example>")
    s3.put_object(Bucket=BUCKET, Key="ses/trust-1", Body=source)
    notice = {"notificationType": "Received", "mail": {"source": "noreply@shop.example"},
              "receipt": {"recipients": ["orders@example.com"],
                          "action": {"type": "S3", "bucketName": BUCKET, "objectKey": "ses/trust-1"}}}
    event = client.events.generate_sqs_event(message_bodies=[json.dumps(notice)], queue_name="inbound-mail-ses")
    client.lambda_.invoke("receive_ses", event)
    listing = json.loads(client.http.get("/mails?to=orders@example.com", headers=read_headers()).body)
    [mail] = listing["mails"]
    raw = client.http.get(f"/mails/{mail['id']}/raw", headers=read_headers())
    assert (raw.status_code, raw.body) == (200, source)
    assert raw.headers["Content-Type"] == "message/rfc822"
    assert raw.headers["Content-Disposition"].startswith(f'attachment; filename="{mail["id"]}.eml"')


# -- 5. A reply address no one can guess ----------------------------------------------------------


def hand_off_once(client: Client) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for received in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]:
        client.lambda_.invoke("hand_off", event_for(received, arn, "us-east-1"))


def test_a_reply_to_a_guessed_thread_address_bounces_and_says_why(client: Client) -> None:
    source = (b"From: Mallory <m@attacker.example>\r\nTo: reply+42@example.com\r\nSubject: Re: ticket 42\r\n"
              b"Message-ID: <r42@attacker.example>\r\n\r\nPlease send the invoice to my address instead.\r\n")
    mail_id = stored(client, source)
    hand_off_once(client)
    assert document(client, mail_id)["processing"] == {
        "status": "bounced", "attempts": 1,
        "error": {"class": "Bounce", "message": "the reply address was not issued to this sender", "route": "replies"},
    }
    threads = boto3.client("dynamodb").query(
        TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "thread#42"}}
    )
    assert threads["Items"] == []


# -- 6. Odd input gets the status of its cause ----------------------------------------------------


@pytest.mark.parametrize("limit", ["²", "١", "٣٠"])
def test_a_limit_in_other_digits_is_400(client: Client, limit: str) -> None:
    response = client.http.get(f"/mails?limit={limit}", headers=read_headers())
    assert response.status_code == 400
    assert json.loads(response.body)["Code"] == "BadRequestError"


def test_a_content_type_with_a_non_ascii_parameter_is_stored(client: Client, s3: Any) -> None:
    body, content_type = build_body(message("charset"))
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type + "; note=café"})
    assert response.status_code == 200, response.body
    mail_id = json.loads(response.body)["id"]
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"mails/{mail_id}/")["Contents"]]
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["original-content-type"].endswith("note=caf%C3%A9")


def test_an_envelope_address_too_long_for_a_key_is_stored_without_its_mailbox(client: Client) -> None:
    long_address = "x" * 1100 + "@example.com"
    mail_id = stored(client, message("long", "<long@x.example>"), envelope_to=[long_address, "ops@example.com"])
    assert document(client, mail_id)["envelope"]["to"] == [long_address, "ops@example.com"]
    listing = json.loads(client.http.get("/mails?to=ops@example.com", headers=read_headers()).body)
    assert [mail["id"] for mail in listing["mails"]] == [mail_id]


def test_no_route_reveals_an_expired_mail(client: Client, dynamodb: Any) -> None:
    mail_id = stored(client, message("expired", "<gone@x.example>"))
    dynamodb.update_item(
        TableName=TABLE, Key={"pk": {"S": f"mail#{mail_id}"}, "sk": {"S": "mail"}},
        UpdateExpression="SET expires_at = :past, #s = :failed",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}, ":failed": {"S": "failed"}},
    )
    for method, path in (("GET", f"/mails/{mail_id}"), ("GET", f"/mails/{mail_id}/raw"),
                         ("POST", f"/mails/{mail_id}/retry")):
        response = client.http.request(method, path, headers=read_headers())
        assert response.status_code == 404, (method, path, response.body)
