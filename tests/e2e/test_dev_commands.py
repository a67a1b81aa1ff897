"""scripts/mails.py (the `mails` command) and scripts/send_mail.py as run from a shell, against a stand-in server.

They find a running `make dev` on their own, and say in one line, without a
traceback, what went wrong when nothing answers or the file is not there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts import dev_state
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow

EML = b"From: a@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody \xff\r\n"
DOWN = "nothing answers at http://127.0.0.1:{port} (is the service, or make dev, running?)\n"


@dataclass
class Seen:
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Authorization)


@pytest.fixture
def service() -> Iterator[tuple[str, Seen]]:
    """A stand-in for the service: the mail list, one message, and the webhook."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bytes, content_type: str) -> None:
            seen.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.endswith("/eml"):
                self._answer(EML, "message/rfc822")
            else:
                self._answer(json.dumps({"mails": [{"id": "abc"}], "cursor": None}).encode(), "application/json")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(b'{"id":"abc","duplicate":false}', "application/json")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".dev"


def run(command: list[str], state: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MAILS_URL", "MAILS_TOKEN")}
    return subprocess.run(
        command, cwd=ROOT, env={**clean, dev_state.STATE_DIR: str(state), **env}, capture_output=True, timeout=60,
        check=False,
    )


MAILS = [sys.executable, "scripts/mails.py"]
SEND = [sys.executable, "scripts/send_mail.py"]


def test_mails_eml_writes_the_message_as_it_came(service: tuple[str, Seen], state: Path, tmp_path: Path) -> None:
    url, seen = service
    shown = run([*MAILS, "--url", url, "--token", "t0ken", "eml", "abc"], state)
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, EML, b"")
    saved = run([*MAILS, "--url", url, "--token", "t0ken", "eml", "abc", "-o", str(tmp_path / "abc.eml")], state)
    assert (saved.returncode, saved.stdout, saved.stderr) == (0, b"", b"")
    assert (tmp_path / "abc.eml").read_bytes() == EML
    assert seen.requests == [("GET", "/mails/abc/eml", "Bearer t0ken")] * 2


def test_mails_finds_the_running_make_dev_and_what_it_is_told_wins(service: tuple[str, Seen], state: Path) -> None:
    url, seen = service
    dev_state.write_server(state, url)
    dev_state.write_private(state / dev_state.CREDENTIALS, {
        "ingest_key": "sendgrid", "ingest_secret": "s3cret", "read_token": "dev-t0ken", "reply_secret": "r",
    })
    found = run([*MAILS, "list", "--json"], state)
    assert (found.returncode, found.stdout, found.stderr) == (0, b'{"id": "abc"}\n', b"")
    run([*MAILS, "list"], state, MAILS_TOKEN="env-t0ken")
    run([*MAILS, "--token", "flag-t0ken", "list"], state, MAILS_TOKEN="env-t0ken")
    assert [auth for _, _, auth in seen.requests] == ["Bearer dev-t0ken", "Bearer env-t0ken", "Bearer flag-t0ken"]


def test_send_mail_posts_to_the_running_make_dev_with_its_credentials(service: tuple[str, Seen], state: Path) -> None:
    url, seen = service
    dev_state.write_server(state, url)
    dev_state.write_private(state / dev_state.CREDENTIALS, {
        "ingest_key": "sendgrid", "ingest_secret": "s3cret", "read_token": "t", "reply_secret": "r",
    })
    sent = run([*SEND, "scripts/sample.eml"], state)
    assert (sent.returncode, sent.stdout, sent.stderr) == (0, b'200 {"id":"abc","duplicate":false}\n', b"")
    basic = "Basic " + base64.b64encode(b"sendgrid:s3cret").decode()
    assert seen.requests == [("POST", "/mails", basic)]


@pytest.mark.parametrize("mails", [MAILS, [str(Path(sys.executable).parent / "mails")]], ids=["script", "command"])
def test_mails_says_in_one_line_that_nothing_answers(mails: list[str], state: Path) -> None:
    port = free_port()
    down = run([*mails, "--url", f"http://127.0.0.1:{port}", "--token", "t0ken", "list"], state)
    assert (down.returncode, down.stdout, down.stderr.decode()) == (1, b"", "mails: " + DOWN.format(port=port))


def test_mails_says_in_one_line_that_make_dev_is_gone(state: Path) -> None:
    """A make dev killed outright leaves its URL behind."""
    port = free_port()
    dev_state.write_server(state, f"http://127.0.0.1:{port}")
    dev_state.write_private(state / dev_state.CREDENTIALS, {
        "ingest_key": "sendgrid", "ingest_secret": "s", "read_token": "t", "reply_secret": "r",
    })
    down = run([*MAILS, "show", "abc"], state)
    assert (down.returncode, down.stdout, down.stderr.decode()) == (1, b"", "mails: " + DOWN.format(port=port))


def test_send_mail_says_in_one_line_that_nothing_answers_and_shows_no_secret(state: Path) -> None:
    port = free_port()
    down = run([*SEND, "scripts/sample.eml", "--url", f"http://sendgrid:s3cret@127.0.0.1:{port}/mails"], state)
    assert (down.returncode, down.stdout, down.stderr.decode()) == (1, b"", "send_mail: " + DOWN.format(port=port))


def test_send_mail_says_in_one_line_that_the_file_is_not_there(state: Path) -> None:
    missing = run([*SEND, "no-such.eml", "--url", "http://127.0.0.1:9/mails"], state)
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        1, b"", b"send_mail: No such file or directory: no-such.eml\n"
    )
