"""`make load`: concurrent senders posting 10 KB mails to `make dev` for a while; throughput, latency and errors.

Loopback only: the URL must be 127.0.0.1 or localhost (the running `make dev`'s,
from .dev/). Bounded in time and in count: it stops at ``--seconds`` or after
``--max-mails``, whichever comes first. Every mail is distinct (its own
Message-ID), so each answer is a new stored mail; an answer other than a 200
that says so counts as an error. Exits 1 on any error.

Usage: python scripts/load.py [--senders 8] [--seconds 20] [--max-mails 5000] [--size 10240]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from chalicelib.ingress.sendgrid.poster import build_body  # noqa: E402
from scripts import dev_state  # noqa: E402

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_WORDS = ("mail", "load", "test", "stored", "answer", "sender", "queue", "table", "bucket", "commit")


def message(sender: int, n: int, size: int, rng: random.Random) -> bytes:
    """A plain mail of about ``size`` bytes, its Message-ID new in every run."""
    head = (
        f"From: Load {sender} <load{sender}@example.com>\r\nTo: box{n % 13}@example.com\r\n"
        f"Subject: load {sender}.{n}\r\nDate: Wed, 02 Dec 2026 16:00:00 +0000\r\n"
        f"Message-ID: <load.{sender}.{n}.{uuid.uuid4().hex}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    lines, used = [], len(head)
    while used < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(11)) + "\r\n"
        lines.append(line)
        used += len(line)
    return (head + "".join(lines)).encode("ascii")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    def note(self, seconds: float, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.errors[error] = self.errors.get(error, 0) + 1


def sender(url: str, number: int, size: int, deadline: float, budget: threading.Semaphore, tally: Tally) -> None:
    rng = random.Random(number)
    session = requests.Session()
    n = 0
    while time.monotonic() < deadline and budget.acquire(blocking=False):
        body, content_type = build_body(message(number, n, size, rng))
        n += 1
        started = time.perf_counter()
        try:
            response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)
        except requests.RequestException as exc:
            tally.note(time.perf_counter() - started, type(exc).__name__)
            continue
        seconds = time.perf_counter() - started
        ok = response.status_code == 200 and response.json().get("duplicate") is False
        tally.note(seconds, None if ok else f"HTTP {response.status_code}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-mails", type=int, default=5000, help="stop after this many posts in all")
    parser.add_argument("--size", type=int, default=10 * 1024, help="bytes per mail (10 KB)")
    parser.add_argument("--url", help="the webhook URL with its credentials (default: the running make dev's)")
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        state = dev_state.state_dir()
        server, credentials = dev_state.server_url(state), dev_state.read_credentials(state)
        if not (server and credentials):
            raise SystemExit("load: no make dev is running (start it in another terminal)")
        url = dev_state.webhook_url(server, credentials)
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit("load: only a stack on this machine (127.0.0.1) is loaded")

    tally = Tally()
    budget = threading.Semaphore(args.max_mails)
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=sender, args=(url, n, args.size, deadline, budget, tally), daemon=True)
        for n in range(args.senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 60)
    elapsed = time.monotonic() - started
    ok = tally.latencies
    errors = sum(tally.errors.values())
    print(f"load: {args.senders} senders, {tally.count()} mails of {args.size / 1024:.0f} KB in {elapsed:.1f} s:"
          f" {len(ok) / elapsed:.1f} mails/s stored")
    if ok:
        print(f"  latency p50 {statistics.median(ok) * 1000:.0f} ms, p99 {percentile(ok, 0.99) * 1000:.0f} ms,"
              f" max {max(ok) * 1000:.0f} ms")
    print(f"  errors: {errors}" + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(tally.errors.items()))})"
                                   if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
