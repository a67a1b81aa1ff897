"""What a delivery survives: storage unreachable, throttled, failing between the S3 write and the commit, and
the process killed mid-request.

Faults are injected below our code, where real ones happen: an endpoint on a
closed port, a small proxy on 127.0.0.1 in front of moto's DynamoDB that
throttles, fails, drops or stalls chosen requests, and botocore's own
``before-send`` hook answering chosen S3 requests with an error. The store and
the app run unchanged. The promise checked every time: each delivery ends as
200-stored or 5xx (a killed process answers nothing, which API Gateway turns
into a 502 or 504), and after SendGrid-style retries the stored set equals the
sent set, nothing twice, and no mail is visible half-written.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from chalice.test import Client

from chalicelib.storage.boto import BOTO_CONFIG
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, KEY, SECRET, TABLE, TOKEN, free_port, mail_path, read_headers
from tests.support.processes import launch

pytestmark = pytest.mark.slow

# What botocore may do to one call under chalicelib.storage.boto.BOTO_CONFIG (Config's
# attributes are set from its keyword arguments, unknown to the type stubs).
_CONFIG: Any = BOTO_CONFIG
MAX_ATTEMPTS: int = _CONFIG.retries["total_max_attempts"]
# One call's worst case with that config, plus slack for a loaded 2-core machine.
CALL_BUDGET_S = MAX_ATTEMPTS * (_CONFIG.connect_timeout + _CONFIG.read_timeout) + 3


def eml(n: int, attachment: bytes = b"", text: str = "本文です。") -> bytes:
    """A small real message; distinct Message-IDs make distinct mails."""
    head = (
        f"From: Sender <sender@example.com>\r\nTo: info@example.com\r\nSubject: mail {n}\r\n"
        f"Date: Wed, 25 Sep 2013 18:16:53 +0900\r\nMessage-ID: <reliability.{n}@example.com>\r\nMIME-Version: 1.0\r\n"
    ).encode()
    if not attachment:
        return head + b"Content-Type: text/plain; charset=UTF-8\r\n\r\n" + text.encode() + b"\r\n"
    return head + (
        b'Content-Type: multipart/mixed; boundary="mixed"\r\n\r\n--mixed\r\n'
        b"Content-Type: text/plain; charset=UTF-8\r\n\r\n" + text.encode() + b"\r\n--mixed\r\n"
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(attachment) + b"--mixed--\r\n"
    )


# -- a proxy in front of moto's DynamoDB ---------------------------------------------------------

PASS, DROP, STALL = "pass", "drop", "stall"  # the request never reaches moto
DROP_AFTER, STALL_AFTER = "drop-after", "stall-after"  # it does (a transaction commits), its answer never comes
THROTTLED = "ProvisionedThroughputExceededException"
THROTTLING = "ThrottlingException"
INTERNAL = "InternalServerError"
_ERROR_TYPES = {
    THROTTLED: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    THROTTLING: "com.amazon.coral.availability#ThrottlingException",
    INTERNAL: "com.amazonaws.dynamodb.v20120810#InternalServerError",
}

Rule = Callable[[str, int], str]  # (operation, attempt number of that operation) -> action


@dataclass
class DynamoProxy:
    """Forwards DynamoDB's JSON requests to moto, except those its rule says to fail, drop or stall."""

    upstream: str
    rule: Rule = lambda operation, attempt: PASS
    attempts: Counter[str] = field(default_factory=Counter)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        operation = (handler.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        self.attempts[operation] += 1
        action = self.rule(operation, self.attempts[operation])
        if action in _ERROR_TYPES:
            status = 500 if action == INTERNAL else 400
            self._answer(handler, status, json.dumps({"__type": _ERROR_TYPES[action], "message": "injected"}).encode(),
                         {"Content-Type": "application/x-amz-json-1.0"})
            return
        if action in (DROP, STALL):
            # Never forwarded: the connection closes without an answer (after a stall, when released).
            if action == STALL:
                self.stalled.set()
                self.release.wait(60)
            handler.close_connection = True
            return
        upstream = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        connection.request("POST", handler.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        if action in (DROP_AFTER, STALL_AFTER):
            if action == STALL_AFTER:
                self.stalled.set()
                self.release.wait(60)
            handler.close_connection = True
            return
        passed = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "x-amzn-requestid",
                                                                           "x-amz-crc32")}
        self._answer(handler, response.status, data, passed)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def dynamo_proxy(aws: str) -> Iterator[DynamoProxy]:
    proxy = DynamoProxy(aws)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            proxy.handle(self)

        def log_message(self, format: str, *args: Any) -> None:  # one line per request otherwise
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.release.set()
    server.shutdown()
    server.server_close()


# -- S3 faults through botocore's before-send hook ----------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class S3Faults:
    """Answers chosen S3 operations with an error before they leave botocore."""

    fail: Callable[[str, int], int | None] = lambda operation, attempt: None  # -> status, or None to pass
    attempts: Counter[str] = field(default_factory=Counter)

    def before_send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        operation = kwargs["event_name"].rpartition(".")[2]
        self.attempts[operation] += 1
        status = self.fail(operation, self.attempts[operation])
        if status is None:
            return None
        code = "SlowDown" if status == 503 else "InternalError"
        body = f"<Error><Code>{code}</Code><Message>injected</Message><RequestId>r</RequestId></Error>".encode()
        headers: Any = {"Content-Type": "application/xml"}
        return AWSResponse(request.url, status, headers, _Raw(body))


@pytest.fixture
def s3_faults(configured: str) -> Iterator[S3Faults]:
    faults = S3Faults()
    # The app's clients come from boto3's default session and copy its event
    # hooks when built, so the hook goes there and the app builds them anew.
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    # A before-send handler that returns a response is botocore's documented way to answer instead of the network.
    hook: Any = faults.before_send
    boto3.DEFAULT_SESSION.events.register("before-send.s3.*", hook, unique_id="test-s3-faults")
    services.reset()
    yield faults
    boto3.DEFAULT_SESSION.events.unregister("before-send.s3.*", unique_id="test-s3-faults")
    services.reset()


# -- helpers ------------------------------------------------------------------------------------


def post(client: Client, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    return response.status_code, json.loads(response.body)


def stored_mails(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return [item for item in items if item["sk"]["S"] == "mail"]


def ids_in_s3(s3: Any) -> set[str]:
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key.split("/")[1] for key in keys if key.startswith("mails/")}


def assert_nothing_half_written(client: Client, s3: Any) -> None:
    """Every mail that has objects in S3 is either invisible (404) or whole: document, raw and attachments."""
    for mail_id in ids_in_s3(s3):
        response = client.http.get(f"/mails/{mail_id}", headers=read_headers())
        if response.status_code == 404:
            continue
        assert response.status_code == 200, response.body
        document = json.loads(response.body)
        raw = client.http.get(f"/mails/{mail_id}/raw", headers=read_headers())
        assert raw.status_code == 200
        assert hashlib.sha256(raw.body).hexdigest() == document["raw_sha256"]


def use_dynamodb(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
    services.reset()


def use_s3(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    services.reset()


def closed_port() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- unreachable --------------------------------------------------------------------------------


def test_dynamodb_unreachable_is_503_invisible_and_the_retry_stores_it_once(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any, s3: Any, aws: str
) -> None:
    body, content_type = build_body(eml(1))
    use_dynamodb(monkeypatch, closed_port())
    started = time.monotonic()
    status, answer = post(client, body, content_type)
    assert status == 503 and answer["Code"] == "StorageUnavailableError"
    assert time.monotonic() - started < CALL_BUDGET_S
    # The original is in S3 (written first), but no read shows it: the commit never happened.
    [mail_id] = ids_in_s3(s3)
    assert client.http.get(f"/mails/{mail_id}", headers=read_headers()).status_code == 503  # reads need DynamoDB too
    use_dynamodb(monkeypatch, aws)
    assert client.http.get(f"/mails/{mail_id}", headers=read_headers()).status_code == 404

    status, answer = post(client, body, content_type)  # SendGrid's retry
    assert (status, answer) == (200, {"id": mail_id, "duplicate": False})
    assert len(stored_mails(dynamodb)) == 1
    assert client.http.get(f"/mails/{mail_id}/raw", headers=read_headers()).body == body


def test_s3_unreachable_is_503_and_commits_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any, aws: str
) -> None:
    body, content_type = build_body(eml(2, attachment=os.urandom(3000)))
    use_s3(monkeypatch, closed_port())
    started = time.monotonic()
    assert post(client, body, content_type)[0] == 503
    assert time.monotonic() - started < CALL_BUDGET_S
    assert stored_mails(dynamodb) == []
    use_s3(monkeypatch, aws)
    status, answer = post(client, body, content_type)
    assert status == 200 and answer["duplicate"] is False
    assert len(stored_mails(dynamodb)) == 1


# -- throttled ----------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [THROTTLED, THROTTLING])
def test_throttled_commit_is_retried_a_bounded_number_of_times(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamo_proxy: DynamoProxy, dynamodb: Any, s3: Any, error: str
) -> None:
    use_dynamodb(monkeypatch, dynamo_proxy.url)
    # Throttled on every attempt: botocore gives up after MAX_ATTEMPTS, the answer is a 503.
    dynamo_proxy.rule = lambda op, attempt: error if op == "TransactWriteItems" else PASS
    body, content_type = build_body(eml(3))
    started = time.monotonic()
    assert post(client, body, content_type)[0] == 503
    assert time.monotonic() - started < CALL_BUDGET_S
    assert dynamo_proxy.attempts["TransactWriteItems"] == MAX_ATTEMPTS
    assert stored_mails(dynamodb) == []
    assert_nothing_half_written(client, s3)

    # Throttled once: botocore's own retry absorbs it and the delivery is stored.
    dynamo_proxy.attempts.clear()
    dynamo_proxy.rule = lambda op, attempt: error if op == "TransactWriteItems" and attempt == 1 else PASS
    status, answer = post(client, body, content_type)
    assert status == 200 and answer["duplicate"] is False
    assert dynamo_proxy.attempts["TransactWriteItems"] == 2
    assert len(stored_mails(dynamodb)) == 1


def test_throttled_s3_is_retried_a_bounded_number_of_times(
    client: Client, s3_faults: S3Faults, dynamodb: Any
) -> None:
    s3_faults.fail = lambda op, attempt: 503 if op == "PutObject" else None  # S3's SlowDown
    body, content_type = build_body(eml(4))
    started = time.monotonic()
    assert post(client, body, content_type)[0] == 503
    assert time.monotonic() - started < CALL_BUDGET_S
    assert s3_faults.attempts["PutObject"] == MAX_ATTEMPTS
    assert stored_mails(dynamodb) == []
    s3_faults.fail = lambda op, attempt: None
    assert post(client, body, content_type)[0] == 200
    assert len(stored_mails(dynamodb)) == 1


# -- between the S3 write and the commit ----------------------------------------------------------


def test_a_commit_that_fails_after_the_s3_write_is_invisible_and_the_retry_leaves_no_second_copy(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamo_proxy: DynamoProxy, dynamodb: Any, s3: Any
) -> None:
    use_dynamodb(monkeypatch, dynamo_proxy.url)
    dynamo_proxy.rule = lambda op, attempt: INTERNAL if op == "TransactWriteItems" else PASS
    body, content_type = build_body(eml(5, attachment=os.urandom(5000)))
    assert post(client, body, content_type)[0] == 503
    [mail_id] = ids_in_s3(s3)
    keys = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert [k.rsplit("/", 2)[-2:] for k in keys] == [["attachments", "1"], [keys[0].split("/")[2], "raw"]]
    assert client.http.get(f"/mails/{mail_id}", headers=read_headers()).status_code == 404

    dynamo_proxy.rule = lambda op, attempt: PASS
    assert post(client, body, content_type) == (200, {"id": mail_id, "duplicate": False})
    # The retry wrote the same keys again: one copy of each object, one mail.
    assert sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == keys
    assert len(stored_mails(dynamodb)) == 1
    assert_nothing_half_written(client, s3)


def test_a_commit_botocore_retries_after_its_answer_was_lost_is_answered_as_stored_not_as_a_duplicate(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamo_proxy: DynamoProxy, dynamodb: Any, s3: Any
) -> None:
    use_dynamodb(monkeypatch, dynamo_proxy.url)
    # The first attempt commits and its answer is lost; botocore's retry finds the condition failed
    # (moto does not keep ClientRequestToken), and the mail's own commit mark tells it was ours.
    dynamo_proxy.rule = lambda op, attempt: DROP_AFTER if op == "TransactWriteItems" and attempt == 1 else PASS
    body, content_type = build_body(eml(7))
    status, answer = post(client, body, content_type)
    assert dynamo_proxy.attempts["TransactWriteItems"] == 2
    [mail_id] = ids_in_s3(s3)
    assert (status, answer) == (200, {"id": mail_id, "duplicate": False})
    assert len(stored_mails(dynamodb)) == 1
    dynamo_proxy.rule = lambda op, attempt: PASS
    assert post(client, body, content_type) == (200, {"id": mail_id, "duplicate": True})
    assert_nothing_half_written(client, s3)


def test_a_commit_whose_answer_is_lost_is_a_duplicate_on_the_retry_not_a_second_mail(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamo_proxy: DynamoProxy, dynamodb: Any, s3: Any
) -> None:
    use_dynamodb(monkeypatch, dynamo_proxy.url)
    # The transaction reaches DynamoDB and commits; its answer is dropped, on every attempt.
    dynamo_proxy.rule = lambda op, attempt: DROP_AFTER if op == "TransactWriteItems" else PASS
    body, content_type = build_body(eml(6))
    status, _ = post(client, body, content_type)
    # botocore's retry of the transaction finds it committed: DynamoDB proper would return the retry's success
    # (ClientRequestToken), moto the failed condition. Either way, stored once; the answer is 200 or 503.
    assert status in (200, 503)
    assert len(stored_mails(dynamodb)) == 1
    dynamo_proxy.rule = lambda op, attempt: PASS
    [mail_id] = ids_in_s3(s3)
    assert post(client, body, content_type) == (200, {"id": mail_id, "duplicate": True})
    assert len(stored_mails(dynamodb)) == 1
    assert_nothing_half_written(client, s3)


# -- everything at once, then SendGrid's retries -------------------------------------------------


def test_random_faults_then_sendgrid_retries_store_exactly_the_sent_set(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamo_proxy: DynamoProxy, s3_faults: S3Faults,
    dynamodb: Any, s3: Any, capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(7)
    use_dynamodb(monkeypatch, dynamo_proxy.url)
    # A quarter of the writes fail, in every way a write can fail.
    dynamo_proxy.rule = lambda op, attempt: (
        rng.choice([THROTTLED, THROTTLING, INTERNAL, DROP]) if op == "TransactWriteItems" and rng.random() < 0.25
        else PASS
    )
    s3_faults.fail = lambda op, attempt: rng.choice([503, 500]) if op == "PutObject" and rng.random() < 0.2 else None

    sent: dict[str, bytes] = {}  # Message-ID -> the bytes of its first delivery
    deliveries: list[tuple[str, bytes, str]] = []
    for n in range(12):
        source = eml(100 + n, attachment=os.urandom(2000) if n % 3 == 0 else b"")
        body, content_type = build_body(source, raw=n % 2 == 1)
        message_id = f"<reliability.{100 + n}@example.com>"
        sent[message_id] = body
        deliveries.append((message_id, body, content_type))
        if n % 4 == 0:  # the same mail again later, under another boundary
            deliveries.append((message_id, *build_body(source, raw=n % 2 == 1)))

    statuses: Counter[int] = Counter()
    answered: dict[str, str] = {}
    for message_id, body, content_type in deliveries:
        for _ in range(12):  # SendGrid retries a 5xx (for 72 hours; here, a dozen times)
            status, answer = post(client, body, content_type)
            statuses[status] += 1
            assert status == 200 or status >= 500, (status, answer)
            if status == 200:
                if message_id in answered:
                    assert answer == {"id": answered[message_id], "duplicate": True}
                answered[message_id] = answer["id"]
                break
            assert_nothing_half_written(client, s3)
        else:
            pytest.fail(f"{message_id} never stored")

    assert statuses[200] == len(deliveries) and sum(statuses.values()) > len(deliveries)  # faults did happen
    items = stored_mails(dynamodb)
    assert len(items) == len(sent)
    assert {item["id"]["S"] for item in items} == set(answered.values())
    for message_id, mail_id in answered.items():
        document = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)
        assert document["message_id"] == message_id
        assert client.http.get(f"/mails/{mail_id}/raw", headers=read_headers()).body == sent[message_id]
    assert_nothing_half_written(client, s3)
    with capsys.disabled():
        print(f"\nrandom faults: {sum(statuses.values())} posts for {len(deliveries)} deliveries of {len(sent)} mails;"
              f" statuses {dict(statuses)}; DynamoDB attempts {dict(dynamo_proxy.attempts)};"
              f" S3 attempts {dict(s3_faults.attempts)}")


# -- killed mid-request --------------------------------------------------------------------------


@dataclass
class LocalServer:
    """`chalice local` as a process of its own, so that it can be killed with SIGKILL."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # No autoreload: other work may touch the tree meanwhile, and the pid must be the server's.
        self.process = launch(
            [os.path.join(os.path.dirname(sys.executable), "chalice"),
             "local", "--no-autoreload", "--stage", "local", "--host", "127.0.0.1", "--port", str(self.port)],
            self.env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "chalice local exited"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("chalice local did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def post(self, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        response = requests.post(
            f"{self.url}/mails?MailKey={KEY}&MailSecret={SECRET}", data=body,
            headers={"Content-Type": content_type}, timeout=60,
        )
        return response.status_code, response.json()


def test_killed_between_the_s3_write_and_the_commit_and_after_the_commit(
    client: Client, dynamo_proxy: DynamoProxy, dynamodb: Any, s3: Any, aws: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(
        AWS_ENDPOINT_URL=aws, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url,
        MAIL_CREDENTIALS=f"{KEY}:{SECRET}", READ_TOKENS=TOKEN, PYTHONUNBUFFERED="1",
    )
    server = LocalServer(env)
    outcomes: dict[str, object] = {}

    def deliver_in_background(name: str, body: bytes, content_type: str) -> threading.Thread:
        def run() -> None:
            try:
                outcomes[name] = server.post(body, content_type)
            except requests.ConnectionError:
                outcomes[name] = "no answer"  # API Gateway would say 502: SendGrid retries
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    first_body, first_type = build_body(eml(200, attachment=os.urandom(4000)))
    second_body, second_type = build_body(eml(201), raw=True)
    try:
        # 1. Killed while the transaction is on its way: the objects are in S3, the commit is not.
        server.start()
        dynamo_proxy.rule = lambda op, attempt: STALL if op == "TransactWriteItems" else PASS
        thread = deliver_in_background("first", first_body, first_type)
        assert dynamo_proxy.stalled.wait(30), "the transaction never reached the proxy"
        [first_id] = ids_in_s3(s3)
        assert client.http.get(f"/mails/{first_id}", headers=read_headers()).status_code == 404
        server.kill()
        thread.join(30)
        assert outcomes["first"] == "no answer"
        dynamo_proxy.release.set()
        assert stored_mails(dynamodb) == []

        # 2. Killed after the commit, before the answer: the retry must find it, not store it again.
        dynamo_proxy.stalled.clear()
        dynamo_proxy.release.clear()
        dynamo_proxy.rule = lambda op, attempt: STALL_AFTER if op == "TransactWriteItems" else PASS
        server.start()
        thread = deliver_in_background("second", second_body, second_type)
        assert dynamo_proxy.stalled.wait(30), "the transaction never reached the proxy"
        [second_id] = ids_in_s3(s3) - {first_id}
        server.kill()
        thread.join(30)
        assert outcomes["second"] == "no answer"
        dynamo_proxy.release.set()
        assert len(stored_mails(dynamodb)) == 1
        assert_nothing_half_written(client, s3)

        # 3. A fresh process takes SendGrid's retries of both.
        dynamo_proxy.rule = lambda op, attempt: PASS
        server.start()
        assert server.post(first_body, first_type) == (200, {"id": first_id, "duplicate": False})
        assert server.post(second_body, second_type) == (200, {"id": second_id, "duplicate": True})
        assert server.post(first_body, first_type) == (200, {"id": first_id, "duplicate": True})
    finally:
        server.kill()
        dynamo_proxy.release.set()

    assert sorted(item["id"]["S"] for item in stored_mails(dynamodb)) == sorted([first_id, second_id])
    for mail_id, body in ((first_id, first_body), (second_id, second_body)):
        assert client.http.get(f"/mails/{mail_id}/raw", headers=read_headers()).body == body
    assert_nothing_half_written(client, s3)
