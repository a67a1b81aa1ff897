"""A delivery waits for at most three AWS round trips one after another, whatever its attachment count.

The app talks to the emulator through bench/latency.py's proxy, which holds
every request a while (as the network to AWS would) and logs when each call
started and ended; the longest chain of calls that did not overlap is the
number of round trips the delivery waited for in sequence.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator

import pytest
from chalice.test import Client

from bench.latency import Call, LatencyProxy, latency_proxy, latency_proxy_process, sequential_rounds
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import mail_path


def delay(service: str, operation: str) -> float:
    """Each call of the first round (the PutObjects, and the mailbox register's read made with them) held long
    enough that the calls made at once overlap even on a busy machine.

    Ten threads signing and sending their requests under one GIL start up to a
    few hundred milliseconds apart when the machine's two cores are shared.
    """
    return 0.8 if (service == "s3" and operation.startswith("PUT ")) or operation == "BatchGetItem" else 0.02


@pytest.fixture
def proxied(client: Client, monkeypatch: pytest.MonkeyPatch, aws: str) -> Iterator[LatencyProxy]:
    with latency_proxy(aws, delay) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        services.reset()
        yield proxy
    services.reset()


def eml(number: int, attachments: int, text: str = "Hello") -> bytes:
    head = (f"From: A <a@example.org>\r\nTo: box@example.com\r\nSubject: round trips {number}\r\n"
            f"Message-ID: <round-trips-{number}@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            f"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n")
    parts = [
        f"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=f{n}.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(bytes([n]) * 3000).decode()}\r\n"
        for n in range(attachments)
    ]
    return (head + "".join(parts) + "--B--\r\n").encode()


def deliver(client: Client, source: bytes) -> dict[str, object]:
    body, content_type = build_body(source)
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.body
    answer: dict[str, object] = json.loads(response.body)
    return answer


def kinds(calls: list[Call]) -> Counter[str]:
    return Counter("S3 PutObject" if c.service == "s3" and c.operation.startswith("PUT ") else c.operation
                   for c in calls)


@pytest.mark.parametrize("attachments", [0, 10])
def test_a_delivery_waits_for_three_round_trips_in_sequence_whatever_its_attachments(
    client: Client, proxied: LatencyProxy, attachments: int
) -> None:
    deliver(client, eml(0, 0))  # the container's first request also looks up the queue's URL once
    proxied.clear()
    answer = deliver(client, eml(1, attachments))
    assert answer["duplicate"] is False
    # The mailbox register's read (GET /mailboxes) goes alongside the puts: no round trip of its own.
    assert kinds(proxied.calls) == {
        "S3 PutObject": 1 + attachments, "BatchGetItem": 1, "TransactWriteItems": 1, "SendMessage": 1}
    assert sequential_rounds(proxied.calls) == 3


def test_a_document_too_large_for_the_item_goes_to_s3_with_the_other_objects(
    client: Client, proxied: LatencyProxy
) -> None:
    deliver(client, eml(0, 0))
    proxied.clear()
    deliver(client, eml(2, 3, text="x" * 120_000))  # a document over the item's 100 KB
    assert kinds(proxied.calls) == {"S3 PutObject": 5, "BatchGetItem": 1, "TransactWriteItems": 1, "SendMessage": 1}
    assert sequential_rounds(proxied.calls) == 3


def test_the_round_count_tells_calls_made_one_after_another_from_calls_made_at_once() -> None:
    calls = [Call("s3", "PUT /a", 0.0, 1.0), Call("s3", "PUT /b", 0.1, 1.1), Call("dynamodb", "T", 1.2, 2.0),
             Call("sqs", "S", 2.1, 3.0)]
    assert sequential_rounds(calls) == 3
    assert sequential_rounds([Call("s3", f"PUT /{n}", n, n + 0.5) for n in range(4)]) == 4
    assert sequential_rounds([]) == 0


def test_the_proxy_in_a_process_of_its_own_logs_the_same_calls(
    client: Client, monkeypatch: pytest.MonkeyPatch, aws: str
) -> None:
    # make bench's: the proxy's request handling does not share the measured app's GIL.
    with latency_proxy_process(aws, 0.01) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        services.reset()
        deliver(client, eml(3, 0))
        proxy.clear()
        assert proxy.calls == []
        deliver(client, eml(4, 2))
        assert kinds(proxy.calls) == {"S3 PutObject": 3, "BatchGetItem": 1, "TransactWriteItems": 1, "SendMessage": 1}
    services.reset()
