"""The local stack behind `make dev`: moto's server as DynamoDB, S3 and SQS, the resources, and `chalice local`.

Prints the webhook URL with fresh local credentials, a ready command that posts
a sample mail, and one that reads it back. Ctrl-C (or SIGTERM) stops everything
it started.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from chalicelib.delivery.consumer import hand_off  # noqa: E402  (reads its environment on first use)
from chalicelib.ingress.ses.consumer import receive_ses  # noqa: E402
from scripts.create_resources import create_resources  # noqa: E402
from scripts.sqs_poller import Poller  # noqa: E402


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on {host}:{port} within {timeout:.0f} s")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# A request line's query string: SendGrid's MailKey and MailSecret when the URL carries them.
_QUERY = re.compile(r'(?<=[ "])(/[^\s?"]*)\?[^\s"]*')


def echo_without_queries(process: subprocess.Popen[bytes]) -> None:
    """chalice local's output, its access log's query strings left out: they may hold the ingest secret."""
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        sys.stdout.write(_QUERY.sub(r"\1?...", line.decode("utf-8", "replace")))
        sys.stdout.flush()


def main() -> int:
    host = "127.0.0.1"
    port = int(os.environ.get("PORT", "8000"))
    moto_port = int(os.environ.get("MOTO_PORT", "5055"))
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["local"]
    table = stage["environment_variables"]["MAILS_TABLE"]
    bucket = stage["environment_variables"]["MAILS_BUCKET"]
    queue = stage["environment_variables"]["MAILS_QUEUE"]
    ses_queue = stage["environment_variables"]["SES_QUEUE"]
    key, secret = "sendgrid", secrets.token_urlsafe(18)
    token = secrets.token_urlsafe(18)
    reply_secret = secrets.token_urlsafe(18)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://{host}:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "MAIL_CREDENTIALS": f"{key}:{secret}",
        "MAILS_TABLE": table,
        "MAILS_BUCKET": bucket,
        "MAILS_QUEUE": queue,
        "SES_QUEUE": ses_queue,
        "READ_TOKENS": token,
        "REPLY_SECRET": reply_secret,
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    bin_dir = Path(sys.executable).parent
    processes: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        # Each child leads its own process group, so that stopping it stops
        # whatever it started too.
        moto = subprocess.Popen(
            [str(bin_dir / "moto_server"), "-H", host, "-p", str(moto_port)],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        processes.append(moto)
        wait_for_port(host, moto_port, moto)
        create_resources(table, bucket, queue=queue, ses_queue=ses_queue)
        chalice = subprocess.Popen(
            [sys.executable, "scripts/chalice_local.py", "--stage", "local", "--host", host, "--port", str(port)],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        processes.append(chalice)
        threading.Thread(target=echo_without_queries, args=(chalice,), daemon=True).start()
        wait_for_port(host, port, chalice)
        # HTTP Basic in the URL: no log shows it, where a MailSecret in the query is in every access log line.
        url = f"http://{key}:{secret}@{host}:{port}/mails"
        print(
            "\n".join(
                [
                    "",
                    f"DynamoDB + S3 (moto):  http://{host}:{moto_port}  table {table}, bucket {bucket}",
                    f"Webhook URL:           {url}",
                    f"Read token:            {token}",
                    "Post a sample mail:",
                    f"  {sys.executable} scripts/send_mail.py scripts/sample.eml --url '{url}'",
                    "Read it back (the id is in the answer; \"processing\" shows its handoff):",
                    f"  curl -H 'Authorization: Bearer {token}' http://{host}:{port}/mails/ID",
                    f"Reply secret:          {reply_secret}  (mint reply addresses with it:"
                    " chalicelib/mailboxes/reply_addresses.py)",
                    "Mail to a minted reply+THREAD.SIG@… address goes to the replies mailbox,"
                    " everything else to the inbox.",
                    "Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        # Lambda's SQS event source, played by this process: every stored mail is
        # routed to its mailbox and its status changes while the user watches.
        sqs = boto3.client("sqs")
        pollers = [Poller(sqs, queue, hand_off), Poller(sqs, ses_queue, receive_ses)]
        while all(process.poll() is None for process in processes):
            for poller in pollers:
                poller.poll(wait_seconds=1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
