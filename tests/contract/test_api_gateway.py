"""The app as API Gateway calls it: a proxy event with a base64 body, as Lambda receives it.

Chalice's test client and `chalice local` never base64-wrap a multipart body,
so only an event like this shows that non-UTF-8 bytes arrive untouched.
"""

from __future__ import annotations

import base64
import json
from email import policy
from email.parser import BytesParser
from typing import Any

import app as app_module
from tests.conftest import KEY, SECRET, TOKEN


def api_gateway_event(
    method: str, path: str, resource: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None, path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "stage": "local", "requestId": "r1"},
        "body": base64.b64encode(body).decode() if body is not None else None,
        "isBase64Encoded": body is not None,
    }


class LambdaContext:
    function_name = "inbound-mail"
    aws_request_id = "r1"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def download(mail_id: str, what: str) -> dict[str, Any]:
    """``GET /mails/{id}/raw`` or ``/eml`` as API Gateway hands it to Lambda, and Lambda's answer."""
    event = api_gateway_event(
        "GET", f"/mails/{mail_id}/{what}", f"/mails/{{mail_id}}/{what}",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "*/*"}, path_parameters={"mail_id": mail_id},
    )
    answer: dict[str, Any] = app_module.app(event, LambdaContext())
    return answer


def test_shift_jis_and_binary_bytes_survive_api_gateways_base64_body(configured: str) -> None:
    text = "①㈱～ 日本語の本文"
    attachment = bytes(range(256))
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n".encode()
        + text.encode("cp932")
        + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"charsets\"\r\n\r\n".encode()
        + b'{"text": "Shift_JIS"}'
        + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"a.bin\"\r\n"
          "Content-Type: application/octet-stream\r\n\r\n".encode()
        + attachment
        + f"\r\n--{boundary}--\r\n".encode()
    )
    event = api_gateway_event(
        "POST", "/mails", "/mails", body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        query={"MailKey": KEY, "MailSecret": SECRET},
    )
    response = app_module.app(event, LambdaContext())
    assert response["statusCode"] == 200, response
    mail_id = json.loads(response["body"])["id"]

    read = app_module.app(
        api_gateway_event(
            "GET", f"/mails/{mail_id}", "/mails/{mail_id}", headers={"Authorization": f"Bearer {TOKEN}"},
            path_parameters={"mail_id": mail_id},
        ),
        LambdaContext(),
    )
    mail = json.loads(read["body"])
    assert mail["text"] == text
    assert mail["attachments"][0]["size"] == 256

    raw = download(mail_id, "raw")
    assert raw["isBase64Encoded"] is True
    assert base64.b64decode(raw["body"]) == body

    # The message rebuilt from that post goes out as bytes too: message/rfc822 is a declared binary type.
    eml = download(mail_id, "eml")
    assert (eml["statusCode"], eml["isBase64Encoded"], eml["headers"]["Content-Type"]) == (200, True, "message/rfc822")
    rebuilt = BytesParser(policy=policy.default).parsebytes(base64.b64decode(eml["body"]))
    assert rebuilt.get_body(("plain",)).get_content() == text
    assert [part.get_content() for part in rebuilt.iter_attachments()] == [attachment]


def test_a_relayed_message_with_8bit_bytes_arrives_as_sent_and_postmark_reads_the_peer_address(
    configured: str, monkeypatch: Any
) -> None:
    """message/rfc822 is a binary type, so API Gateway base64-wraps it; sourceIp is the TCP peer, not a header."""
    auth = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    message = b"From: a@example.org\r\nTo: box@example.com\r\nSubject: x\r\n\r\nna\xefve \x00\xff\r\n"
    event = api_gateway_event("POST", "/ingress/relay", "/ingress/relay", body=message,
                              headers={"Content-Type": "message/rfc822", "Authorization": auth})
    stored = json.loads(app_module.app(event, LambdaContext())["body"])
    raw = download(stored["id"], "raw")
    assert base64.b64decode(raw["body"]) == message

    from chalicelib.wiring import services

    monkeypatch.setenv("POSTMARK_IPS", "203.0.113.0/24")
    services.reset()
    posted = json.dumps({"FromFull": {"Email": "a@example.org", "Name": ""}, "TextBody": "hi"}).encode()
    for peer, forwarded, status in (("203.0.113.9", "198.51.100.1", 200), ("198.51.100.1", "203.0.113.9", 401)):
        event = api_gateway_event("POST", "/ingress/postmark", "/ingress/postmark", body=posted,
                                  headers={"Content-Type": "application/json", "Authorization": auth,
                                           "X-Forwarded-For": f"{forwarded}, {peer}"})
        event["requestContext"]["identity"] = {"sourceIp": peer}
        assert app_module.app(event, LambdaContext())["statusCode"] == status
