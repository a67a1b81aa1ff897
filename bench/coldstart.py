"""Cold start, whole process: ``import app`` against ``import boto3, chalice``, and a first invocation, in paired runs.

Each round starts one fresh interpreter of each kind, in turns (which goes
first alternates), and the answer is the median of the per-round ratios with
its quartiles. Each process is measured whole, interpreter start to exit:
its CPU time (user + system, every thread's: what the cold start costs, and
steady on a machine shared with other work) and its wall time (which waits
for a core when the machine is busy). ``python -X importtime -c "import app"``
shows where the difference goes.

The first invocation is the import, the clients (S3, DynamoDB, SQS) and one
SendGrid post stored in the emulator, against the bare imports and the same
three clients.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

APP = "import app"
BARE = "import boto3, chalice"
BARE_CLIENTS = """
import boto3, chalice
from botocore.config import Config
for name in ("s3", "dynamodb", "sqs"):
    boto3.client(name, config=Config())
"""
FIRST_INVOCATION = """
import base64, json, sys
import app
from chalicelib.wiring import services
services.store(); services.queue()
body = sys.stdin.buffer.read()
content_type, _, body = body.partition(b"\\n")
event = {"resource": "/mails", "path": "/mails", "httpMethod": "POST",
         "headers": {"Content-Type": content_type.decode()},
         "multiValueHeaders": {"Content-Type": [content_type.decode()]},
         "queryStringParameters": {"MailKey": "sendgrid", "MailSecret": "bench-secret-value"},
         "multiValueQueryStringParameters": {"MailKey": ["sendgrid"], "MailSecret": ["bench-secret-value"]},
         "pathParameters": None, "stageVariables": None,
         "requestContext": {"resourcePath": "/mails", "httpMethod": "POST", "path": "/dev/mails", "stage": "dev",
                            "requestId": "bench", "identity": {"sourceIp": "192.0.2.1"}},
         "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    def get_remaining_time_in_millis(self): return 25000
answer = app.app(event, Context())
assert answer["statusCode"] == 200, answer
"""


@dataclass(frozen=True)
class Paired:
    a_cpu_ms: float
    b_cpu_ms: float
    cpu_ratio: float
    cpu_spread: tuple[float, float]
    a_wall_ms: float
    b_wall_ms: float
    wall_ratio: float
    wall_spread: tuple[float, float]


def _run(code: str, env: dict[str, str], stdin: bytes | None) -> tuple[float, float]:
    """CPU and wall seconds of one fresh interpreter running ``code``, start to exit."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stderr is not None
    if stdin is not None:
        process.stdin.write(stdin)
    process.stdin.close()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"cold start child failed: {errors.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def paired(a: str, b: str, rounds: int, env: dict[str, str], stdin: Callable[[int], bytes] | None = None) -> Paired:
    """``a`` against ``b``, each in a fresh process per round, in turns; medians of the per-round ratios.

    ``stdin(round)`` is what ``a`` reads on its standard input in that round.
    """
    env = dict(env)
    # Any value, "0" too, stops Python writing .pyc files: every round would compile chalicelib again,
    # where Lambda's package and site-packages alike have theirs.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    feed = stdin or (lambda round_: b"")
    _run(a, env, feed(-1)), _run(b, env, None)  # the first of each writes the .pyc files
    cpu: list[tuple[float, float]] = []
    wall: list[tuple[float, float]] = []
    for round_ in range(rounds):
        if round_ % 2:
            (ac, aw), (bc, bw) = _run(a, env, feed(round_)), _run(b, env, None)
        else:
            (bc, bw), (ac, aw) = _run(b, env, None), _run(a, env, feed(round_))
        cpu.append((ac, bc))
        wall.append((aw, bw))
    cpu_ratios = [x / y for x, y in cpu]
    wall_ratios = [x / y for x, y in wall]
    return Paired(
        statistics.median(x for x, _ in cpu) * 1000, statistics.median(y for _, y in cpu) * 1000,
        statistics.median(cpu_ratios), _quartiles(cpu_ratios),
        statistics.median(x for x, _ in wall) * 1000, statistics.median(y for _, y in wall) * 1000,
        statistics.median(wall_ratios), _quartiles(wall_ratios),
    )


def import_app(rounds: int, env: dict[str, str]) -> Paired:
    return paired(APP, BARE, rounds, env)


def first_invocation(rounds: int, env: dict[str, str], post: Callable[[int], tuple[bytes, str]]) -> Paired:
    """``env`` points at a running emulator with the stage's resources; ``post(round)`` is a new mail each round."""

    def feed(round_: int) -> bytes:
        body, content_type = post(round_)
        return content_type.encode() + b"\n" + body

    return paired(FIRST_INVOCATION, BARE_CLIENTS, rounds, env, feed)
