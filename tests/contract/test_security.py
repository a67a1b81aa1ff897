"""No one gets in: signed webhooks, bounds on hostile input, constant-time checks, nothing secret leaked."""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests_toolbelt import MultipartEncoder

from chalicelib import constant_time
from chalicelib.ingress.credentials import check_ingest
from chalicelib.ingress.form import parse as parse_form
from chalicelib.ingress.sendgrid import payload
from chalicelib.ingress.sendgrid.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from chalicelib.mime.parts import MAX_MIME_PARTS
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, KEY, SECRET, TABLE, TOKEN, fixture_body, mail_path, read_headers
from tests.support.examples import examples
from tests.support.signing import public_key_base64, sign

NOW = datetime(2026, 11, 27, 21, 0, 0, tzinfo=UTC)
PRIVATE = ec.generate_private_key(ec.SECP256R1())


def signed_headers(
    body: bytes, timestamp: int | None = None, key: ec.EllipticCurvePrivateKey = PRIVATE
) -> dict[str, str]:
    stamp = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    return {SIGNATURE_HEADER: sign(key, stamp, body), TIMESTAMP_HEADER: stamp}


def stored_count(dynamodb: Any) -> int:
    return sum(1 for item in dynamodb.scan(TableName=TABLE)["Items"] if item["sk"]["S"] == "mail")


def use_key(monkeypatch: pytest.MonkeyPatch, credentials: bool) -> None:
    monkeypatch.setenv("SENDGRID_VERIFICATION_KEY", public_key_base64(PRIVATE))
    if not credentials:
        monkeypatch.delenv("MAIL_CREDENTIALS")
    services.reset()
    services.sendgrid().clock = lambda: NOW


def post(client: Client, body: bytes, content_type: str, path: str = "/mails", **headers: str) -> Any:
    return client.http.post(path, body=body, headers={"Content-Type": content_type, **headers})


def test_a_signed_post_is_stored_without_query_credentials(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    use_key(monkeypatch, credentials=False)
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type, **signed_headers(body))
    assert response.status_code == 200
    assert stored_count(dynamodb) == 1


def rejections() -> list[tuple[str, Callable[[bytes], tuple[bytes, dict[str, str]]]]]:
    stamp = int(NOW.timestamp())
    other = ec.generate_private_key(ec.SECP256R1())
    return [
        ("unsigned", lambda body: (body, {})),
        ("tampered body", lambda body: (body.replace(b"Hello", b"Jello"), signed_headers(body))),
        ("stale", lambda body: (body, signed_headers(body, stamp - 601))),
        ("future-dated", lambda body: (body, signed_headers(body, stamp + 601))),
        ("another key", lambda body: (body, signed_headers(body, key=other))),
        ("malformed signature", lambda body: (body, {**signed_headers(body), SIGNATURE_HEADER: "%%%"})),
        ("timestamp swapped", lambda body: (body, {**signed_headers(body), TIMESTAMP_HEADER: str(stamp - 1)})),
    ]


@pytest.mark.parametrize(("case", "make"), rejections(), ids=[name for name, _ in rejections()])
def test_a_missing_tampered_stale_or_foreign_signature_is_401_and_stores_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any, s3: Any, case: str, make: Any
) -> None:
    use_key(monkeypatch, credentials=False)
    body, content_type = fixture_body("default_data.txt")
    sent, headers = make(body)
    response = post(client, sent, content_type, **headers)
    assert response.status_code == 401
    assert json.loads(response.body)["Code"] == "AuthenticationError"
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_with_both_configured_both_the_signature_and_the_credentials_are_needed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_key(monkeypatch, credentials=True)
    body, content_type = fixture_body("default_data.txt")
    assert post(client, body, content_type, path=mail_path(), **signed_headers(body)).status_code == 200
    assert post(client, body, content_type, path="/mails", **signed_headers(body)).status_code == 401
    assert post(client, body, content_type, path=mail_path()).status_code == 401


def test_the_key_can_come_from_ssm(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("ssm").put_parameter(Name="/k", Value=public_key_base64(PRIVATE), Type="SecureString")
    monkeypatch.setenv("SENDGRID_VERIFICATION_KEY_PARAMETER", "/k")
    use_key(monkeypatch, credentials=False)
    monkeypatch.delenv("SENDGRID_VERIFICATION_KEY")
    services.reset()
    services.sendgrid().clock = lambda: NOW
    body, content_type = fixture_body("default_data.txt")
    assert post(client, body, content_type, **signed_headers(body)).status_code == 200


def test_a_broken_configured_key_is_503_so_sendgrid_retries(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_VERIFICATION_KEY", "bm90IGEga2V5")
    services.reset()
    body, content_type = fixture_body("default_data.txt")
    response = post(client, body, content_type, path=mail_path())
    assert (response.status_code, json.loads(response.body)["Code"]) == (503, "NotConfiguredError")


def nested_raw(depth: int) -> bytes:
    head, tail = b"", b""
    for level in range(depth):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        tail = b"\r\n--b%d--\r\n" % level + tail
    return b"Subject: deep\r\nMessage-ID: <deep@example.com>\r\n" + head + b"Content-Type: text/plain\r\n\r\nhi" + tail


@pytest.mark.parametrize("depth", [33, 1500])
def test_absurd_nesting_in_raw_mode_is_413_and_kept_aside(client: Client, s3: Any, depth: int) -> None:
    encoder = MultipartEncoder(fields={"email": nested_raw(depth)})
    start = time.perf_counter()
    response = post(client, encoder.to_string(), encoder.content_type, path=mail_path())
    assert time.perf_counter() - start < 5
    assert response.status_code == 413
    assert json.loads(response.body)["quarantine"].startswith("quarantine/")


def test_nesting_within_the_bound_is_read() -> None:
    form = parse_form(*build_body(nested_raw(30), raw=True))
    assert payload.parse(form).text == "hi"


def test_too_many_mime_parts_in_raw_mode_is_413(client: Client) -> None:
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(MAX_MIME_PARTS + 1))
    message = b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n"
    encoder = MultipartEncoder(fields={"email": message})
    assert post(client, encoder.to_string(), encoder.content_type, path=mail_path()).status_code == 413


def test_a_wrong_key_costs_as_many_comparisons_as_a_right_one(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(constant_time.hmac, "compare_digest", counting)
    pairs = (("k1", "s1"), ("k2", "s2"), ("k3", "s3"))
    counts = []
    for key, secret in (("k1", "s1"), ("k3", "s3"), ("k1", "bad"), ("zz", "s1"), ("zz", "zz")):
        calls.clear()
        with contextlib.suppress(Exception):
            check_ingest(pairs, {"MailKey": key, "MailSecret": secret}, None)
        counts.append(len(calls))
    assert counts == [3, 3, 3, 3, 3]


def test_no_secret_signature_token_or_content_in_any_log_or_reply(
    client: Client, monkeypatch: pytest.MonkeyPatch, log_records: pytest.LogCaptureFixture, dynamodb: Any,
    logged: list[dict[str, Any]], capsys: pytest.CaptureFixture[str],
) -> None:
    """Every record, every line as the log holds it (Lambda context included), every metric blob, every reply."""
    use_key(monkeypatch, credentials=True)
    monkeypatch.setenv("MAX_BODY_BYTES", "20000")
    services.reset()
    services.sendgrid().clock = lambda: NOW
    secret_text = "confidential-body-text"
    eml = (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: secret-subject\r\nMessage-ID: <id-1@x>\r\n"
        b"Content-Type: text/plain\r\n\r\n" + secret_text.encode() + b"\r\n"
    )
    body, content_type = build_body(eml)
    signed = signed_headers(body)
    replies = [
        post(client, body, content_type, path=mail_path(), **signed),
        post(client, body, content_type, path=mail_path(), **signed),
        post(client, body, content_type, path=mail_path(KEY, SECRET + "x"), **signed),
        post(client, body, content_type, path=mail_path(),
             **{**signed, SIGNATURE_HEADER: signed[SIGNATURE_HEADER][::-1]}),
        post(client, body + b"x" * 30000, content_type, path=mail_path(), **signed_headers(body + b"x" * 30000)),
        post(client, b"junk " + secret_text.encode(), "multipart/form-data; boundary=q", path=mail_path(),
             **signed_headers(b"junk " + secret_text.encode())),
        client.http.get("/mails?cursor=" + secret_text, headers=read_headers()),
        client.http.get("/mails", headers=read_headers(TOKEN + "x")),
    ]
    dynamodb.delete_table(TableName=TABLE)
    other, other_type = build_body(eml.replace(b"id-1", b"id-2"))
    replies.append(post(client, other, other_type, path=mail_path(), **signed_headers(other)))
    assert [reply.status_code for reply in replies] == [200, 200, 401, 401, 413, 400, 400, 401, 503]
    forbidden = [SECRET, TOKEN, signed[SIGNATURE_HEADER], secret_text, "secret-subject", "b@example.com",
                 public_key_base64(PRIVATE)]
    texts = [r.getMessage() + (r.exc_text or "") for r in log_records.records]
    assert len(logged) == len(replies)
    texts += [json.dumps(line, ensure_ascii=False) for line in logged]
    emf = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(emf) == len(replies) - 2  # the two read requests count nothing
    texts += emf
    texts += [reply.body.decode("utf-8", "replace") + json.dumps(dict(reply.headers)) for reply in replies]
    for text in texts:
        for value in forbidden:
            assert value not in text


FIELDS = ["headers", "text", "html", "subject", "from", "to", "cc", "charsets", "envelope", "dkim", "SPF",
          "spam_score", "spam_report", "sender_ip", "attachment-info", "content-ids", "attachments"]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(st.sampled_from(FIELDS), st.binary(max_size=200), min_size=1),
    st.lists(st.binary(max_size=100), max_size=2),
)
def test_no_bytes_in_any_parsed_field_make_the_route_fail(
    client: Client, values: dict[str, bytes], files: list[bytes]
) -> None:
    fields: list[tuple[str, Any]] = list({"text": b"x", **values}.items())
    fields += [(f"attachment{i}", (f"f{i}", data, "application/octet-stream")) for i, data in enumerate(files, 1)]
    encoder = MultipartEncoder(fields=fields)
    response = post(client, encoder.to_string(), encoder.content_type, path=mail_path())
    assert response.status_code == 200, response.body


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.binary(max_size=100))
def test_no_bytes_as_a_raw_message_make_the_route_fail(client: Client, message: bytes, envelope: bytes) -> None:
    encoder = MultipartEncoder(fields=[("email", message), ("envelope", envelope)])
    response = post(client, encoder.to_string(), encoder.content_type, path=mail_path())
    assert response.status_code == 200, response.body  # 600 bytes cannot nest 32 levels or hold 1000 parts


def decode_seconds(make: Callable[[int], bytes], sizes: tuple[int, ...]) -> list[float]:
    """The best of five timings per size, taken in turns (ABAB…), in this thread's CPU time.

    CPU time, not wall time: a shared machine that preempts the test for a few
    milliseconds would otherwise make a 2 ms decode look quadratic.
    """
    bodies = [build_body(make(size), raw=True) for size in sizes]
    best = [float("inf")] * len(sizes)
    for _ in range(5):
        for n, (body, content_type) in enumerate(bodies):
            start = time.thread_time()
            payload.parse(parse_form(body, content_type))
            best[n] = min(best[n], time.thread_time() - start)
    return best


@pytest.mark.parametrize(
    "make",
    [
        lambda n: b"Subject: " + b"=?utf-8?q?a?= " * n + b"\r\n\r\nbody",
        lambda n: b"To: " + b"a@b, " * n + b"\r\n\r\nbody",
        lambda n: b"X-Long: " + b"a" * (n * 20) + b"\r\n\r\nbody",
        lambda n: b"Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n" + b"\x1b$B%?\x1b(B" * n,
        lambda n: b"".join(b"X-H%d: v\r\n" % i for i in range(n)) + b"\r\nbody",
        lambda n: b"Date: " + b"(" * n + b")" * n + b"\r\nMessage-ID: <" + b"(" * n + b"x>\r\n\r\nbody",
    ],
    ids=["encoded words", "addresses", "long header", "iso-2022-jp shifts", "many headers", "nested comments"],
)
def test_decoding_time_grows_linearly_with_hostile_input(make: Callable[[int], bytes]) -> None:
    small, large = decode_seconds(make, (2000, 8000))
    # Four times the input; linear is about 4x, quadratic 16x. The margin absorbs a noisy machine.
    assert large < small * 9 + 0.01


def test_during_a_key_rotation_posts_signed_with_either_key_are_stored(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    new = ec.generate_private_key(ec.SECP256R1())
    stranger = ec.generate_private_key(ec.SECP256R1())
    use_key(monkeypatch, credentials=False)
    monkeypatch.setenv("SENDGRID_VERIFICATION_KEY", f"{public_key_base64(PRIVATE)},{public_key_base64(new)}")
    services.reset()
    services.sendgrid().clock = lambda: NOW
    body, content_type = fixture_body("default_data.txt")
    other, other_type = fixture_body("raw_data.txt")
    assert post(client, body, content_type, **signed_headers(body)).status_code == 200
    assert post(client, other, other_type, **signed_headers(other, key=new)).status_code == 200
    refused = post(client, body, content_type, **signed_headers(body, key=stranger))
    assert refused.status_code == 401
    assert json.loads(refused.body)["Message"] == "signature invalid"
    assert stored_count(dynamodb) == 2
