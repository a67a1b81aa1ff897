"""Under load: moto's server and `chalice local` as processes, 500 distinct mails and 100 redeliveries from
8 concurrent senders; afterwards exactly 500 mails, each readable and byte-exact.

The figures (requests per second, p50 and p95 latency) are printed in the test
output. They measure this machine's emulator and `chalice local`, not Lambda:
they are here to show that nothing breaks or doubles under concurrency, and to
notice when a change makes the local stack markedly slower.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from scripts.create_resources import create_resources
from scripts.dev import wait_for_port
from scripts.send_mail import build_body
from tests.conftest import BUCKET, KEY, QUEUE, SECRET, SES_QUEUE, TABLE, TOKEN, free_port
from tests.support.processes import launch

pytestmark = pytest.mark.slow

MAILS = 500
SAME_BYTES = 50  # redeliveries of the very same request body
NEW_BOUNDARY = 50  # the same mail rebuilt: same Message-ID, another multipart boundary
SENDERS = 8
# moto's TransactWriteItems deep-copies the whole table for its rollback,
# without a lock: concurrent transactions fail inside the emulator ("dictionary
# changed size during iteration", a 500), and the copies of eight threads at
# once make its memory balloon. DynamoDB itself isolates transactions, so the
# emulator is started with one lock around them (MOTO_SERVER below). A 5xx that
# still happens is retried as SendGrid would, and counted in the figures.
RETRIES = 10


MOTO_SERVER = (
    "import sys, threading\n"
    "from moto.dynamodb.models import DynamoDBBackend\n"
    "from moto.server import main\n"
    "lock, transact = threading.Lock(), DynamoDBBackend.transact_write_items\n"
    "def serialized(self, *args, **kwargs):\n"
    "    with lock:\n"
    "        return transact(self, *args, **kwargs)\n"
    "DynamoDBBackend.transact_write_items = serialized\n"
    "sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Stack:
    url: str
    moto: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    bin_dir = Path(sys.executable).parent
    moto_port, port = free_port(), free_port()
    moto = f"http://127.0.0.1:{moto_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", MAIL_CREDENTIALS=f"{KEY}:{SECRET}", READ_TOKENS=TOKEN,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(launch([sys.executable, "-c", MOTO_SERVER, "-H", "127.0.0.1", "-p", str(moto_port)], env))
        wait_for_port("127.0.0.1", moto_port, processes[0])
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            create_resources(TABLE, BUCKET, queue=QUEUE, ses_queue=SES_QUEUE)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        # No autoreload: other work may touch the tree while this runs.
        processes.append(launch(
            [str(bin_dir / "chalice"), "local", "--no-autoreload", "--stage", "local",
             "--host", "127.0.0.1", "--port", str(port)],
            env,
        ))
        wait_for_port("127.0.0.1", port, processes[1])
        yield Stack(f"http://127.0.0.1:{port}", moto)
    finally:
        for process in processes:  # nothing to flush in either: SIGKILL, not scripts/dev.py's patient stop()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def message(n: int, rng: random.Random) -> bytes:
    """Mail number n: distinct Message-ID, a few shapes (plain, Japanese, attachment), a few KB to 40 KB."""
    subject = "=?UTF-8?B?" + base64.b64encode(f"負荷試験 {n}".encode()).decode() + "?=" if n % 5 == 0 else f"load {n}"
    head = (
        f"From: Sender {n} <sender{n % 17}@example.com>\r\nTo: box{n % 13}@example.com\r\nSubject: {subject}\r\n"
        f"Date: Wed, 25 Sep 2013 18:16:53 +0900\r\nMessage-ID: <load.{n}.{rng.getrandbits(32)}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()
    text = f"line of text {n}\r\n" * rng.randrange(20, 200)
    if n % 10:
        return head + b"Content-Type: text/plain; charset=UTF-8\r\n\r\n" + text.encode()
    attachment = base64.encodebytes(rng.randbytes(rng.randrange(5_000, 30_000)))
    return head + (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n'
        + text.encode() + b"\r\n--m\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="doc.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + attachment + b"--m--\r\n"
    )


@dataclass
class Sent:
    status: int
    answer: dict[str, Any]
    seconds: float  # of the last attempt
    refused: int  # 5xx answers before it


def deliver(url: str, body: bytes, content_type: str) -> Sent:
    """One delivery as SendGrid makes it: posted again after a 5xx (here after a moment, there for 72 hours)."""
    refused = 0
    while True:
        start = time.perf_counter()
        response = requests.post(
            f"{url}/mails?MailKey={KEY}&MailSecret={SECRET}", data=body, headers={"Content-Type": content_type},
            timeout=60,
        )
        seconds = time.perf_counter() - start
        if response.status_code < 500 or refused == RETRIES:
            return Sent(response.status_code, response.json(), seconds, refused)
        refused += 1
        time.sleep(0.05 * refused)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def test_500_mails_and_100_redeliveries_from_8_senders(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(500)
    sources = [message(n, rng) for n in range(MAILS)]
    bodies = [build_body(source, raw=n % 3 == 0) for n, source in enumerate(sources)]
    assert len(set(sources)) == MAILS

    started = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        first = list(pool.map(lambda item: deliver(stack.url, *item), bodies))
    first_seconds = time.perf_counter() - started

    assert [s.status for s in first] == [200] * MAILS, [s.answer for s in first if s.status != 200]
    # A 503 whose transaction had committed (emulator or network failing after the write) makes the retry a
    # duplicate; one that had not, a first store. Either way the id is the mail's own.
    assert all(s.answer["duplicate"] is False for s in first if not s.refused)
    ids = [s.answer["id"] for s in first]
    assert len(set(ids)) == MAILS

    # Redeliveries: the same bytes again, and the same mail under a new boundary, in a shuffled order.
    picked = rng.sample(range(MAILS), SAME_BYTES + NEW_BOUNDARY)
    again = [(n, bodies[n]) for n in picked[:SAME_BYTES]]
    again += [(n, build_body(sources[n], raw=n % 3 == 0)) for n in picked[SAME_BYTES:]]
    assert all(bodies[n][0] != body[0] for n, body in again[SAME_BYTES:])
    rng.shuffle(again)
    started = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        second = list(pool.map(lambda item: deliver(stack.url, *item[1]), again))
    second_seconds = time.perf_counter() - started
    for (n, _), sent in zip(again, second, strict=True):
        assert (sent.status, sent.answer) == (200, {"id": ids[n], "duplicate": True})

    # Exactly the sent set: one mail item per distinct mail, nothing twice.
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto)
    items = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True)
        for item in page["Items"]
        if item["sk"]["S"] == "mail"
    ]
    assert len(items) == MAILS
    assert sorted(item["id"]["S"] for item in items) == sorted(ids)

    # Each readable, byte-exact to what was first sent.
    auth = {"Authorization": f"Bearer {TOKEN}", "Accept": "*/*"}

    def read_back(n: int) -> tuple[int, bool, float]:
        start = time.perf_counter()
        raw = requests.get(f"{stack.url}/mails/{ids[n]}/raw", headers=auth, timeout=60)
        document = requests.get(f"{stack.url}/mails/{ids[n]}", headers=auth, timeout=60)
        return raw.status_code + document.status_code, raw.content == bodies[n][0], time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        reads = list(pool.map(read_back, range(MAILS)))
    read_seconds = time.perf_counter() - started
    assert [status for status, _, _ in reads] == [400] * MAILS
    assert all(exact for _, exact, _ in reads)

    posts = [s.seconds for s in first + second]
    refused = sum(s.refused for s in first + second)
    megabytes = sum(len(body) for body, _ in bodies) / 1e6
    with capsys.disabled():
        print(
            f"\nload: {MAILS} mails ({megabytes:.1f} MB) in {first_seconds:.1f} s = {MAILS / first_seconds:.0f} req/s,"
            f" {len(again)} redeliveries in {second_seconds:.1f} s = {len(again) / second_seconds:.0f} req/s,"
            f" {SENDERS} senders; POST latency p50 {statistics.median(posts) * 1000:.0f} ms,"
            f" p95 {percentile(posts, 0.95) * 1000:.0f} ms, max {max(posts) * 1000:.0f} ms;"
            f" {MAILS} reads (raw + document) in {read_seconds:.1f} s = {2 * MAILS / read_seconds:.0f} req/s;"
            f" {refused} deliveries answered 503 first (moto's transaction race) and stored on a retry"
        )
