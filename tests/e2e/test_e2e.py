"""`make dev`'s stack end to end: moto's server and `chalice local` as processes, real HTTP, real sample."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


@dataclass
class DevServer:
    process: subprocess.Popen[str]
    port: int
    moto_port: int
    url: str
    token: str
    send_command: str
    output: list[str]
    env: dict[str, str]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    port, moto_port, smtp_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # Its own state, not the checkout's .dev/: the printed commands find it there too.
    env.update(PORT=str(port), MOTO_PORT=str(moto_port), SMTP_PORT=str(smtp_port),
               DEV_STATE_DIR=str(tmp_path_factory.mktemp("dev-state")))
    process = subprocess.Popen(
        [sys.executable, "scripts/dev.py"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Ctrl-C stops everything." in line:
            break
    text = "".join(output)
    url = re.search(r"Webhook URL:\s+(\S+)", text)
    token = re.search(r"Read token:\s+(\S+)", text)
    command = re.search(r"Post a sample mail:\n\s+(.+)\n", text)
    assert url and token and command, text
    server = DevServer(process, port, moto_port, url.group(1), token.group(1), command.group(1), output, env)
    yield server
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def test_the_printed_command_posts_the_sample_and_it_reads_back_over_http(dev_server: DevServer) -> None:
    sent = subprocess.run(
        dev_server.send_command, shell=True, cwd=ROOT, env=dev_server.env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    status, _, reply = sent.stdout.strip().partition(" ")
    assert status == "200"
    answer = json.loads(reply)
    assert answer["duplicate"] is False

    auth = {"Authorization": f"Bearer {dev_server.token}"}
    base = f"http://127.0.0.1:{dev_server.port}"
    mail = requests.get(f"{base}/mails/{answer['id']}", headers=auth, timeout=30).json()
    assert mail["subject"] == "タイトルです"
    assert mail["from"] == {"name": "大栗宗", "address": "sender@example.com"}
    assert mail["text"] == "本文です。\n"
    assert [(a["filename"], a["size"]) for a in mail["attachments"]] == [("メモ.txt", 16)]

    raw = requests.get(f"{base}/mails/{answer['id']}/raw", headers={**auth, "Accept": "*/*"}, timeout=30)
    assert raw.status_code == 200
    assert hashlib.sha256(raw.content).hexdigest() == mail["raw_sha256"]
    assert raw.headers["Content-Type"] == "application/octet-stream"

    # make dev plays Lambda's SQS event source too: the mail is routed to its mailbox.
    deadline = time.monotonic() + 30
    while mail["processing"]["status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.2)
        mail = requests.get(f"{base}/mails/{answer['id']}", headers=auth, timeout=30).json()
    assert mail["processing"] == {"status": "delivered", "attempts": 1, "error": None}

    again = subprocess.run(
        dev_server.send_command + " --raw", shell=True, cwd=ROOT, env=dev_server.env, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert json.loads(again.stdout.partition(" ")[2]) == {"id": answer["id"], "duplicate": True}


def test_the_printed_url_carries_the_credentials_as_http_basic(dev_server: DevServer) -> None:
    assert re.fullmatch(rf"http://sendgrid:[A-Za-z0-9_-]+@127\.0\.0\.1:{dev_server.port}/mails", dev_server.url)


def test_wrong_credentials_over_http_are_401(dev_server: DevServer) -> None:
    url = f"http://127.0.0.1:{dev_server.port}/mails?MailKey=sendgrid&MailSecret=wrong-secret-in-query"
    response = requests.post(
        url, data=b"--b\r\n\r\n--b--", headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=30
    )
    assert response.status_code == 401


def test_interrupt_stops_everything_it_started_and_no_log_line_showed_a_secret(dev_server: DevServer) -> None:
    smtp_port = int(dev_server.env["SMTP_PORT"])
    assert port_open(dev_server.port) and port_open(dev_server.moto_port) and port_open(smtp_port)
    os.kill(dev_server.process.pid, signal.SIGINT)
    assert dev_server.process.wait(timeout=30) == 0
    assert not port_open(dev_server.port)
    assert not port_open(dev_server.moto_port)
    assert not port_open(smtp_port)
    assert dev_server.process.stdout is not None
    logged = dev_server.process.stdout.read()
    assert '"POST /mails?... HTTP/1.1" 401' in logged  # the access log's line, its query left out
    assert "wrong-secret-in-query" not in logged
    # Only a change to the app's code restarts chalice local, never a request reading files.
    assert "Restarting local dev server." not in logged
    secret = dev_server.url.split(":")[2].split("@")[0]
    assert secret not in logged
