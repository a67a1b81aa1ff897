"""moto's server as `make dev` runs it: DynamoDB, S3 and SQS, whose DynamoDB and S3 data outlive a restart.

Each request that changed DynamoDB or S3 and succeeded is appended to a journal,
one JSON line written before its answer goes out, and the journal is replayed
in order, in process, before the server listens again. A line is on disk once
its answer is, so a SIGKILL loses no answered request (an unfinished last line
is dropped). A ``POST /moto-api/reset`` empties the journal with the state.

SQS is not journaled: a replayed receive or delete would not find the message
it named (receipt handles are new each time). `make dev` re-queues the mail
left pending instead (scripts/dev.py).

Usage: python scripts/emulator.py --host 127.0.0.1 --port 5055 --journal .dev/aws.jsonl
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import get_input_stream

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

# The service a SigV4 request is signed for: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/,\s]+)/aws4_request")
_DYNAMODB_READS = ("Get", "BatchGet", "TransactGet", "Query", "Scan", "Describe", "List")
_S3_WRITES = frozenset({"PUT", "POST", "DELETE"})
# Served one at a time (Journaled): their backends are plain dicts. SQS is not, its receives wait for messages.
_SERIALIZED = frozenset({"dynamodb", "s3"})
# moto keeps the spelling of headers with underscores (S3 metadata) in this environ entry.
_PRESERVED_HEADERS = "moto.preserved_header_names"


def signed_for(environ: dict[str, Any]) -> str | None:
    """The service a request is signed for (s3, dynamodb, sqs …), None when it is not signed."""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return scope.group(1) if scope else None


def changes_state(environ: dict[str, Any]) -> bool:
    """A request that may change DynamoDB's or S3's data, by the service it is signed for and its action."""
    service = signed_for(environ)
    if service == "s3":
        return environ.get("REQUEST_METHOD") in _S3_WRITES
    if service == "dynamodb":
        action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        return bool(action) and not action.startswith(_DYNAMODB_READS)
    return False


def _recorded(environ: dict[str, Any], body: bytes) -> bytes:
    kept = {key: value for key, value in environ.items() if isinstance(value, str)}
    if isinstance(environ.get(_PRESERVED_HEADERS), dict):
        kept[_PRESERVED_HEADERS] = environ[_PRESERVED_HEADERS]
    kept.pop("HTTP_TRANSFER_ENCODING", None)  # the body is kept whole, its length set on replay
    entry = {"environ": kept, "body": base64.b64encode(body).decode("ascii")}
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def _replayed_environ(entry: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64decode(entry["body"])
    environ: dict[str, Any] = EnvironBuilder().get_environ()
    environ.update(entry["environ"])
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    return environ


class Journaled:
    """The WSGI app, with each successful change to DynamoDB or S3 appended to the journal."""

    def __init__(self, app: WsgiApp, path: Path) -> None:
        self._app = app
        self._path = path
        # One DynamoDB or S3 request at a time: the journal's order is the order the changes were made in,
        # and moto's backends are not thread-safe (a TransactWriteItems deep-copies the table for its
        # rollback while another request adds to it: "dictionary changed size during iteration", a 500).
        self._lock = threading.Lock()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/moto-api/reset":
            with self._lock:
                self._path.write_bytes(b"")
                return self._app(environ, start_response)
        if not changes_state(environ):
            if signed_for(environ) not in _SERIALIZED:
                return self._app(environ, start_response)
            with self._lock:
                return self._app(environ, start_response)
        body = get_input_stream(environ).read()
        environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        environ.pop("wsgi.input_terminated", None)
        statuses: list[int] = []
        with self._lock:
            answer = self._app(environ, _noting(statuses, start_response))
            if statuses and statuses[0] < 400:
                self._append(_recorded(environ, body))
        return answer

    def _append(self, line: bytes) -> None:
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def replay(self) -> tuple[int, int]:
        """Every journaled change again, in order; (replayed, refused). An unfinished last line is cut off."""
        replayed = refused = 0
        if not self._path.exists():
            return replayed, refused
        with self._path.open("rb+") as journal:
            while line := journal.readline():
                try:
                    entry = json.loads(line)
                except ValueError:
                    journal.truncate(journal.tell() - len(line))  # the line a kill cut short
                    break
                replayed += 1
                refused += not self._run(entry)
        return replayed, refused

    def _run(self, entry: dict[str, Any]) -> bool:
        statuses: list[int] = []
        answer = self._app(_replayed_environ(entry), _noting(statuses, lambda *args: lambda data: None))
        for _ in answer:
            pass
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        return bool(statuses) and statuses[0] < 400


def _noting(statuses: list[int], start_response: Any) -> Any:
    """``start_response``, noting the answer's status code in ``statuses``."""

    def start(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.append(int(status.split(" ", 1)[0]))
        return start_response(status, headers, exc_info)

    return start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per request otherwise

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    app = Journaled(DomainDispatcherApplication(create_backend_app), args.journal)
    replayed, refused = app.replay()
    if replayed:
        print(f"Emulator: {replayed} changes replayed from {args.journal}"
              + (f", {refused} of them refused" if refused else ""), flush=True)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
