"""What each new ingress checks before it reads a mail: Mailgun's signature and its tokens, Postmark's sources."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.ingress.mailgun import poster as mailgun_poster
from chalicelib.wiring import services
from tests.conftest import BUCKET, TABLE, read_headers
from tests.contract.test_ingresses import EML, mails
from tests.support.ingresses import MAILGUN_KEY, MAILGUN_OLD_KEY, Hook, as_mailgun, as_postmark, as_relay, down, inject

__all__ = ["inject"]


@pytest.fixture
def signed_only(monkeypatch: pytest.MonkeyPatch, configured: str) -> None:
    """Mailgun's signature alone, no MAIL_CREDENTIALS: the common set-up."""
    monkeypatch.delenv("MAIL_CREDENTIALS")
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", f"{MAILGUN_OLD_KEY},{MAILGUN_KEY}")
    services.reset()


def answer(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status_code, json.loads(response.body)


def refusal(message: str) -> tuple[int, dict[str, str]]:
    return 401, {"Code": "AuthenticationError", "Message": message}


def tokens(dynamodb: Any) -> list[dict[str, Any]]:
    return [item for item in dynamodb.scan(TableName=TABLE)["Items"] if item["sk"]["S"] == "once"]


def post_mailgun(client: Client, body: bytes, content_type: str, path: str = "/ingress/mailgun") -> Any:
    return client.http.post(path, body=body, headers={"Content-Type": content_type})


@pytest.mark.usefixtures("signed_only")
def test_mailgun_signed_by_either_key_of_a_rotation_is_stored(client: Client) -> None:
    for key, eml in ((MAILGUN_OLD_KEY, EML), (MAILGUN_KEY, EML.replace(b"ingress-1@", b"ingress-2@"))):
        body, content_type = mailgun_poster.build_body(eml, key)
        assert answer(post_mailgun(client, body, content_type))[0] == 200


@pytest.mark.usefixtures("signed_only")
@pytest.mark.parametrize(
    ("signed", "message"),
    [
        ({"key": "not-the-key"}, "signature invalid"),
        ({"timestamp": int(time.time()) - 3600}, "signature timestamp outside tolerance"),
        ({"timestamp": int(time.time()) + 3600}, "signature timestamp outside tolerance"),
    ],
)
def test_mailgun_signature_wrong_or_stale_is_401_and_nothing_is_stored(
    client: Client, signed: dict[str, Any], message: str, dynamodb: Any
) -> None:
    # Not signed.pop(): the parameter is one dict for the whole process, and a second run would find no key in it.
    fields = {name: value for name, value in signed.items() if name != "key"}
    body, content_type = mailgun_poster.build_body(EML, signed.get("key", MAILGUN_KEY), **fields)
    assert answer(post_mailgun(client, body, content_type)) == refusal(message)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


@pytest.mark.usefixtures("signed_only")
def test_mailgun_without_a_signature_is_401(client: Client) -> None:
    fields, _ = mailgun_poster.mailgun_fields(EML)
    from urllib.parse import urlencode

    body = urlencode(fields).encode()
    assert answer(post_mailgun(client, body, "application/x-www-form-urlencoded")) == refusal("signature missing")


@pytest.mark.usefixtures("signed_only")
def test_mailgun_token_replayed_on_another_body_is_401(client: Client, dynamodb: Any) -> None:
    stamp, token = int(time.time()), "t" * 50
    first, content_type = mailgun_poster.build_body(EML, MAILGUN_KEY, timestamp=stamp, token=token)
    assert answer(post_mailgun(client, first, content_type))[0] == 200
    forged = EML.replace(b"Bonjour", b"Payez ici")
    second, content_type = mailgun_poster.build_body(forged, MAILGUN_KEY, timestamp=stamp, token=token)
    assert answer(post_mailgun(client, second, content_type)) == refusal("signature token already used")
    assert len(mails(dynamodb)) == 1
    [remembered] = tokens(dynamodb)
    assert int(remembered["expires_at"]["N"]) == stamp + 600 + 60  # DynamoDB's TTL removes it after


@pytest.mark.usefixtures("signed_only")
def test_mailgun_retrying_the_same_post_with_its_token_is_a_duplicate_not_a_replay(client: Client) -> None:
    body, content_type = mailgun_poster.build_body(EML, MAILGUN_KEY, token="r" * 50)
    first = answer(post_mailgun(client, body, content_type))[1]
    assert answer(post_mailgun(client, body, content_type)) == (200, {"id": first["id"], "duplicate": True})


@pytest.mark.usefixtures("signed_only")
def test_mailgun_token_that_cannot_be_remembered_is_503(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    inject("dynamodb", "PutItem", down)
    body, content_type = mailgun_poster.build_body(EML, MAILGUN_KEY)
    status, refused = answer(post_mailgun(client, body, content_type))
    assert (status, refused["Message"]) == (503, "DynamoDB PutItem failed (EndpointConnectionError)")
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


@pytest.mark.usefixtures("signed_only")
def test_mailgun_anonymous_form_that_cannot_be_read_is_400_and_never_stored(client: Client, s3: Any) -> None:
    response = post_mailgun(client, b"--x\r\nno headers", "multipart/form-data; boundary=x")
    status, refused = answer(response)
    assert (status, refused["Code"], "quarantine" in refused) == (400, "MalformedMailError", False)
    assert s3.list_objects_v2(Bucket=BUCKET).get("Contents", []) == []


@pytest.mark.usefixtures("signed_only")
def test_mailgun_mime_keeps_the_message_for_eml(client: Client) -> None:
    body, content_type = mailgun_poster.build_body(EML, MAILGUN_KEY, mime=True)
    stored = answer(post_mailgun(client, body, content_type, "/ingress/mailgun/mime"))[1]
    eml = client.http.get(f"/mails/{stored['id']}/eml", headers=read_headers())
    assert (eml.status_code, eml.body) == (200, EML)
    raw = client.http.get(f"/mails/{stored['id']}/raw", headers=read_headers())
    assert raw.body == body


def test_mailgun_parsed_post_has_no_message_to_give(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    services.reset()
    stored = answer(as_mailgun(client, EML))[1]
    eml = client.http.get(f"/mails/{stored['id']}/eml", headers=read_headers())
    assert answer(eml) == (404, {"Code": "NotFoundError", "Message":
                                 "Mailgun posted its parse, not the message (use the URL ending in /mime)"})


def test_relay_stores_the_message_byte_for_byte_with_the_mtas_envelope(client: Client) -> None:
    stored = answer(as_relay(client, EML, **{"X-Envelope-To": "a@example.com, <b@example.com>"}))[1]
    mail = json.loads(client.http.get(f"/mails/{stored['id']}", headers=read_headers()).body)
    assert mail["envelope"] == {"from": "sender@example.org", "to": ["a@example.com", "b@example.com"]}
    for path in ("eml", "raw"):
        assert client.http.get(f"/mails/{stored['id']}/{path}", headers=read_headers()).body == EML


def test_postmark_raw_email_is_the_message_eml_gives(client: Client) -> None:
    stored = answer(as_postmark(client, EML, raw=True))[1]
    assert client.http.get(f"/mails/{stored['id']}/eml", headers=read_headers()).body == EML


def test_postmark_without_raw_email_has_no_message_to_give(client: Client) -> None:
    stored = answer(as_postmark(client, EML))[1]
    assert client.http.get(f"/mails/{stored['id']}/eml", headers=read_headers()).status_code == 404


def test_postmark_verdicts_come_from_its_headers(client: Client) -> None:
    stored = answer(as_postmark(client, EML))[1]
    mail = json.loads(client.http.get(f"/mails/{stored['id']}", headers=read_headers()).body)
    assert (mail["spf"], mail["spam_score"]) == ("pass", -0.1)


@pytest.mark.parametrize(
    ("allowed", "status"), [("", 200), ("127.0.0.1", 200), ("127.0.0.0/8, 198.51.100.0/24", 200),
                            ("198.51.100.0/24", 401)],
)
def test_postmark_allow_list_reads_the_peer_address(
    client: Client, monkeypatch: pytest.MonkeyPatch, allowed: str, status: int
) -> None:
    """chalice local and the test client give the peer as 127.0.0.1, as API Gateway gives the caller's address."""
    monkeypatch.setenv("POSTMARK_IPS", allowed)
    services.reset()
    assert as_postmark(client, EML).status_code == status


def test_postmark_allow_list_ignores_a_forwarded_for_header(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMARK_IPS", "198.51.100.0/24")
    services.reset()
    response = as_postmark(client, EML, **{"X-Forwarded-For": "198.51.100.7"})
    assert answer(response) == refusal("source address not allowed")
