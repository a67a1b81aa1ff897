"""A delivery's wall time when every AWS call takes 25 ms: a plain mail against one with 10 attachments.

The app runs in a child process (``python bench/roundtrips.py URL ROUNDS``)
with real boto3 clients, pointed at bench/latency.py's proxy in front of the
emulator whose URL it is given; the proxy holds every call 25 ms, about what
S3 and DynamoDB take from Lambda. Each round posts a new plain mail and a new
mail with 10 attachments, in turns (which goes first alternates); the answer
is the median of the per-round ratios with its quartiles, and the sequential
round trips of the last post of each kind, from the proxy's log.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DELAY = 0.025
ATTACHMENTS = 10
# Small, as a signature's logo or a scanned receipt: the round trips are measured, not the bytes.
ATTACHMENT_BYTES = 4096


def eml(kind: str, n: int) -> bytes:
    head = (f"From: Bench <bench@example.com>\r\nTo: box@example.com\r\nSubject: round trips {kind} {n}\r\n"
            "Date: Wed, 02 Dec 2026 16:00:00 +0000\r\n"
            f"Message-ID: <roundtrips.{kind}.{n}.{time.time_ns()}@example.com>\r\nMIME-Version: 1.0\r\n")
    text = "A line of text in a mail about round trips.\r\n" * 50
    if kind == "plain":
        return (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text).encode()
    parts = [head, 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n',
             f"--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"]
    for index in range(ATTACHMENTS):
        data = base64.encodebytes(os.urandom(ATTACHMENT_BYTES)).decode().replace("\n", "\r\n")
        parts.append(f"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=f{index}.pdf"
                     f"\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}")
    parts.append("--B--\r\n")
    return "".join(parts).encode()


def child(emulator: str, rounds: int) -> dict[str, Any]:
    from bench.latency import latency_proxy_process, sequential_rounds  # noqa: PLC0415
    from bench.run import ENV, LambdaContext, api_gateway_event  # noqa: PLC0415
    from scripts.send_mail import build_body  # noqa: PLC0415

    with latency_proxy_process(emulator, DELAY) as proxy:
        os.environ.update({**ENV, "AWS_ENDPOINT_URL": proxy.url})
        import app  # noqa: PLC0415
        from chalicelib import logs  # noqa: PLC0415

        logs.log.disabled = True  # the log line's cost stays; its text would garble the table
        context = LambdaContext()

        def post(kind: str, n: int) -> tuple[float, int]:
            body, content_type = build_body(eml(kind, n))
            proxy.clear()
            started = time.perf_counter()
            answer = app.app(api_gateway_event(body, content_type), context)
            seconds = time.perf_counter() - started
            assert answer["statusCode"] == 200 and json.loads(answer["body"])["duplicate"] is False, answer
            return seconds, sequential_rounds(proxy.calls)

        post("plain", -1), post("attachments", -1)  # warm: the clients, the queue's URL
        plain: list[float] = []
        attached: list[float] = []
        depth = {"plain": 0, "attachments": 0}
        for round_ in range(rounds):
            order = ("plain", "attachments") if round_ % 2 == 0 else ("attachments", "plain")
            for kind in order:
                seconds, depth[kind] = post(kind, round_)
                (plain if kind == "plain" else attached).append(seconds)
    ratios = [a / p for a, p in zip(attached, plain, strict=True)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "delay_ms": DELAY * 1000, "attachments": ATTACHMENTS,
        "plain_ms": statistics.median(plain) * 1000, "attachments_ms": statistics.median(attached) * 1000,
        "ratio": statistics.median(ratios), "spread": [q[0], q[2]],
        "plain_rounds": depth["plain"], "attachments_rounds": depth["attachments"],
    }


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
