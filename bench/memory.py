"""Peak memory of a Lambda invocation that ingests the largest mail API Gateway can hand over.

Lambda takes at most 6 MB of request and API Gateway base64-encodes a binary
body, so the largest SendGrid post that reaches the function is about 4.5 MB.
This builds one in each SendGrid mode (parsed: the attachment as a binary file
part; raw: the whole MIME message, attachment in base64, in the ``email``
field), and hands it to the app the way the Lambda runtime does: the API
Gateway event as JSON text, decoded, then ``app(event, context)``. Each mode
runs in a fresh Python process, so that its peak RSS (what Lambda reports as
"Max Memory Used", less the runtime's own few MB) is the number printed; moto's
server runs in another process, so the stored bytes are not counted.

Then the ``hand_off`` function, in another fresh process per mode, is given the
SQS event of each mail just stored, as Lambda's event source would: it claims
the mail, reads it back (the large document from S3) and runs its route, which
sizes ``lambda_functions.hand_off.lambda_memory_size``.

With ``--ses``, the ``receive_ses`` function instead, which sizes
``lambda_functions.receive_ses.lambda_memory_size``: messages of ``--ses-mb``
MB (default 40, SES's largest) are written under ``ses/`` as SES's receipt rule
would, and the function is given the SQS event of each one's SES notification.

    .venv/bin/python bench/memory.py [--json] [--raw-stdlib] [--ses [--ses-mb N] [--ses-shape SHAPE]]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BODY_BYTES = 4_500_000
# Distinct mails, one container: enough to see whether the peak keeps growing after the first.
INVOCATIONS = 4
KEY, SECRET = "bench", "bench-secret-value"
STAGE = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["local"]["environment_variables"]


def _rss_mb() -> float:
    """Peak resident set of this process so far: VmHWM, since ru_maxrss survives exec and would show the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _eml(attachment_bytes: int, seed: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.com>"
    message["To"] = "info@example.com"
    message["Subject"] = "請求書を送ります"
    message["Message-ID"] = f"<bench-{seed}@example.com>"
    message.set_content("本文です。\n" * 200)
    # Random bytes: incompressible, as a real PDF or image attachment is.
    data = random.Random(seed).randbytes(attachment_bytes)
    message.add_attachment(data, maintype="application", subtype="pdf", filename="請求書.pdf")
    return message.as_bytes()


def build_post(mode: str, seed: int, stdlib_shape: bool = False) -> tuple[bytes, str]:
    """A SendGrid post of about BODY_BYTES in MODE, sized by trying a small one first.

    ``stdlib_shape``: in raw mode, the message has a lone CR in a header, a shape
    chalicelib/mime/tree.py leaves to the stdlib parser: the raw decoder's worst case.
    """
    # Imported only where needed, so that the measured child does not load them (boto3 is ~30 MB).
    from scripts.send_mail import build_body  # noqa: PLC0415
    raw = mode == "raw"
    odd = b"X-Odd: a lone\rCR\r\n" if raw and stdlib_shape else b""
    small, _ = build_body(odd + _eml(1000, seed), raw=raw)
    # In raw mode the attachment travels in base64: 4 bytes per 3, plus a line break per 76.
    growth = 4 / 3 * 78 / 76 if raw else 1.0
    size = int((BODY_BYTES - len(small)) / growth) + 1000
    return build_body(odd + _eml(size, seed), raw=raw)


def api_gateway_event(body: bytes, content_type: str) -> dict[str, Any]:
    headers = {"content-type": content_type, "accept": "*/*", "host": "example.execute-api.amazonaws.com"}
    return {
        "resource": "/mails",
        "path": "/mails",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {"MailKey": KEY, "MailSecret": SECRET},
        "multiValueQueryStringParameters": {"MailKey": [KEY], "MailSecret": [SECRET]},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/mails", "httpMethod": "POST", "stage": "bench", "path": "/bench/mails",
            "requestId": "bench", "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }


def sqs_event(mail_id: str, seed: int) -> dict[str, Any]:
    """What Lambda's SQS event source hands hand_off for one message (batch size 1)."""
    body = json.dumps({"id": mail_id})
    return {
        "Records": [
            {
                "messageId": f"bench-{seed}", "receiptHandle": f"bench-receipt-{seed}", "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{STAGE['MAILS_QUEUE']}",
                "awsRegion": "us-east-1",
            }
        ]
    }


SES_SHAPES = ("plain", "forwarded", "stdlib")


def ses_message(megabytes: float, seed: int, shape: str = "plain") -> bytes:
    """A MIME message of about MEGABYTES MB, as SES writes it: headers and a base64 attachment.

    ``forwarded``: that message forwarded inside another (``message/rfc822``).
    ``stdlib``: the plain one with a lone CR in a header, a shape
    chalicelib/mime/tree.py leaves to the stdlib parser: the decoder's worst case.
    """
    small = _eml(1000, seed)
    growth = 4 / 3 * 78 / 76  # base64, and a line break per 76 characters
    inner = _eml(int((megabytes * 1_000_000 - len(small)) / growth) + 1000, seed)
    if shape == "stdlib":
        return b"X-Odd: a lone\rCR\r\n" + inner
    if shape != "forwarded":
        return inner
    outer = EmailMessage()
    outer["From"] = "Forwarder <forwarder@example.com>"
    outer["To"] = "info@example.com"
    outer["Subject"] = "Fwd: 請求書を送ります"
    outer["Message-ID"] = f"<bench-forwarded-{seed}@example.com>"
    outer.set_content("Forwarded message attached.\n")
    outer.add_attachment(message_from_bytes(inner, policy=default))
    return outer.as_bytes()


def ses_event(bucket: str, key: str, seed: int) -> dict[str, Any]:
    """What Lambda's SQS event source hands receive_ses for one SES notification (raw message delivery)."""
    notification = {
        "notificationType": "Received",
        "mail": {"source": "sender@example.com", "messageId": key.rsplit("/", 1)[-1],
                 "destination": ["info@example.com"]},
        "receipt": {
            "recipients": ["info@example.com"],
            **{f"{name}Verdict": {"status": "PASS"} for name in ("spam", "virus", "spf", "dkim", "dmarc")},
            "action": {"type": "S3", "topicArn": "arn:aws:sns:us-east-1:123456789012:ses",
                       "bucketName": bucket, "objectKey": key},
        },
    }
    return {
        "Records": [
            {
                "messageId": f"bench-ses-{seed}", "receiptHandle": f"bench-ses-receipt-{seed}",
                "body": json.dumps(notification),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{STAGE['SES_QUEUE']}",
                "awsRegion": "us-east-1",
            }
        ]
    }


class LambdaContext:
    function_name = "inbound-mail-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def child(mode: str, event_files: list[Path]) -> dict[str, Any]:
    """Runs in the measured process: import the app, then one invocation per event file (the first is cold).

    MODE is parsed or raw (the REST API's function, app.app), handoff-parsed
    or handoff-raw (the hand_off function, on the mail that mode stored), or
    ses (the receive_ses function, on messages SES wrote).
    """
    started = _rss_mb()
    cpu = time.process_time()
    # Imported here, not at the top, so that its cost shows as its own number.
    import app as app_module  # noqa: PLC0415
    from chalicelib.delivery.consumer import hand_off  # noqa: PLC0415
    from chalicelib.ingress.ses.consumer import receive_ses  # noqa: PLC0415

    handlers = {"handoff": hand_off, "ses": receive_ses}
    handler = handlers.get(mode.partition("-")[0], app_module.app)
    result: dict[str, Any] = {
        "mode": mode, "rss_start_mb": round(started, 1), "rss_import_app_mb": round(_rss_mb(), 1),
        "import_cpu_s": round(time.process_time() - cpu, 3),
    }
    result["status"], result["cpu_s"], result["wall_s"], result["peak_mb"], result["ids"] = [], [], [], [], []
    for path in event_files:
        # The runtime reads the event as bytes and keeps them while the handler runs.
        text = path.read_bytes()
        cpu, wall = time.process_time(), time.perf_counter()
        response = handler(json.loads(text), LambdaContext())
        if mode.startswith(("handoff", "ses")):
            result["status"].append("ok")  # hand_off and receive_ses raise on failure
        else:
            result["status"].append(response["statusCode"])
            result["ids"].append(json.loads(response["body"]).get("id"))
        result["cpu_s"].append(round(time.process_time() - cpu, 3))
        result["wall_s"].append(round(time.perf_counter() - wall, 3))
        result["peak_mb"].append(round(_rss_mb(), 1))
        del text, response
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("moto_server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def _measure_ses(folder: str, env: dict[str, str], megabytes: float, shape: str) -> dict[str, Any]:
    """receive_ses in a fresh process, on INVOCATIONS messages SES wrote under ses/ (the first cold)."""
    import boto3  # noqa: PLC0415

    s3 = boto3.client("s3")
    files, size = [], 0
    for seed in range(1, INVOCATIONS + 1):
        message = ses_message(megabytes, seed, shape)
        key = f"ses/bench-{seed}"
        s3.put_object(Bucket=STAGE["MAILS_BUCKET"], Key=key, Body=message)
        size = len(message)
        del message
        path = Path(folder) / f"ses-{seed}.json"
        path.write_text(json.dumps(ses_event(STAGE["MAILS_BUCKET"], key, seed)))
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, __file__, "--child", "ses", "--events", *files],
        env=env, capture_output=True, text=True, check=True,
    )
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    measured["body_bytes"], measured["event_bytes"] = size, Path(files[0]).stat().st_size
    # receive_ses drops (and only logs) what it cannot store: count what it stored.
    items = boto3.client("dynamodb").scan(TableName=STAGE["MAILS_TABLE"])["Items"]
    stored = [item for item in items if item.get("raw_key", {}).get("S", "").startswith("ses/bench-")]
    if len(stored) != len(files):
        raise SystemExit(f"ses: {len(stored)} of {len(files)} messages stored; see the child's log")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--ses", action="store_true", help="measure receive_ses instead, on SES's messages")
    parser.add_argument("--ses-mb", type=float, default=40.0, metavar="N", help="size of each SES message (40)")
    parser.add_argument("--raw-stdlib", action="store_true",
                        help="raw mode's message in a shape the stdlib parser reads (the worst case)")
    parser.add_argument("--ses-shape", choices=SES_SHAPES, default="plain",
                        help="plain; forwarded inside another message; or one the stdlib parser reads (the worst case)")
    parser.add_argument(
        "--child", choices=("parsed", "raw", "handoff-parsed", "handoff-raw", "ses"), help=argparse.SUPPRESS
    )
    parser.add_argument("--events", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.events)))
        return 0

    port = _free_port()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "MAILS_TABLE": STAGE["MAILS_TABLE"], "MAILS_BUCKET": STAGE["MAILS_BUCKET"],
        # With a queue, ingest also sends the id (as deployed), and hand_off has mail to take.
        "MAILS_QUEUE": STAGE["MAILS_QUEUE"],
        "MAIL_CREDENTIALS": f"{KEY}:{SECRET}", "READ_TOKENS": "bench-token",
    }
    for name in ("AWS_PROFILE", "MAIL_CREDENTIALS_PARAMETER", "READ_TOKENS_PARAMETER"):
        env.pop(name, None)
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    results = []
    try:
        _wait(port, moto)
        os.environ.update(env)
        from scripts.create_resources import create_resources  # noqa: PLC0415

        create_resources(
            STAGE["MAILS_TABLE"], STAGE["MAILS_BUCKET"], queue=STAGE["MAILS_QUEUE"], ses_queue=STAGE["SES_QUEUE"]
        )
        with tempfile.TemporaryDirectory() as folder:
            if args.ses:
                results.append(_measure_ses(folder, env, args.ses_mb, args.ses_shape))
            for mode in () if args.ses else ("parsed", "raw"):
                # Built here, not in the measured process, whose peak would otherwise be the building.
                files, sizes = [], []
                for seed in range(1, INVOCATIONS + 1):
                    body, content_type = build_post(mode, seed, args.raw_stdlib)
                    path = Path(folder) / f"{mode}-{seed}.json"
                    path.write_text(json.dumps(api_gateway_event(body, content_type)))
                    files.append(str(path))
                    sizes.append((len(body), path.stat().st_size))
                done = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--events", *files],
                    env=env, capture_output=True, text=True, check=True,
                )
                measured = json.loads(done.stdout.strip().splitlines()[-1])
                measured["body_bytes"], measured["event_bytes"] = sizes[0]
                results.append(measured)
                if measured["status"] != [200] * len(files):
                    raise SystemExit(f"{mode}: the app answered {measured['status']}, not 200 each time")
                # The same mails handed off, in a fresh process as a cold hand_off container.
                handoffs = []
                for seed, mail_id in enumerate(measured["ids"], start=1):
                    path = Path(folder) / f"handoff-{mode}-{seed}.json"
                    path.write_text(json.dumps(sqs_event(mail_id, seed)))
                    handoffs.append(str(path))
                done = subprocess.run(
                    [sys.executable, __file__, "--child", f"handoff-{mode}", "--events", *handoffs],
                    env=env, capture_output=True, text=True, check=True,
                )
                handed = json.loads(done.stdout.strip().splitlines()[-1])
                handed["body_bytes"], handed["event_bytes"] = sizes[0][0], Path(handoffs[0]).stat().st_size
                results.append(handed)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(
            f"{r['mode']:>6}: body {r['body_bytes'] / 1e6:.2f} MB (event {r['event_bytes'] / 1e6:.2f} MB); "
            f"peak RSS at start {r['rss_start_mb']} MB, after import app {r['rss_import_app_mb']} MB "
            f"({r['import_cpu_s']} s CPU), after each invocation {r['peak_mb']} MB; "
            f"status {r['status']}, CPU s {r['cpu_s']}, wall s {r['wall_s']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
