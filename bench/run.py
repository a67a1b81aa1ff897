"""`make bench`: the handler's CPU per mail against the floor, the peer, cold start and round trips, in one run.

For every mail of ``bench/corpus.py``, in both SendGrid modes, in rounds: each
round runs a batch of each contestant in turn (which goes first alternates),
so that the machine's speed changing during the run lands in both sides of a
ratio alike; a figure is the median of the per-round ratios, with its
quartiles as the spread.

* handler: ``app.app(event, context)`` from an API Gateway proxy event (the
  body base64-encoded, as Lambda receives it) to the answer, in-process, with
  the real ``MailStore`` over in-memory S3 and DynamoDB clients
  (``bench/fakes.py``); a fresh, empty store for every call, so that every
  call stores a new mail rather than answering a duplicate;
* floor: base64-decoding the event body plus one copy of it, the least any
  handler must do with these bytes;
* raw floor, for raw mode only: the floor plus base64-decoding the message's
  own base64 parts once (their text cut out beforehand). Raw mode must decode
  those bytes twice, once as the event body and once as the attachment, which
  the floor does not count;
* peer, when installed (``requirements-bench.txt``): django-anymail's SendGrid
  inbound view on the same post (``bench/peer.py``); its ratio is the peer
  over the handler;
* for the ISO-2022-JP mail, the plain mail of its size in the same rounds;
* memory: the peak resident set size during one call over the idle process
  (a fresh process per mail; Linux's VmHWM, reset just before the call), and
  tracemalloc's peak of Python allocations during the call, both over the
  request body's size.

Times are the process's CPU time (every thread's, as a batch's store writes
run on the store's pool): on a machine shared with other work, wall time also
counts the waits for a core, which have nothing to do with the handler.

Then, once: the cold start in fresh processes (``bench/coldstart.py``), and a
delivery's wall time when every AWS call takes 25 ms (``bench/roundtrips.py``,
over moto's server behind ``bench/latency.py``).

Goals (issues 7 and 19): 10 KB under 0.5 ms; 1 MB and 4 MB within 2x the
floor; the 200 KB HTML mail (non-ASCII once decoded) within 6x; ISO-2022-JP
within 2x the plain mail of its size; peak memory under 3x the body;
``import app`` within 1.10x ``import boto3, chalice``; a mail with 10
attachments within 1.5x a plain one over a 25 ms network.

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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import app as app_module  # noqa: E402 - the app reads the environment when first used, not at import
from bench import coldstart, peer  # noqa: E402
from bench.corpus import BenchMail, corpus, plain  # noqa: E402
from bench.fakes import FakeDynamoDB, FakeS3, FakeSQS  # noqa: E402
from chalicelib import logs, metrics  # noqa: E402
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
GOAL_HTML_RATIO = 6.0
GOAL_CHARSET_RATIO = 2.0
GOAL_MEMORY_RATIO = 3.0
GOAL_IMPORT_RATIO = 1.10
GOAL_ATTACHMENTS_RATIO = 1.5
# The process's CPU time, every thread's (see the docstring).
CPU = time.process_time
# A contestant's batch lasts about this long, so that the clock's own cost and resolution do not count.
BATCH_SECONDS = 0.01


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
        metrics.stream = devnull
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


def _batch(function: Callable[[], object], before: Callable[[], None], calls: int) -> float:
    """The median CPU seconds of ``calls`` calls; ``before`` runs ahead of each, untimed.

    The median, not the mean: a call that happens to pay for a garbage collection
    of the whole heap (Django's too, when the peer is loaded) says nothing of
    the contestant.
    """
    samples = []
    for _ in range(calls):
        before()
        start = CPU()
        function()
        samples.append(CPU() - start)
    return statistics.median(samples)


def _nothing() -> None:
    pass


@dataclass
class Spread:
    """A median and its quartiles."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if len(values) < 2:
            return cls(values[0], values[0], values[0])
        q = statistics.quantiles(values, n=4)
        return cls(statistics.median(values), q[0], q[2])

    def __str__(self) -> str:
        return f"{self.median:.2f}x ({self.low:.2f}-{self.high:.2f})"


@dataclass
class Figures:
    name: str
    mode: str
    body_bytes: int
    handler_ms: float
    floor_ms: float
    ratio: Spread
    traced_peak_ratio: float
    rss_peak_ratio: float | None = None
    raw_floor_ms: float | None = None
    raw_ratio: Spread | None = None
    peer_ms: float | None = None
    peer_ratio: Spread | None = None  # the peer over the handler
    companion_ratio: Spread | None = None  # the handler over the companion mail's handler

    @property
    def peak_ratio(self) -> float:
        """The larger of the two memory measures, over the body."""
        return max(self.rss_peak_ratio or 0.0, self.traced_peak_ratio)


Contestant = tuple[Callable[[], object], Callable[[], None]]


def measure(
    harness: Harness, mail: BenchMail, rounds: int, peer_post: Callable[[bytes, str], int] | None = None,
    companion: BenchMail | None = None,
) -> Figures:
    event = api_gateway_event(mail.body, mail.content_type)
    harness.check(event, mail.body)
    contestants: dict[str, Contestant] = {
        "handler": (lambda: harness.call(event), harness.clear),
        "floor": (lambda: floor(event), _nothing),
    }
    if mail.mode == "raw":
        parts = base64_parts(mail.eml)
        contestants["raw floor"] = (lambda: raw_floor(event, parts), _nothing)
    if peer_post is not None:
        status = peer_post(mail.body, mail.content_type)
        assert status == 200, f"the peer answered {status}"
        contestants["peer"] = (lambda: peer_post(mail.body, mail.content_type), _nothing)
    if companion is not None:
        other = api_gateway_event(companion.body, companion.content_type)
        harness.check(other, companion.body)
        contestants["companion"] = (lambda: harness.call(other), harness.clear)
    # Warm each (caches, lazily built dependencies), and size its batch from the last warm call.
    sizes: dict[str, int] = {}
    for name, (function, before) in contestants.items():
        for _ in range(3):
            seconds = _batch(function, before, 1)
        sizes[name] = max(1, min(1000, int(BATCH_SECONDS / max(seconds, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in contestants}
    gc.collect()
    gc.freeze()  # what is loaded already (the app, Django) is not scanned again by every collection
    for round_ in range(rounds):
        order = list(contestants) if round_ % 2 == 0 else list(reversed(contestants))
        for name in order:
            function, before = contestants[name]
            samples[name].append(_batch(function, before, sizes[name]))

    gc.unfreeze()
    harness.clear()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    harness.call(event)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    harness.clear()

    handler = samples["handler"]

    def over(name: str) -> Spread:
        return Spread.of([h / x for h, x in zip(handler, samples[name], strict=True)])

    def median_ms(name: str) -> float:
        return statistics.median(samples[name]) * 1000

    figures = Figures(
        mail.name, mail.mode, len(mail.body), median_ms("handler"), median_ms("floor"), over("floor"),
        peak / len(mail.body),
    )
    if "raw floor" in samples:
        figures.raw_floor_ms, figures.raw_ratio = median_ms("raw floor"), over("raw floor")
    if "peer" in samples:
        figures.peer_ms = median_ms("peer")
        figures.peer_ratio = Spread.of([x / h for h, x in zip(handler, samples["peer"], strict=True)])
    if "companion" in samples:
        figures.companion_ratio = over("companion")
    return figures


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


# -- cold start and round trips, over moto's server --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def emulator() -> Iterator[dict[str, str]]:
    """moto's server on a free loopback port with the bench stage's resources; the environment to reach it."""
    port = _free_port()
    env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if moto.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("moto_server did not start")
            time.sleep(0.1)
        import boto3  # noqa: PLC0415

        from scripts.create_resources import create_resources  # noqa: PLC0415

        session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                        region_name="us-east-1")
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"]
        try:
            create_resources(ENV["MAILS_TABLE"], ENV["MAILS_BUCKET"], session, queue=ENV["MAILS_QUEUE"])
        finally:
            os.environ["AWS_ENDPOINT_URL"] = saved or ENV["AWS_ENDPOINT_URL"]
        yield env
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def round_trips(env: dict[str, str], rounds: int) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "roundtrips.py"), env["AWS_ENDPOINT_URL"], str(rounds)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise SystemExit(f"bench/roundtrips.py failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def first_post(round_: int) -> tuple[bytes, str]:
    """A new 10 KB plain mail for each round of the first-invocation measurement."""
    eml = plain(10 * 1024).replace(b"Message-ID: <plain.", f"Message-ID: <first.{round_}.{time.time_ns()}.".encode())
    return build_body(eml)


# -- the report ----------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def mail_table(figures: list[Figures]) -> list[str]:
    lines = [
        f"{'mail':<14} {'mode':<6} {'body':>9} {'handler ms':>10} {'floor ms':>8}  {'handler/floor':<21}"
        f" {'handler/raw floor':<21} {'peer ms':>8}  {'peer/handler':<21} {'peak/body':>9}",
    ]
    for f in figures:
        rss = f"{f.peak_ratio:.2f}x"
        lines.append(
            f"{f.name:<14} {f.mode:<6} {_size(f.body_bytes):>9} {f.handler_ms:>10.3f} {f.floor_ms:>8.3f}  "
            f"{f.ratio!s:<21} {(str(f.raw_ratio) if f.raw_ratio else ''):<21} "
            f"{(f'{f.peer_ms:.3f}' if f.peer_ms is not None else ''):>8}  "
            f"{(str(f.peer_ratio) if f.peer_ratio else ''):<21} {rss:>9}"
        )
    return lines


def goals(figures: list[Figures], imports: Any, trips: dict[str, Any] | None) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for every goal the run measured."""
    rows: list[tuple[str, str, bool]] = []
    by = {(f.name, f.mode): f for f in figures}
    for mode in ("parsed", "raw"):
        small = by.get(("plain-10k", mode))
        if small:
            rows.append((f"10 KB plain ({mode}) under {GOAL_SMALL_MS} ms of CPU", f"{small.handler_ms:.3f} ms",
                         small.handler_ms < GOAL_SMALL_MS))
        html = by.get(("html-200k", mode))
        if html:
            rows.append((f"200 KB HTML, non-ASCII ({mode}) within {GOAL_HTML_RATIO:g}x the floor", str(html.ratio),
                         html.ratio.median <= GOAL_HTML_RATIO))
        for name in ("attach-1m", "attach-4m"):
            big = by.get((name, mode))
            if big and big.raw_ratio is None:
                rows.append((f"{name} ({mode}) within {GOAL_FLOOR_RATIO:g}x the floor", str(big.ratio),
                             big.ratio.median <= GOAL_FLOOR_RATIO))
            elif big and big.raw_ratio is not None:
                # Raw mode decodes its attachments a second time: judged against the floor that counts it.
                rows.append((f"{name} ({mode}) within {GOAL_FLOOR_RATIO:g}x the raw floor", str(big.raw_ratio),
                             big.raw_ratio.median <= GOAL_FLOOR_RATIO))
        japanese = by.get(("iso2022jp-10k", mode))
        if japanese and japanese.companion_ratio:
            rows.append((f"ISO-2022-JP 10 KB ({mode}) within {GOAL_CHARSET_RATIO:g}x the plain 10 KB",
                         str(japanese.companion_ratio), japanese.companion_ratio.median <= GOAL_CHARSET_RATIO))
    # A small mail's peak is the handler's fixed working set (a few hundred KB of Python objects, and a
    # codec's tables on its first use), not a multiple of its body: judged on mails of 0.5 MB and more.
    large = [f for f in figures if f.body_bytes >= 512 * 1024]
    if large:
        worst = max(large, key=lambda f: f.peak_ratio)
        rows.append((f"peak memory under {GOAL_MEMORY_RATIO:g}x the body (0.5 MB and more)",
                     f"worst {worst.peak_ratio:.2f}x ({worst.name} {worst.mode})",
                     worst.peak_ratio < GOAL_MEMORY_RATIO))
    peers = [f.peer_ratio.median for f in figures if f.peer_ratio]
    if peers:
        rows.append(("faster than django-anymail on every mail (peer/handler)",
                     f"{min(peers):.2f}x to {max(peers):.2f}x", min(peers) > 1.0))
    if imports:
        app_import, first = imports
        rows.append((f"import app within {GOAL_IMPORT_RATIO:.2f}x import boto3, chalice (CPU)",
                     f"{app_import.cpu_ratio:.2f}x ({app_import.cpu_spread[0]:.2f}-{app_import.cpu_spread[1]:.2f});"
                     f" {app_import.a_cpu_ms:.0f} vs {app_import.b_cpu_ms:.0f} ms",
                     app_import.cpu_ratio <= GOAL_IMPORT_RATIO))
        rows.append(("  the same, wall time (waits for a core too)",
                     f"{app_import.wall_ratio:.2f}x ({app_import.wall_spread[0]:.2f}-{app_import.wall_spread[1]:.2f});"
                     f" {app_import.a_wall_ms:.0f} vs {app_import.b_wall_ms:.0f} ms", True))
        if first:
            rows.append(("  first invocation (import, clients, one post) vs bare imports + clients (CPU)",
                         f"{first.cpu_ratio:.2f}x; {first.a_cpu_ms:.0f} vs {first.b_cpu_ms:.0f} ms CPU,"
                         f" {first.a_wall_ms:.0f} vs {first.b_wall_ms:.0f} ms wall", True))
    if trips:
        rows.append((f"{trips['attachments']} attachments within {GOAL_ATTACHMENTS_RATIO}x a plain mail,"
                     f" {trips['delay_ms']:.0f} ms a call",
                     f"{trips['ratio']:.2f}x ({trips['spread'][0]:.2f}-{trips['spread'][1]:.2f}); "
                     f"{trips['attachments_ms']:.0f} vs {trips['plain_ms']:.0f} ms; sequential round trips"
                     f" {trips['attachments_rounds']} and {trips['plain_rounds']}",
                     trips["ratio"] <= GOAL_ATTACHMENTS_RATIO))
    return rows


def goal_table(rows: list[tuple[str, str, bool]]) -> list[str]:
    width = max(len(goal) for goal, _, _ in rows)
    lines = [f"{'goal':<{width}}  result  measured (median, quartiles)"]
    for goal, measured, met in rows:
        mark = "" if goal.startswith("  ") else _mark(met)
        lines.append(f"{goal:<{width}}  {mark:<6}  {measured}")
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
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test of the benchmark itself")
    parser.add_argument("--only", help="measure only the mails whose name contains this (no cold start, round trips)")
    parser.add_argument("--no-rss", action="store_true", help="skip the per-mail processes for peak RSS")
    parser.add_argument("--no-peer", action="store_true", help="leave django-anymail out even when installed")
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

    rounds, cold_rounds, trip_rounds = (5, 4, 4) if args.quick else (30, 20, 20)
    everything = corpus()
    mails = [m for m in everything if not args.only or args.only in m.name]
    plains = {m.mode: m for m in everything if m.name == "plain-10k"}
    peer_post = None
    if not args.no_peer and peer.available():
        peer_post = peer.handler()
    harness = Harness()
    figures: list[Figures] = []
    for mail in mails:
        companion = plains[mail.mode] if mail.name == "iso2022jp-10k" else None
        figure = measure(harness, mail, rounds, peer_post, companion)
        if not args.no_rss:
            figure.rss_peak_ratio = rss_peak(mail)
        figures.append(figure)
        print(f"measured {mail.name} {mail.mode}", file=sys.stderr, flush=True)
    imports = trips = None
    if not args.only:
        app_import = coldstart.import_app(cold_rounds, {**os.environ, **ENV})
        print("measured the cold import", file=sys.stderr, flush=True)
        with emulator() as env:
            first = coldstart.first_invocation(cold_rounds, env, first_post)
            print("measured the first invocation", file=sys.stderr, flush=True)
            trips = round_trips(env, trip_rounds)
            print("measured the round trips", file=sys.stderr, flush=True)
        imports = (app_import, first)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')};"
          f" {rounds} rounds per mail, interleaved; CPU time"
          + (f"; peer: {peer.version()}" if peer_post else "; peer: not installed (requirements-bench.txt)"))
    print("\n".join(mail_table(figures)))
    print()
    print("\n".join(goal_table(goals(figures, imports, trips))))
    if args.json:
        args.json.write_text(json.dumps(
            {"mails": [asdict(f) for f in figures],
             "import_app": asdict(imports[0]) if imports else None,
             "first_invocation": asdict(imports[1]) if imports and imports[1] else None,
             "round_trips": trips},
            indent=2,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
