"""`make dev` as a developer lives with it: a changed routing table, a broken handler, a killed and restarted stack.

Each test runs scripts/dev.py in a copy of the project, whose routing table it
changes: no file of the checkout is written. The tests follow one another (one
stack for the first three, killed and started again by the last), as a
developer's session does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.send_mail import build_body
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

COPIED = ("app.py", "chalicelib", ".chalice", "scripts", "infra")
NOT_COPIED = shutil.ignore_patterns("__pycache__", "deployments", "venv")
RESTARTED = r"^Restarted the queue consumers: the app's code changed\.$"
PROBE = '''"""A mailbox the end-to-end test adds while make dev runs."""

from chalicelib.model import StoredMail


def receive(mail: StoredMail) -> None:
    if "fail" in (mail.subject or ""):
        raise RuntimeError("probe broke on purpose")
'''
PROBE_ROUTE = '''

# Added by tests/e2e/test_dev_loop.py: mail whose subject says "probe" goes to the probe mailbox first.
from chalicelib.delivery.routing import Route as _Route, Router as _Router, subject as _subject
from chalicelib.mailboxes import e2e_probe as _probe

_shipped_router = router


def router(*args, **kwargs):
    return _Router([_Route("probe", _subject("probe"), _probe.receive), *_shipped_router(*args, **kwargs).routes])
'''


class Dev:
    """scripts/dev.py of the copy, its console read as it comes."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py"], cwd=project, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines: list[str] = []
        self._closed = False
        self._arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(r"^Ctrl-C stops everything\.$", timeout=120)
        text = "\n".join(self.lines)
        url, token = re.search(r"Webhook URL:\s+(\S+)", text), re.search(r"Read token:\s+(\S+)", text)
        assert url and token, text
        self.webhook, self.token = url.group(1), token.group(1)
        self.base = f"http://127.0.0.1:{env['PORT']}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._arrived:
                self.lines.append(line.rstrip("\n"))
                self._arrived.notify_all()
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()

    def wait_for(self, pattern: str, start: int = 0, timeout: float = 60) -> re.Match[str]:
        """The first console line from ``start`` on that matches."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for line in self.lines[start:]:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise AssertionError(f"no line matched {pattern!r}; the console:\n" + "\n".join(self.lines))
                self._arrived.wait(left)

    def post(self, message: bytes) -> str:
        """The mail's id; posted again while chalice local restarts for a change (the same mail has the same id)."""
        body, content_type = build_body(message)
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.post(self.webhook, data=body, headers={"Content-Type": content_type}, timeout=30)
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            assert response.status_code == 200, response.text
            mail_id: str = response.json()["id"]
            return mail_id

    def read(self, mail_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/mails/{mail_id}", headers={"Authorization": f"Bearer {self.token}"},
                                timeout=30)
        assert response.status_code == 200, response.text
        mail: dict[str, Any] = response.json()
        return mail

    def kill(self) -> None:
        """SIGKILL to scripts/dev.py alone: its children die with it (scripts/processes.py)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def eml(number: int, subject: str) -> bytes:
    return (
        f"From: Customer <c{number}@example.org>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <dev-loop-{number}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    ).encode()


def port_open(port: str) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def line_of(path: Path, statement: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == statement]
    return number


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, root / name, ignore=NOT_COPIED)
        else:
            shutil.copy2(ROOT / name, root / name)
    return root


@pytest.fixture(scope="module")
def dev(project: Path) -> Iterator[Dev]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAILS_"))}
    # One attempt only, so that the first failure is the last (the backoff before a second is 30 s).
    # SMTP off: the banner says so (tests/e2e/test_smtp.py sends to it).
    env.update(PORT=str(free_port()), MOTO_PORT=str(free_port()), SMTP_PORT="off", DEV_STATE_DIR=str(project / ".dev"),
               MAX_ATTEMPTS="1")
    stack = Dev(project, env)
    yield stack
    stack.kill()
    if os.environ.get("SHOW_DEV_CONSOLE"):
        print("\n".join(stack.lines))


@pytest.fixture(scope="module")
def probed(project: Path, dev: Dev) -> str:
    """The probe route, added while the stack runs; the id of a mail handed off before."""
    before = dev.post(eml(1, "before the change"))
    dev.wait_for(rf"^{before} → inbox: delivered$")
    mark = len(dev.lines)
    mailboxes = project / "chalicelib" / "mailboxes"
    (mailboxes / "e2e_probe.py.new").write_text(PROBE)
    (mailboxes / "__init__.py.new").write_text((mailboxes / "__init__.py").read_text() + PROBE_ROUTE)
    # Both in place at once, as a checkout would put them: one restart sees both.
    os.replace(mailboxes / "e2e_probe.py.new", mailboxes / "e2e_probe.py")
    os.replace(mailboxes / "__init__.py.new", mailboxes / "__init__.py")
    dev.wait_for(RESTARTED, start=mark)
    return before


def test_a_changed_routing_table_reaches_the_queue_consumers_without_a_restart(dev: Dev, probed: str) -> None:
    after = dev.post(eml(2, "probe after the change"))
    dev.wait_for(rf"^{after} → probe: delivered$")
    assert dev.read(after)["processing"] == {"status": "delivered", "attempts": 1, "error": None}
    assert dev.read(probed)["processing"] == {"status": "delivered", "attempts": 1, "error": None}


def test_a_failing_handler_shows_its_traceback_and_its_last_attempt_says_failed(
    project: Path, dev: Dev, probed: str
) -> None:
    mark = len(dev.lines)
    failing = dev.post(eml(3, "probe fail"))
    dev.wait_for(rf"^{failing} → probe: failed \(RuntimeError\), attempt 1 of 1$", start=mark)
    console = dev.lines[mark:]
    start = console.index("inbound-mail - ERROR - RuntimeError's traceback:")
    assert console[start + 1] == "Traceback (most recent call last):"
    probe_file = project / "chalicelib" / "mailboxes" / "e2e_probe.py"
    assert console[start + 2:].index(f'  File "{probe_file}", line 8, in receive') < console[start + 2:].index(
        "RuntimeError: probe broke on purpose"
    )
    (logged,) = [json.loads(line.removeprefix("inbound-mail - INFO - ")) for line in console
                 if '"outcome":"failed"' in line and '"mailbox":"probe"' in line]
    handler_call = line_of(project / "chalicelib" / "delivery" / "handoff.py", "route.handler(mail)")
    assert {k: v for k, v in logged.items() if k != "ms"} == {
        "route": "handoff", "id": failing, "outcome": "failed", "mailbox": "probe", "error": "RuntimeError",
        "receive_count": 1,
        "frames": [
            f"chalicelib/delivery/handoff.py:{handler_call} in process",
            "chalicelib/mailboxes/e2e_probe.py:8 in receive",
        ],
    }
    assert dev.read(failing)["processing"] == {
        "status": "failed", "attempts": 1,
        "error": {"class": "RuntimeError", "message": "probe broke on purpose", "route": "probe"},
    }
    # The operator's way to it: `mails list --status failed`, the command as a person runs it.
    listed = subprocess.run(
        [sys.executable, "scripts/mails.py", "list", "--status", "failed", "--json"], cwd=project, env=dev.env,
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [failing]


def test_mail_queues_and_credentials_outlive_a_killed_make_dev(project: Path, dev: Dev, probed: str) -> None:
    ids = sorted(json.loads(line)["id"] for line in subprocess.run(
        [sys.executable, "scripts/mails.py", "list", "--json"], cwd=project, env=dev.env,
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines())
    assert len(ids) == 3
    dev.kill()
    deadline = time.monotonic() + 20
    while (port_open(dev.env["PORT"]) or port_open(dev.env["MOTO_PORT"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_open(dev.env["PORT"]) and not port_open(dev.env["MOTO_PORT"])

    again = Dev(project, dev.env)
    try:
        assert (again.webhook, again.token) == (dev.webhook, dev.token)
        assert "SMTP:                  off (SMTP_PORT=off)" in again.lines
        again.wait_for(r"^Emulator: \d+ changes replayed from .*aws\.jsonl$")
        mail = again.read(probed)
        assert (mail["subject"], mail["processing"]) == (
            "before the change", {"status": "delivered", "attempts": 1, "error": None}
        )
        # The read API's URL and token, found by scripts/mails.py itself: none given.
        listed = subprocess.run(
            [sys.executable, "scripts/mails.py", "list", "--json"], cwd=project, env=again.env,
            capture_output=True, text=True, check=True, timeout=60,
        )
        assert sorted(json.loads(line)["id"] for line in listed.stdout.splitlines()) == ids
        assert not [line for line in again.lines if "left unfinished" in line]
    finally:
        again.kill()
