"""`make bench`: the handler's milliseconds and memory per mail, against the floor measured in the same run.

For every mail of ``bench/corpus.py``, in both SendGrid modes:

* handler: ``app.app(event, context)`` from an API Gateway proxy event (the
  body base64-encoded, as Lambda receives it) to the answer, in-process, with
  the real ``MailStore`` over in-memory S3 and DynamoDB clients
  (``bench/fakes.py``); a fresh, empty store for every call, so that every
  call stores a new mail rather than answering a duplicate;
* floor: base64-decoding the event body plus one copy of it, the least any
  handler must do with these bytes;
* ratio: handler over floor (medians);
* raw floor, for raw mode only: the floor plus base64-decoding the message's
  own base64 parts once (their text cut out beforehand). Raw mode must decode
  those bytes twice, once as the event body and once as the attachment, which
  the floor does not count; ``raw ratio`` is the handler over this floor;
* memory: the peak resident set size during one call over the idle process
  (a fresh process per mail; Linux's VmHWM, reset just before the call), and
  tracemalloc's peak of Python allocations during the call, both over the
  request body's size;
* and, once, the import time of ``app.py`` (and building its clients) against
  importing chalice and boto3 and making the same two clients alone.

Goals (issue 7): 10 KB under 0.5 ms; 1 MB and 4 MB within 2x the floor; the
ISO-2022-JP mail within 2x the plain mail of its size; peak memory under 3x
the body; cold import within 1.25x the bare imports.

Usage: ``python bench/run.py [--quick] [--only NAME] [--json FILE]``;
``--profile NAME MODE`` prints a pyinstrument profile of one mail instead.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import ctypes
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402 - the app reads the environment when first used, not at import
from bench.corpus import BenchMail, corpus, plain  # noqa: E402
from bench.fakes import FakeDynamoDB, FakeS3, FakeSQS  # noqa: E402
from chalicelib import logs  # noqa: E402
from chalicelib.delivery.queue import Queue  # noqa: E402
from chalicelib.ingress.sendgrid.webhook import SendGridIngestor  # noqa: E402
from chalicelib.storage.store import MailStore  # noqa: E402
from chalicelib.wiring import services  # noqa: E402
from scripts.send_mail import build_body  # noqa: E402

KEY, SECRET = "sendgrid", "bench-secret-value"
ENV = {
    # Never AWS: the in-memory clients replace the real ones, and the import
    # measurement's clients are built but never called.
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "MAILS_TABLE": "mails-bench",
    "MAILS_BUCKET": "mails-bench",
    "MAIL_CREDENTIALS": f"{KEY}:{SECRET}",
    "READ_TOKENS": "bench-read-token",
    "MAILS_QUEUE": "mails-bench-handoff",
}
GOAL_SMALL_MS = 0.5
GOAL_FLOOR_RATIO = 2.0
GOAL_CHARSET_RATIO = 2.0
GOAL_MEMORY_RATIO = 3.0
GOAL_IMPORT_RATIO = 1.25


class LambdaContext:
    """The attributes of Lambda's context object that Chalice or our code might read."""

    function_name = "inbound-mail-bench"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def api_gateway_event(body: bytes, content_type: str) -> dict[str, Any]:
    """A REST API proxy event for POST /mails, the body base64-encoded as API Gateway does for a binary type."""
    headers = {
        "Content-Type": content_type,
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Sendlib/1.0",
        "X-Forwarded-For": "192.0.2.1",
        "X-Forwarded-Proto": "https",
    }
    query = {"MailKey": KEY, "MailSecret": SECRET}
    return {
        "resource": "/mails",
        "path": "/mails",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/mails",
            "httpMethod": "POST",
            "path": "/dev/mails",
            "stage": "dev",
            "requestId": "bench",
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def floor(event: dict[str, Any]) -> bytes:
    """The least any handler does: decode the body, and hand one copy of it on."""
    return bytes(memoryview(base64.b64decode(event["body"])))


def base64_parts(eml: bytes) -> list[bytes]:
    """The encoded text of each base64 part of a message, as it lies in the message."""
    message = BytesParser(policy=policy.compat32).parsebytes(eml)
    return [
        str(part.get_payload()).encode("ascii")
        for part in message.walk()
        if not part.is_multipart() and str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64"
    ]


def raw_floor(event: dict[str, Any], parts: list[bytes]) -> None:
    """The floor, and the second decoding only raw mode has: each base64 part of the message, once."""
    floor(event)
    for text in parts:
        binascii.a2b_base64(text)


# -- the app over in-memory storage --------------------------------------------------------------


class Harness:
    """``app.py`` with its store replaced by the real ``MailStore`` over in-memory clients."""

    def __init__(self) -> None:
        os.environ.update(ENV)
        self.app_module = app_module
        self.s3 = FakeS3()
        self.dynamodb = FakeDynamoDB()
        self.sqs = FakeSQS()
        self.store = MailStore(self.s3, self.dynamodb, bucket=ENV["MAILS_BUCKET"], table=ENV["MAILS_TABLE"])
        services.reset()
        # The seams: what services.store() and services.sendgrid() would build with boto3 clients.
        services._store = self.store
        services._sendgrid = SendGridIngestor(
            settings=services.settings(), store=self.store, queue=Queue(self.sqs, ENV["MAILS_QUEUE"])
        )
        # The log line stays (its cost is the handler's), written where it does not garble the table.
        devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        for handler in logs.log.handlers:
            if hasattr(handler, "setStream"):
                handler.setStream(devnull)
        self.context = LambdaContext()

    def clear(self, validate: bool = False) -> None:
        self.s3.objects.clear()
        self.dynamodb.tables.clear()
        self.sqs.messages.clear()
        self.s3.validate = self.dynamodb.validate = self.sqs.validate = validate

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.app_module.app(event, self.context)
        return response

    def check(self, event: dict[str, Any], body: bytes) -> None:
        """One validated delivery and its redelivery: the bench measures a handler that works."""
        self.clear(validate=True)
        first = self.call(event)
        assert first["statusCode"] == 200, first
        answer = json.loads(first["body"])
        assert answer["duplicate"] is False, answer
        raws = [data for (_, key), (data, _) in self.s3.objects.items() if key.endswith("/raw")]
        assert len(raws) == 1 and bytes(raws[0]) == body, "the stored original differs from the body"
        assert [m["MessageBody"] for m in self.sqs.messages] == [json.dumps({"id": answer["id"]})]
        again = json.loads(self.call(event)["body"])
        assert again == {"id": answer["id"], "duplicate": True}, again
        self.clear()


def _time(function: Callable[[], object], before: Callable[[], None], runs: int, budget: float) -> list[float]:
    """Seconds per call, ``runs`` calls or as many as fit in ``budget`` seconds (at least 5)."""
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < runs and (len(samples) < 5 or time.perf_counter() - started < budget):
        before()
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


@dataclass
class Figures:
    name: str
    mode: str
    body_bytes: int
    handler_ms: float
    handler_min_ms: float
    floor_ms: float
    ratio: float
    traced_peak_ratio: float
    rss_peak_ratio: float | None = None
    raw_floor_ms: float | None = None

    @property
    def raw_ratio(self) -> float | None:
        return self.handler_ms / self.raw_floor_ms if self.raw_floor_ms else None

    @property
    def peak_ratio(self) -> float:
        """The larger of the two memory measures, over the body."""
        return max(self.rss_peak_ratio or 0.0, self.traced_peak_ratio)


def measure(harness: Harness, mail: BenchMail, runs: int, budget: float) -> Figures:
    event = api_gateway_event(mail.body, mail.content_type)
    harness.check(event, mail.body)
    for _ in range(3):  # warm: caches, lazily built dependencies
        harness.clear()
        harness.call(event)

    def before() -> None:
        harness.clear()

    handler = _time(lambda: harness.call(event), before, runs, budget)
    floors = _time(lambda: floor(event), lambda: None, runs, budget)
    raw_floors = None
    if mail.mode == "raw":
        parts = base64_parts(mail.eml)
        raw_floors = _time(lambda: raw_floor(event, parts), lambda: None, runs, budget)

    harness.clear()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    harness.call(event)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    harness.clear()

    handler_ms = statistics.median(handler) * 1000
    floor_ms = statistics.median(floors) * 1000
    return Figures(
        mail.name, mail.mode, len(mail.body), handler_ms, min(handler) * 1000, floor_ms,
        handler_ms / floor_ms, peak / len(mail.body),
        raw_floor_ms=statistics.median(raw_floors) * 1000 if raw_floors else None,
    )


# -- peak resident memory, one fresh process per mail ----------------------------------------------


def _status(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def rss_child(event_file: str, body_bytes: int) -> None:
    """Run in a fresh process: peak RSS of one call over the idle process, printed as JSON."""
    harness = Harness()
    small, small_type = build_body(plain(2 * 1024))
    harness.call(api_gateway_event(small, small_type))  # warm: imports and dependencies built lazily
    event = json.loads(Path(event_file).read_text())
    harness.clear()
    gc.collect()
    with contextlib.suppress(OSError):  # hand freed heap back to the kernel, so that idle means idle
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    idle = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    response = harness.call(event)
    peak = _status("VmHWM")
    assert response["statusCode"] == 200, response
    print(json.dumps({"idle": idle, "peak": peak, "ratio": (peak - idle) / body_bytes}))


def rss_peak(mail: BenchMail) -> float | None:
    if not Path("/proc/self/clear_refs").exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(api_gateway_event(mail.body, mail.content_type), handle)
    try:
        result = subprocess.run(
            [sys.executable, __file__, "--rss-child", handle.name, str(len(mail.body))],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )
    finally:
        os.unlink(handle.name)
    ratio: float = json.loads(result.stdout.strip().splitlines()[-1])["ratio"]
    return ratio


# -- cold import ---------------------------------------------------------------------------------

APP_IMPORT = """
import time
start = time.perf_counter()
import app
from chalicelib.wiring import services
services.sendgrid()
print(time.perf_counter() - start)
"""
BARE_IMPORT = """
import time
start = time.perf_counter()
import boto3
import chalice.app
from botocore.config import Config
config = Config()
boto3.client("s3", config=config)
boto3.client("dynamodb", config=config)
boto3.client("sqs", config=config)
print(time.perf_counter() - start)
"""


def import_times(rounds: int) -> tuple[float, float]:
    """Median seconds of the app's cold import and of the bare one, alternating fresh processes."""
    env = {**os.environ, **ENV}
    # Any value, "0" too, stops Python writing .pyc files: the first round could then not write them,
    # and every round would compile chalicelib again (the bare imports' site-packages have theirs).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    times: dict[str, list[float]] = {"app": [], "bare": []}
    for round_ in range(rounds + 1):
        for name, code in (("app", APP_IMPORT), ("bare", BARE_IMPORT)):
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                timeout=60, check=True,
            )
            if round_:  # the first round only writes .pyc files
                times[name].append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times["app"]), statistics.median(times["bare"])


# -- the report ----------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(figures: list[Figures], imports: tuple[float, float] | None) -> list[str]:
    lines = [
        f"{'mail':<15} {'mode':<6} {'body':>10} {'handler ms':>11} {'floor ms':>9} {'ratio':>6} "
        f"{'raw floor':>10} {'raw ratio':>9} {'peak RSS/body':>14} {'traced/body':>12}",
    ]
    for f in figures:
        rss = f"{f.rss_peak_ratio:.2f}x" if f.rss_peak_ratio is not None else "n/a"
        raw_floor_ms = f"{f.raw_floor_ms:.3f}" if f.raw_floor_ms is not None else ""
        raw_ratio = f"{f.raw_ratio:.2f}x" if f.raw_ratio is not None else ""
        lines.append(
            f"{f.name:<15} {f.mode:<6} {_size(f.body_bytes):>10} {f.handler_ms:>11.3f} {f.floor_ms:>9.3f} "
            f"{f.ratio:>5.2f}x {raw_floor_ms:>10} {raw_ratio:>9} {rss:>14} {f.traced_peak_ratio:>11.2f}x"
        )
    lines.append("")
    lines.append("goals:")
    by = {(f.name, f.mode): f for f in figures}
    for mode in ("parsed", "raw"):
        small = by.get(("plain-10k", mode))
        if small:
            lines.append(f"  10 KB plain ({mode}) under {GOAL_SMALL_MS} ms: {small.handler_ms:.3f} ms"
                         f" -> {_mark(small.handler_ms < GOAL_SMALL_MS)}")
        for name in ("attach-1m", "attach-4m"):
            big = by.get((name, mode))
            if big:
                lines.append(f"  {name} ({mode}) within {GOAL_FLOOR_RATIO}x the floor: {big.ratio:.2f}x"
                             f" -> {_mark(big.ratio <= GOAL_FLOOR_RATIO)}")
            if big and big.raw_ratio is not None:
                lines.append(f"    and within {GOAL_FLOOR_RATIO}x the raw floor (the attachments decoded a second"
                             f" time): {big.raw_ratio:.2f}x -> {_mark(big.raw_ratio <= GOAL_FLOOR_RATIO)}")
        japanese = by.get(("iso2022jp-10k", mode))
        if small and japanese:
            ratio = japanese.handler_ms / small.handler_ms
            lines.append(f"  ISO-2022-JP 10 KB ({mode}) within {GOAL_CHARSET_RATIO}x the plain 10 KB: {ratio:.2f}x"
                         f" -> {_mark(ratio <= GOAL_CHARSET_RATIO)}")
    # A small mail's peak is the handler's fixed working set (a few hundred KB of
    # Python objects, and a codec's tables on its first use), not a multiple of
    # its body: the goal is judged on the mails of a megabyte and more.
    large = [f for f in figures if f.body_bytes >= 512 * 1024]
    if large:
        worst = max(large, key=lambda f: f.peak_ratio)
        met = worst.peak_ratio < GOAL_MEMORY_RATIO
        lines.append(f"  peak memory under {GOAL_MEMORY_RATIO}x the body (mails of 0.5 MB and more): worst"
                     f" {worst.peak_ratio:.2f}x ({worst.name} {worst.mode}) -> {_mark(met)}")
    smaller = [f for f in figures if f.body_bytes < 512 * 1024]
    if smaller:
        biggest = max(smaller, key=lambda f: f.peak_ratio * f.body_bytes)
        lines.append(f"  (smaller mails: at most {biggest.peak_ratio * biggest.body_bytes / 1024:.0f} KB over idle,"
                     f" {biggest.name} {biggest.mode})")
    if imports:
        app_s, bare_s = imports
        ratio = app_s / bare_s
        lines.append(f"  cold import within {GOAL_IMPORT_RATIO}x the bare imports: app {app_s * 1000:.0f} ms,"
                     f" bare {bare_s * 1000:.0f} ms, {ratio:.2f}x -> {_mark(ratio <= GOAL_IMPORT_RATIO)}")
    return lines


def profile(name: str, mode: str, seconds: float) -> None:
    from pyinstrument import Profiler  # noqa: PLC0415 - a developer's tool, only for --profile

    [mail] = [m for m in corpus() if m.name == name and m.mode == mode]
    harness = Harness()
    event = api_gateway_event(mail.body, mail.content_type)
    harness.check(event, mail.body)
    profiler = Profiler(interval=0.0001)
    profiler.start()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        harness.clear()
        harness.call(event)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke test of the benchmark itself")
    parser.add_argument("--only", help="measure only the mails whose name contains this")
    parser.add_argument("--no-rss", action="store_true", help="skip the per-mail processes for peak RSS")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", nargs=2, metavar=("NAME", "MODE"), help="pyinstrument profile of one mail")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]))
        return 0
    if args.profile:
        profile(args.profile[0], args.profile[1], 3.0 if args.quick else 10.0)
        return 0

    runs, budget = (20, 0.3) if args.quick else (400, 2.0)
    mails = [m for m in corpus() if not args.only or args.only in m.name]
    harness = Harness()
    figures: list[Figures] = []
    for mail in mails:
        figure = measure(harness, mail, runs, budget)
        if not args.no_rss:
            figure.rss_peak_ratio = rss_peak(mail)
        figures.append(figure)
        print(f"measured {mail.name} {mail.mode}", file=sys.stderr, flush=True)
    imports = None if args.only else import_times(3 if args.quick else 9)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; medians of up to {runs} calls per mail")
    print("\n".join(report(figures, imports)))
    if args.json:
        args.json.write_text(json.dumps(
            {"mails": [asdict(f) for f in figures],
             "import_app_s": imports[0] if imports else None, "import_bare_s": imports[1] if imports else None},
            indent=2,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
