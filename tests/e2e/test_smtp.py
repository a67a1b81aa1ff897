"""SMTP into `make dev`: a real client sends, the whole stack stores, the read API shows the SMTP envelope.

scripts/dev.py runs as a developer runs it (free ports, its own state), once per
mode: raw by default, parsed with SMTP_MODE=parsed. The storage outage is the
emulator frozen (SIGSTOP): every AWS call times out, as when AWS is unreachable.
tests/operations/test_smtp_bridge.py holds the bridge's every answer against a stand-in webhook.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

SENDER, RECIPIENTS = "bounce@example.org", ["box@example.com", "other@example.net"]


class Stack:
    """scripts/dev.py with its SMTP port, its console read as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.smtp_port = int(env["SMTP_PORT"])
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py"], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(120):
            self.stop()
            raise AssertionError("make dev did not start:\n" + "\n".join(self.lines))
        text = "\n".join(self.lines)
        token = re.search(r"Read token:\s+(\S+)", text)
        assert token, text
        self.token = token.group(1)
        self.base = f"http://127.0.0.1:{env['PORT']}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops everything."):
                self._ready.set()
        self._ready.set()

    def get(self, path: str) -> Any:
        response = requests.get(self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def emulator_pid(self) -> int:
        """The emulator, a child of scripts/dev.py (found through /proc: its command line names it)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            if parent == self.process.pid and b"scripts/emulator.py" in command:
                return int(entry.name)
        raise AssertionError("no emulator among make dev's children")

    def stop(self) -> None:
        """SIGKILL to scripts/dev.py: its children die with it (scripts/processes.py), its SMTP thread in it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Stack]]:
    """stacks(mode): make dev in that SMTP mode, started on first use and kept for the module."""
    started: dict[str, Stack] = {}

    def stack(mode: str) -> Stack:
        if mode not in started:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILS_", "SMTP_"))}
            env.update(PORT=str(free_port()), MOTO_PORT=str(free_port()), SMTP_PORT=str(free_port()),
                       DEV_STATE_DIR=str(tmp_path_factory.mktemp(f"dev-{mode}")))
            if mode == "parsed":  # raw is the default: said by nothing
                env["SMTP_MODE"] = "parsed"
            started[mode] = Stack(env)
        return started[mode]

    yield stack
    for each in started.values():
        each.stop()


def message(subject: str, message_id: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Ann <ann@example.org>", "list@example.com", subject
    mail["Message-ID"] = f"<{message_id}@example.org>"
    mail.set_content("Grüße aus dem Test.\n")
    mail.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="pdf", filename="report.pdf")
    return mail


def stored(stack: Stack, subject: str) -> Any:
    """The one mail of box@example.com with this subject, read back whole."""
    (summary,) = [m for m in stack.get("/mails?to=box@example.com")["mails"] if m["subject"] == subject]
    return stack.get(f"/mails/{summary['id']}")


@pytest.mark.parametrize("mode", ["raw", "parsed"])
def test_smtplib_stores_the_mail_with_the_smtp_envelope_as_its_envelope(
    stacks: Callable[[str], Stack], mode: str
) -> None:
    stack = stacks(mode)
    assert f"SMTP:                  127.0.0.1:{stack.smtp_port}  (no login; each message posted to the webhook" \
           f" in SendGrid's {mode} mode)" in stack.lines
    subject = f"Quarterly report, {mode} mode"
    with smtplib.SMTP("127.0.0.1", stack.smtp_port) as client:
        assert client.send_message(message(subject, f"smtp-{mode}"), from_addr=SENDER, to_addrs=RECIPIENTS) == {}
    mail = stored(stack, subject)
    assert (mail["mode"], mail["envelope"], mail["from"], mail["text"]) == (
        mode, {"from": SENDER, "to": RECIPIENTS}, {"name": "Ann", "address": "ann@example.org"},
        "Grüße aus dem Test.\r\n",
    )
    assert [(a["filename"], a["content_type"], a["size"]) for a in mail["attachments"]] == [
        ("report.pdf", "application/pdf", 19)
    ]


def test_a_storage_outage_gives_the_smtp_client_451_and_its_retry_is_stored(stacks: Callable[[str], Stack]) -> None:
    stack = stacks("raw")
    emulator = stack.emulator_pid()
    os.kill(emulator, signal.SIGSTOP)
    try:
        with smtplib.SMTP("127.0.0.1", stack.smtp_port) as client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(message("During the outage", "smtp-outage"), from_addr=SENDER, to_addrs=RECIPIENTS)
    finally:
        os.kill(emulator, signal.SIGCONT)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        451, b"4.3.0 The webhook did not store the message (HTTP 503); try again later"
    )
    with smtplib.SMTP("127.0.0.1", stack.smtp_port) as client:  # what a real MTA does next
        client.send_message(message("During the outage", "smtp-outage"), from_addr=SENDER, to_addrs=RECIPIENTS)
    assert stored(stack, "During the outage")["envelope"] == {"from": SENDER, "to": RECIPIENTS}


def test_a_message_over_the_webhooks_bound_is_refused_with_552(stacks: Callable[[str], Stack]) -> None:
    stack = stacks("raw")
    big = message("Too big", "smtp-big")
    big.add_attachment(b"\0" * (5 * 1024 * 1024), maintype="application", subtype="octet-stream", filename="big")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == str(6 * 1024 * 1024)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(big, from_addr=SENDER, to_addrs=RECIPIENTS)
    assert refused.value.smtp_code == 552
    assert [m for m in stack.get("/mails?to=box@example.com")["mails"] if m["subject"] == "Too big"] == []


@pytest.fixture(scope="module")
def swaks() -> str:
    """Debian's swaks, installed here when missing (CI runs as root); else the test says why it cannot run."""
    found = shutil.which("swaks")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "swaks"]
        if subprocess.run(install, env=apt, capture_output=True, check=False, timeout=300).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=apt, capture_output=True, check=False, timeout=300)
            subprocess.run(install, env=apt, capture_output=True, check=False, timeout=300)
        found = shutil.which("swaks")
    if found is None:
        pytest.skip("SWAKS NOT TESTED: swaks is not installed and cannot be (apt-get install swaks needs root)")
    return found


def test_swaks_sends_to_make_dev(stacks: Callable[[str], Stack], swaks: str) -> None:
    stack = stacks("raw")
    sent = subprocess.run(
        [swaks, "--server", f"127.0.0.1:{stack.smtp_port}", "--from", SENDER, "--to", ",".join(RECIPIENTS),
         "--header", "Subject: Sent with swaks", "--body", "Hello from swaks"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert re.search(r"^<-  250 2\.0\.0 Stored as [a-z0-9]+$", sent.stdout, re.MULTILINE), sent.stdout
    mail = stored(stack, "Sent with swaks")
    # swaks ends its body with two empty lines of its own.
    assert (mail["envelope"], mail["text"]) == ({"from": SENDER, "to": RECIPIENTS}, "Hello from swaks\r\n\r\n\r\n")


def test_make_dev_with_its_smtp_port_taken_stops_before_starting_anything(tmp_path: Path) -> None:
    """Mailpit, say, already listens there."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILS_", "SMTP_"))}
        env.update(PORT=str(free_port()), MOTO_PORT=str(free_port()), SMTP_PORT=str(port),
                   DEV_STATE_DIR=str(tmp_path / ".dev"))
        started = time.monotonic()
        stopped = subprocess.run([sys.executable, "scripts/dev.py"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=60, check=False)
        took = time.monotonic() - started
    assert (stopped.returncode, stopped.stdout, stopped.stderr) == (
        1, "", f"error: SMTP cannot listen on 127.0.0.1:{port} (Address already in use); set SMTP_PORT to another"
        " port, or to off\n",
    )
    assert took < 15, took  # the emulator and chalice local were never started (they take some 8 s)
