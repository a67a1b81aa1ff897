"""The local stack behind `make dev`: moto as DynamoDB, S3 and SQS, the resources, `chalice local`, the consumers, SMTP.

Prints the webhook URL with the local credentials, a ready command that posts a
sample mail, and one that reads it back. Mail, queues and credentials outlive a
restart (in .dev/, or DEV_STATE_DIR: scripts/dev_state.py); `make dev-reset`
starts empty. The queue consumers run in a process of their own
(scripts/consumers.py), started again when the app's code changes, as chalice
local is. SMTP on 127.0.0.1:1025 (SMTP_PORT; SMTP_MODE=parsed) posts each message
to the webhook as SendGrid would (scripts/smtp_bridge.py), in a thread of this
process. Ctrl-C (or SIGTERM, or SIGHUP) stops everything it started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from chalicelib.config import load_settings  # noqa: E402
from chalicelib.delivery.queue import Queue  # noqa: E402
from chalicelib.errors import NotConfiguredError  # noqa: E402
from chalicelib.storage import schema  # noqa: E402
from scripts import dev_state, smtp_bridge  # noqa: E402
from scripts.create_resources import create_resources  # noqa: E402
from scripts.processes import dying_with_parent  # noqa: E402
from scripts.watch import watch_app_code  # noqa: E402

# How long a consumer may finish the message it is handling before it is killed: hand_off's Lambda timeout.
STOP_SECONDS = 60
# Changes closer together than this (an editor's save, a checkout) restart the consumers once.
SETTLE_SECONDS = 0.3


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


def start(command: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[bytes]:
    # Each child leads its own process group, so that stopping it stops whatever
    # it started too, and dies with this process, however this one ends.
    return subprocess.Popen(dying_with_parent(command), cwd=ROOT, env=env, start_new_session=True, **options)


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
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


class Consumers:
    """The consumers' process, started again on each change to the app's code, and when it died, on the next."""

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._told_exit = False

    def start(self) -> None:
        self._process = start([sys.executable, "scripts/consumers.py"], self._env)
        self._told_exit = False

    def stop(self) -> None:
        if self._process is not None:
            stop([self._process], timeout=STOP_SECONDS)

    def tend(self, changed: threading.Event) -> None:
        if changed.is_set():
            settle(changed)
            self.stop()
            self.start()
            print("Restarted the queue consumers: the app's code changed.", flush=True)
        elif self._process is not None and self._process.poll() is not None and not self._told_exit:
            self._told_exit = True
            print(f"The queue consumers exited ({self._process.returncode}); "
                  "they start again when the app's code changes.", flush=True)


def settle(changed: threading.Event) -> None:
    """Returns once no change came for SETTLE_SECONDS."""
    while changed.is_set():
        changed.clear()
        time.sleep(SETTLE_SECONDS)


def requeue_unfinished(table: str, queue: str) -> int:
    """Queue again each mail left pending or processing: the emulator's queues start empty (scripts/emulator.py).

    A handoff takes a mail at most once, so an id queued twice is harmless.
    """
    dynamodb, handoff = boto3.client("dynamodb"), Queue(boto3.client("sqs"), queue)
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table, FilterExpression="#s IN (:pending, :processing)", ProjectionExpression="#i, #r",
        ExpressionAttributeNames={"#s": schema.STATUS, "#i": schema.ID, "#r": schema.ROUND},
        ExpressionAttributeValues={":pending": {"S": schema.PENDING}, ":processing": {"S": schema.PROCESSING}},
    )
    items = [item for page in pages for item in page["Items"]]
    unfinished = [(item[schema.ID]["S"], item.get(schema.ROUND, {}).get("S")) for item in items]
    for mail_id, round_id in unfinished:
        handoff.send(mail_id, round_id)
    return len(unfinished)


def smtp_line(host: str, smtp: tuple[int | None, str]) -> str:
    port, mode = smtp
    if port is None:
        return "SMTP:                  off (SMTP_PORT=off)"
    return (f"SMTP:                  {host}:{port}  (no login; each message posted to the webhook in SendGrid's"
            f" {mode} mode)")


def start_smtp(url: str, host: str, smtp: tuple[int | None, str], env: dict[str, str]) -> Controller | None:
    """The SMTP bridge, bounded as the webhook is (MAX_BODY_BYTES); None when SMTP_PORT says off."""
    port, mode = smtp
    if port is None:
        return None
    try:
        limit = load_settings(env).max_body_bytes
    except NotConfiguredError as exc:
        raise SystemExit(f"error: {exc.message}") from None
    try:
        return smtp_bridge.start(smtp_bridge.Bridge(url, mode, limit), host, port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SystemExit(f"error: SMTP cannot listen on {host}:{port} ({reason});"
                         " set SMTP_PORT to another port, or to off") from None


def banner(host: str, port: int, moto_port: int, stage: dict[str, str], credentials: dev_state.Credentials,
           smtp: tuple[int | None, str]) -> str:
    url = dev_state.webhook_url(f"http://{host}:{port}", credentials)
    bin_dir = Path(sys.executable).parent
    mails = bin_dir / "mails" if (bin_dir / "mails").exists() else f"{sys.executable} scripts/mails.py"
    return "\n".join(
        [
            "",
            f"DynamoDB + S3 + SQS (moto):  http://{host}:{moto_port}  table {stage['MAILS_TABLE']},"
            f" bucket {stage['MAILS_BUCKET']}",
            f"Webhook URL:           {url}",
            smtp_line(host, smtp),
            f"Read token:            {credentials.read_token}",
            f"Mail console:          http://{host}:{port}/console  (sign in with the read token)",
            "Post a sample mail:",
            f"  {sys.executable} scripts/send_mail.py scripts/sample.eml",
            "Read it back (the id is in the answer; \"processing\" shows its handoff):",
            f"  {mails} show ID",
            f"  curl -H 'Authorization: Bearer {credentials.read_token}' http://{host}:{port}/mails/ID",
            f"Reply secret:          {credentials.reply_secret}  (mint reply addresses with it:"
            " chalicelib/mailboxes/reply_addresses.py)",
            "Mail to a minted reply+THREAD.SIG@… address goes to the replies mailbox,"
            " everything else to the inbox.",
            f"Mail, queues and credentials are kept in {dev_state.state_dir()}; `make dev-reset` starts empty.",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def environment(host: str, moto_port: int, stage: dict[str, str], credentials: dev_state.Credentials) -> dict[str, str]:
    return {
        **os.environ,
        **stage,
        "AWS_ENDPOINT_URL": f"http://{host}:{moto_port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "MAIL_CREDENTIALS": f"{credentials.ingest_key}:{credentials.ingest_secret}",
        "READ_TOKENS": credentials.read_token,
        "REPLY_SECRET": credentials.reply_secret,
        "LOG_TRACEBACKS": "1",  # chalicelib/logs.py: the whole traceback of a handler's error, text and all
        "PYTHONUNBUFFERED": "1",
    }


def main() -> int:
    host = "127.0.0.1"
    port = int(os.environ.get("PORT", "8000"))
    moto_port = int(os.environ.get("MOTO_PORT", "5055"))
    smtp = smtp_bridge.settings(os.environ)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage: dict[str, str] = config["stages"]["local"]["environment_variables"]
    state = dev_state.state_dir()
    credentials = dev_state.load_or_create_credentials(state)
    env = environment(host, moto_port, stage, credentials)
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []
    consumers = Consumers(env)
    listening = False
    smtp_server: Controller | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        # First, so that a taken port stops make dev at once; a message before chalice local listens hears 451.
        smtp_server = start_smtp(dev_state.webhook_url(f"http://{host}:{port}", credentials), host, smtp, env)
        emulator = start(
            [sys.executable, "scripts/emulator.py", "--host", host, "--port", str(moto_port),
             "--journal", str(state / dev_state.JOURNAL)], env,
        )
        processes.append(emulator)
        wait_for_port(host, moto_port, emulator)
        create_resources(stage["MAILS_TABLE"], stage["MAILS_BUCKET"], queue=stage["MAILS_QUEUE"],
                         ses_queue=stage["SES_QUEUE"])
        requeued = requeue_unfinished(stage["MAILS_TABLE"], stage["MAILS_QUEUE"])
        chalice = start(
            [sys.executable, "scripts/chalice_local.py", "--stage", "local", "--host", host, "--port", str(port)],
            env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        processes.append(chalice)
        threading.Thread(target=echo_without_queries, args=(chalice,), daemon=True).start()
        wait_for_port(host, port, chalice)
        dev_state.write_server(state, f"http://{host}:{port}")
        listening = True
        print(banner(host, port, moto_port, stage, credentials, smtp), flush=True)
        if requeued:
            print(f"Mail left unfinished by the last run, queued again for its handoff: {requeued}", flush=True)
        changed = threading.Event()
        watch_app_code(changed, ROOT)
        consumers.start()
        while all(process.poll() is None for process in processes):
            consumers.tend(changed)
            time.sleep(0.2)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if smtp_server is not None:
            smtp_server.stop()
        consumers.stop()
        stop(processes)
        if listening:  # else it may be another make dev's
            dev_state.remove_server(state)


if __name__ == "__main__":
    sys.exit(main())
