"""A proxy in front of the emulator that holds every request a fixed time, as the network to AWS would; a call log.

AWS is 20-30 ms away from Lambda; moto on loopback is well under one. To see
what a delivery's round trips cost, every request waits ``delay`` seconds (or
as long as ``delay(service, operation)`` says) before it is forwarded, and the
proxy notes each call's service, operation, start and end.
``sequential_rounds`` reads that log: the length of the longest chain of calls
each of which started only after the previous one ended, that is how many
round trips a caller waited for one after another, however many ran at once
beside them.

Used by ``bench/run.py`` (the 10-attachment mail against the plain one, with
the proxy in a process of its own: ``latency_proxy_process``) and by the test
that pins a delivery's sequential round trips
(tests/contract/test_round_trips.py).
"""

from __future__ import annotations

import http.client
import multiprocessing
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

# The service a SigV4 request is signed for: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/,\s]+)/aws4_request")
# Hop-by-hop headers, Host (the upstream connection sets its own) and Expect (answered here already).
_NOT_FORWARDED = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "expect"})


@dataclass(frozen=True)
class Call:
    service: str
    operation: str  # X-Amz-Target's action, or the HTTP method and path for S3
    started: float
    ended: float


# (service, operation) -> seconds to hold that call; or one number for every call.
Delay = float | Callable[[str, str], float]


@dataclass
class LatencyProxy:
    upstream: str
    delay: Delay
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        scope = _SCOPE.search(handler.headers.get("Authorization") or "")
        service = scope.group(1) if scope else "?"
        target = (handler.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        operation = target or f"{handler.command} {handler.path.split('?', 1)[0]}"
        time.sleep(self.delay(service, operation) if callable(self.delay) else self.delay)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _NOT_FORWARDED}
        status, answer, answer_headers = self._forward(handler.command, handler.path, body, headers)
        # Noted before the answer goes out, so that whoever reads the log after the answer finds the call.
        with self._lock:
            self.calls.append(Call(service, operation, started, time.perf_counter()))
        handler.send_response(status)
        for name, value in answer_headers:
            if name.lower() not in _NOT_FORWARDED and name.lower() != "content-length":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer)

    def _forward(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """One kept-alive connection to the emulator per proxy thread; made again if the emulator closed it."""
        for attempt in (1, 2):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            if connection is None:
                upstream = urlsplit(self.upstream)
                connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
                self._local.connection = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read(), response.getheaders()
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def sequential_rounds(calls: list[Call]) -> int:
    """The longest chain of calls in which each started after the one before it ended."""
    depth: list[tuple[Call, int]] = []
    for call in sorted(calls, key=lambda c: c.started):
        before = [d for c, d in depth if c.ended <= call.started]
        depth.append((call, 1 + max(before, default=0)))
    return max((d for _, d in depth), default=0)


@contextmanager
def latency_proxy(upstream: str, delay: Delay) -> Iterator[LatencyProxy]:
    """The proxy on a free loopback port, for as long as the block runs."""
    proxy = LatencyProxy(upstream, delay)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            proxy.handle(self)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        def log_message(self, format: str, *args: Any) -> None:  # one line per request otherwise
            pass

    class Server(ThreadingHTTPServer):
        # socketserver's default backlog is 5: a delivery's dozen puts connecting at once on a busy
        # machine overflowed it, and a refused connect is tried again a second later, after the others.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class ProxyProcess:
    """``latency_proxy``'s proxy in a process of its own, asked for its call log over a pipe."""

    url: str
    _pipe: Connection

    def clear(self) -> None:
        self._pipe.send("clear")
        self._pipe.recv()

    @property
    def calls(self) -> list[Call]:
        self._pipe.send("calls")
        calls: list[Call] = self._pipe.recv()
        return calls


def _serve(upstream: str, delay: float, pipe: Connection) -> None:
    with latency_proxy(upstream, delay) as proxy:
        pipe.send(proxy.url)
        while (command := pipe.recv()) != "stop":
            if command == "clear":
                proxy.clear()
                pipe.send(None)
            else:
                with proxy._lock:
                    pipe.send(list(proxy.calls))


@contextmanager
def latency_proxy_process(upstream: str, delay: float) -> Iterator[ProxyProcess]:
    """The proxy in a child process: its threads parse, hold and forward every request under a GIL that is not
    the measured app's, as the network's own work is done elsewhere (in one process, the 10-attachment mail's
    eleven puts and the proxy's handling of them took turns on one GIL)."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(upstream, delay, theirs), daemon=True)
    process.start()
    try:
        yield ProxyProcess(ours.recv(), ours)
    finally:
        ours.send("stop")
        process.join(timeout=10)
