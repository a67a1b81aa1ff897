"""`mails relay` as an MTA runs it, against a real `chalice local`: the exit status says deliver, retry or bounce."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import KEY, ROOT, SECRET, free_port, read_headers
from tests.support.processes import launch

pytestmark = pytest.mark.slow
MAILGUN_KEY = "e2e-mailgun-signing-key"

EML = (b"From: A <a@example.org>\r\nTo: box@example.com\r\nSubject: relayed\r\n"
       b"Message-ID: <relay-1@example.org>\r\n\r\nHello from Postfix.\r\n")


def chalice_local(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = launch([str(Path(sys.executable).parent / "chalice"), "local", "--stage", "local", "--port", str(port),
                      "--no-autoreload"], env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chalice local did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


@pytest.fixture
def service(configured: str) -> Iterator[str]:
    yield from chalice_local({**os.environ, "MAILGUN_SIGNING_KEY": MAILGUN_KEY})


@pytest.fixture
def service_without_storage(configured: str) -> Iterator[str]:
    """The same app, its AWS endpoint a port nobody listens on: every write fails."""
    yield from chalice_local({**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})


def relay(url: str, message: bytes, *recipients: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "scripts/mails.py", "relay", "--url", url, "--sender", "a@example.org",
               *(recipients or ("box@example.com",))]
    return subprocess.run(command, input=message, capture_output=True, cwd=ROOT, timeout=60, check=False)


def test_a_relayed_message_is_stored_with_its_envelope_and_exits_0(service: str) -> None:
    done = relay(f"http://{KEY}:{SECRET}@{service}/ingress/relay", b"From a@example.org  Mon Nov 30\n" + EML,
                 "box@example.com", "bcc@example.com")
    assert (done.returncode, done.stderr) == (0, b"")
    listing = requests.get(f"http://{service}/mails?to=bcc@example.com", headers=read_headers(), timeout=10).json()
    [summary] = listing["mails"]
    mail = requests.get(f"http://{service}/mails/{summary['id']}", headers=read_headers(), timeout=10).json()
    assert (mail["mode"], mail["envelope"]) == ("relay", {"from": "a@example.org",
                                                         "to": ["box@example.com", "bcc@example.com"]})
    eml = requests.get(f"http://{service}/mails/{summary['id']}/eml", headers=read_headers(), timeout=10)
    assert eml.content == EML  # the mbox line the MTA wrote first is not part of it
    again = relay(f"http://{KEY}:{SECRET}@{service}/ingress/relay", EML, "box@example.com", "bcc@example.com")
    assert again.returncode == 0


def test_wrong_credentials_exit_77_so_the_mta_bounces_at_once(service: str) -> None:
    done = relay(f"http://{KEY}:wrong@{service}/ingress/relay", EML)
    assert (done.returncode, done.stderr) == (77, b"mails relay: 401 credentials wrong\n")


def test_a_message_that_can_never_be_read_exits_65(service: str) -> None:
    done = relay(f"http://{KEY}:{SECRET}@{service}/ingress/relay", b"\r\n\r\n")
    assert (done.returncode, done.stderr) == (65, b"mails relay: 400 the message is empty\n")


def test_nothing_listening_exits_75_so_the_mta_retries() -> None:
    done = relay(f"http://{KEY}:{SECRET}@127.0.0.1:{free_port()}/ingress/relay", EML)
    assert done.returncode == 75
    assert done.stderr.startswith(b"mails relay: ConnectionError from http://127.0.0.1:")
    assert SECRET.encode() not in done.stderr


def test_storage_down_is_a_503_and_exits_75(service_without_storage: str) -> None:
    done = relay(f"http://{KEY}:{SECRET}@{service_without_storage}/ingress/relay", EML)
    assert done.returncode == 75
    assert done.stderr.startswith(b"mails relay: 503 S3 PutObject failed")


def test_relay_status_maps_every_answer() -> None:
    from scripts.mails import relay_status

    assert [relay_status(code) for code in (200, 400, 401, 403, 404, 413, 415, 500, 502, 503, 302)] == [
        0, 65, 77, 77, 65, 65, 65, 75, 75, 75, 75
    ]


def test_send_mail_posts_one_message_as_each_provider_and_it_is_stored_once(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`send_mail.py --as …` against the real server: the same message through four ingresses, one mail."""
    eml = tmp_path / "m.eml"
    eml.write_bytes(EML)
    base = f"http://{KEY}:{SECRET}@{service}"

    def send(provider: str, path: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/send_mail.py", str(eml), "--as", provider, "--url", base + path,
             "--envelope-to", "box@example.com", *extra],
            capture_output=True, cwd=ROOT, timeout=60, check=False, text=True,
            env={**os.environ, "MAILGUN_SIGNING_KEY": ""},
        )

    answers = [
        send("sendgrid", "/mails"), send("postmark", "/ingress/postmark"),
        send("mailgun", "/ingress/mailgun", "--mailgun-key", MAILGUN_KEY),
        send("mailgun", "/ingress/mailgun/mime", "--raw", "--mailgun-key", MAILGUN_KEY),
        send("relay", "/ingress/relay"),
    ]
    assert [(done.returncode, done.stdout[:3]) for done in answers] == [(0, "200")] * 5
    assert [json.loads(done.stdout[4:])["duplicate"] for done in answers] == [False, True, True, True, True]
    listing = requests.get(f"http://{service}/mails", headers=read_headers(), timeout=10).json()
    assert len(listing["mails"]) == 1
    unsigned = send("mailgun", "/ingress/mailgun")
    assert unsigned.returncode == 2
    assert "--as mailgun needs --mailgun-key (or MAILGUN_SIGNING_KEY)" in unsigned.stderr
