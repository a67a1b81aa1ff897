"""What every route module shares: our errors as HTTP answers, one log line for each refusal, an ingress's metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from chalice.app import Response

from chalicelib import logs, metrics, tracing
from chalicelib.errors import MailServiceError


def error_response(exc: MailServiceError) -> Response:
    """``{"Code", "Message"}`` and the status of the error's class; a 5xx says when to retry."""
    headers: dict[str, str | list[str]] = {"Retry-After": "60"} if exc.status >= 500 else {}
    return Response(
        body={"Code": type(exc).__name__, "Message": exc.message, **exc.details},
        status_code=exc.status,
        headers=headers,
    )


def answer(route: str, action: Callable[[], Response]) -> Response:
    """Run a route; map our errors to their status, and a bug of ours to a 500 that the provider retries."""
    start = time.perf_counter()
    try:
        return action()
    except MailServiceError as exc:
        logs.line(route=route, status=exc.status, outcome=type(exc).__name__, ms=logs.elapsed_ms(start))
        return error_response(exc)
    except Exception as exc:  # no traceback text: it may quote the mail
        logs.line(route=route, status=500, outcome="unexpected", error=type(exc).__name__, ms=logs.elapsed_ms(start))
        return Response(body={"Code": "InternalServerError", "Message": "internal error"}, status_code=500)


class Stored(Protocol):
    """What an ingress's ``commit()`` answers (``chalicelib.ingress.Outcome``)."""

    @property
    def id(self) -> str: ...

    @property
    def duplicate(self) -> bool: ...

    @property
    def attachments(self) -> int: ...


def ingress_answer(route: str, size: int, ingest: Callable[[], Stored], *, ingress: str) -> Response:
    """Every ingress's answer: 200 ``{"id", "duplicate"}`` once committed, our error's status otherwise.

    Counted in the metrics under the ingress's name (``_counted()``).
    """
    start = time.perf_counter()

    def run() -> Response:
        outcome = ingest()
        logs.correlate(outcome.id)
        logs.line(
            route=route, status=200, id=outcome.id, outcome="duplicate" if outcome.duplicate else "stored",
            bytes=size, attachments=outcome.attachments, ms=logs.elapsed_ms(start),
        )
        return Response(body={"id": outcome.id, "duplicate": outcome.duplicate}, status_code=200)

    return _counted(ingress, size, answer(route, run))


def _counted(ingress: str, size: int, response: Response) -> Response:
    """The answer of an ingress's request, in the metrics under the ingress's name (``sendgrid``, ``mailgun`` …)."""
    body = response.body if isinstance(response.body, dict) else {}
    metrics.ingested(
        metrics.Ingested(
            ingress, response.status_code, duplicate=body.get("duplicate") is True,
            quarantined="quarantine" in body, cause=body.get("Code") if response.status_code >= 500 else None,
            received_bytes=size, decode_ms=tracing.elapsed(tracing.DECODE),
        )
    )
    return response
