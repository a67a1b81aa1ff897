"""Routes only: SendGrid's webhook in, the stored mail out.

Status contract of POST /mails (SendGrid retries a 5xx for 72 hours and drops a 4xx):
  200 {"id", "duplicate": false}  stored: S3 original, then the DynamoDB commit
  200 {"id", "duplicate": true}   the same mail again; nothing new stored
  400  authenticated, unreadable body; kept aside in S3, the reply says where
  401  credentials missing or wrong; nothing stored
  413  body over the configured bound
  415  not multipart/form-data; nothing stored
  503  storage unavailable or nothing configured; nothing visible, SendGrid retries
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import boto3
from chalice.app import Chalice, Request, Response, SQSEvent

from chalicelib import auth, cursor, mailboxes
from chalicelib.config import Settings, load_settings, ssm_reader
from chalicelib.errors import (
    BadRequestError,
    MailServiceError,
    NotConfiguredError,
    NotFoundError,
    PayloadTooLargeError,
    StorageUnavailableError,
)
from chalicelib.handoff import Handoff, Ledger, Queue
from chalicelib.ingest import Delivery, Ingestor, elapsed_ms
from chalicelib.ses import SesIngestor, parse_notice
from chalicelib.signature import SignatureVerifier
from chalicelib.store import BOTO_CONFIG, S3_CONFIG, MailStore, ObjectRef

app = Chalice(app_name="inbound-mail")
# Without this API Gateway hands the body over as UTF-8 text and garbles every
# other byte; chalice local and the test client never show it (tests/test_app.py).
app.api.binary_types.append("multipart/form-data")
# The commonest attachment type, so that it downloads without a detour through S3.
app.api.binary_types.append("application/pdf")
app.log.setLevel(logging.INFO)
# botocore's DEBUG lines carry request bodies, that is, mail.
for _noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

_ID = re.compile(r"^[a-z2-7]{26}$")
# Chalice wires the event source when it packages the app, before any stage
# environment exists, so this one name is read at import: deploy with
# MAILS_QUEUE set to the stage's queue (the Makefile does), the same value the
# stage's environment_variables give the running function.
HANDOFF_QUEUE = os.environ.get("MAILS_QUEUE", "inbound-mail-handoff")
SES_QUEUE = os.environ.get("SES_QUEUE", "inbound-mail-ses")
DEFAULT_PAGE = 20
INLINE_DOWNLOAD_BYTES = 4 * 1024 * 1024
MAX_PAGE = 100


class _Dependencies:
    """Built on first use and kept for the life of the Lambda container."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._settings: Settings | None = None
        self._store: MailStore | None = None
        self._ingestor: Ingestor | None = None
        self._handoff: Handoff | None = None
        self._ses: SesIngestor | None = None
        self._dynamodb: Any = None
        self._queue: Queue | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            env = os.environ
            reader = None
            if any(name.endswith("_PARAMETER") and env[name] for name in env):
                reader = ssm_reader(boto3.client("ssm", config=BOTO_CONFIG))
            self._settings = load_settings(env, reader)
        return self._settings

    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
        return self._dynamodb

    def store(self) -> MailStore:
        if self._store is None:
            settings = self.settings()
            self._store = MailStore(
                boto3.client("s3", config=S3_CONFIG), self.dynamodb(), bucket=settings.bucket, table=settings.table,
                retention_days=settings.retention_days,
            )
        return self._store

    def queue(self) -> Queue | None:
        """One queue for both ingresses and the handoff, so its URL is looked up once per container."""
        name = self.settings().queue
        if name and self._queue is None:
            self._queue = Queue(boto3.client("sqs", config=BOTO_CONFIG), name)
        return self._queue

    def ses_ingestor(self) -> SesIngestor:
        if self._ses is None:
            self._ses = SesIngestor(self.settings().bucket, self.store(), self.queue())
        return self._ses

    def handoff(self) -> Handoff:
        if self._handoff is None:
            settings = self.settings()
            store = self.store()
            queue = self.queue()
            if queue is None:
                raise NotConfiguredError("MAILS_QUEUE is not set")
            self._handoff = Handoff(
                store,
                Ledger(self.dynamodb(), settings.table),
                queue,
                mailboxes.router(self.dynamodb(), settings.table),
                max_attempts=settings.max_attempts,
            )
        return self._handoff

    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            settings = self.settings()
            verifiers = tuple(
                SignatureVerifier.from_base64(key, settings.signature_tolerance)
                for key in settings.verification_keys
            )
            self._ingestor = Ingestor(settings, self.store(), verifiers, self.queue())
        return self._ingestor


deps = _Dependencies()


_LOG_JSON = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps would build one per line


def _log(**fields: Any) -> None:
    app.log.info(_LOG_JSON.encode(fields))


def _request() -> Request:
    request = app.current_request
    assert request is not None  # Chalice sets it before calling any route
    return request


def _error(exc: MailServiceError) -> Response:
    headers: dict[str, str | list[str]] = {"Retry-After": "60"} if exc.status >= 500 else {}
    return Response(
        body={"Code": type(exc).__name__, "Message": exc.message, **exc.details},
        status_code=exc.status,
        headers=headers,
    )


def _answer(route: str, action: Callable[[], Response]) -> Response:
    """Run a route, map our errors to their status, and log one line without content."""
    start = time.perf_counter()
    try:
        response = action()
    except MailServiceError as exc:
        response = _error(exc)
        _log(route=route, status=exc.status, outcome=type(exc).__name__, ms=elapsed_ms(start))
        return response
    except Exception as exc:  # a bug of ours: 500 so that SendGrid retries, and no traceback text
        _log(route=route, status=500, outcome="unexpected", error=type(exc).__name__, ms=elapsed_ms(start))
        return Response(
            body={"Code": "InternalServerError", "Message": "internal error"}, status_code=500
        )
    return response


@app.route("/mails", methods=["POST"], content_types=["multipart/form-data"])
def receive_mail() -> Response:
    request = _request()
    body = request.raw_body
    start = time.perf_counter()

    def ingest() -> Response:
        outcome = deps.ingestor().ingest(
            Delivery(
                body=body if isinstance(body, bytes) else body.encode("utf-8"),
                content_type=request.headers.get("content-type"),
                query=request.query_params or {},
                headers=request.headers,
            )
        )
        _log(
            route="POST /mails", status=200, id=outcome.id,
            outcome="duplicate" if outcome.duplicate else "stored",
            bytes=len(body), attachments=outcome.attachments, ms=elapsed_ms(start),
        )
        return Response(body={"id": outcome.id, "duplicate": outcome.duplicate}, status_code=200)

    return _answer("POST /mails", ingest)


def _authorize_read() -> MailStore:
    auth.check_bearer(deps.settings().read_tokens, _request().headers.get("authorization"))
    return deps.store()


def _checked_id(mail_id: str) -> str:
    if not _ID.match(mail_id):
        raise NotFoundError("no mail with that id")
    return mail_id


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


@app.route("/mails", methods=["GET"])
def list_mails() -> Response:
    def read() -> Response:
        store = _authorize_read()
        query: dict[str, str] = dict(_request().query_params or {})
        mailbox = query.get("to", "").strip().lower() or None
        limit = _limit(query.get("limit"))
        secret = deps.settings().cursor_secret()
        box = f"to#{mailbox}" if mailbox else "all"
        after = cursor.decode(secret, box, query["cursor"]) if query.get("cursor") else None
        page = store.list_mails(mailbox, limit, after)
        next_cursor = cursor.encode(secret, page.box, page.last) if page.last else None
        return Response(body={"mails": page.summaries, "cursor": next_cursor}, status_code=200)

    return _answer("GET /mails", read)


def _download(store: MailStore, ref: ObjectRef) -> Response:
    """The bytes themselves when Chalice and API Gateway can carry them, else a short-lived S3 link.

    Lambda answers at most 6 MB (4.5 MB of bytes once base64), and API Gateway
    passes bytes untouched only for the binary types declared on the API.
    """
    content_type = ref.content_type or "application/octet-stream"
    if ref.size > INLINE_DOWNLOAD_BYTES or content_type.split(";")[0].strip().lower() not in app.api.binary_types:
        return Response(body="", status_code=302, headers={"Location": store.link(ref)})
    headers: dict[str, str | list[str]] = {"Content-Type": content_type}
    if ref.disposition:
        headers["Content-Disposition"] = ref.disposition
    return Response(body=store.read(ref), status_code=200, headers=headers)


@app.route("/mails/{mail_id}", methods=["GET"])
def get_mail(mail_id: str) -> Response:
    def read() -> Response:
        store = _authorize_read()
        return Response(body=store.document(_checked_id(mail_id)), status_code=200)

    return _answer("GET /mails/{id}", read)


@app.route("/mails/{mail_id}/raw", methods=["GET"])
def get_raw(mail_id: str) -> Response:
    def read() -> Response:
        store = _authorize_read()
        return _download(store, store.raw(_checked_id(mail_id)))

    return _answer("GET /mails/{id}/raw", read)


@app.route("/mails/{mail_id}/attachments/{index}", methods=["GET"])
def get_attachment(mail_id: str, index: str) -> Response:
    def read() -> Response:
        store = _authorize_read()
        if not index.isdigit() or len(index) > 6:
            raise NotFoundError("no attachment with that index")
        return _download(store, store.attachment(_checked_id(mail_id), int(index)))

    return _answer("GET /mails/{id}/attachments/{index}", read)


@app.route("/mails/{mail_id}/retry", methods=["POST"])
def retry_mail(mail_id: str) -> Response:
    def retry() -> Response:
        _authorize_read()
        deps.handoff().retry(_checked_id(mail_id))
        return Response(body={"id": mail_id, "status": "pending"}, status_code=202)

    return _answer("POST /mails/{id}/retry", retry)


class HandlerFailed(Exception):
    """What Lambda's log shows for a failed attempt: the error's class and route, never its message."""


@app.on_sqs_message(queue=HANDOFF_QUEUE, batch_size=1)
def hand_off(event: SQSEvent) -> None:
    for record in event:
        start = time.perf_counter()
        attributes = record.to_dict().get("attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        try:
            mail_id = json.loads(record.body)["id"]
        except (ValueError, KeyError, TypeError):
            _log(route="handoff", outcome="unreadable message", ms=elapsed_ms(start))
            continue  # no retry can make it readable
        try:
            attempt = deps.handoff().process(mail_id, receive_count, record.receipt_handle)
        except Exception as exc:
            _log(route="handoff", id=mail_id, outcome="retry", error=type(exc).__name__,
                 receive_count=receive_count, ms=elapsed_ms(start))
            # Raising hands the message back to SQS; the message is ours to
            # write, the handler's exception text is not (it may quote the mail).
            raise HandlerFailed(f"{type(exc).__name__} handling mail {mail_id}") from None
        _log(route="handoff", id=mail_id, outcome=attempt.status, mailbox=attempt.route,
             receive_count=receive_count, ms=elapsed_ms(start))


@app.on_sqs_message(queue=SES_QUEUE, batch_size=1)
def receive_ses(event: SQSEvent) -> None:
    """SES's second ingress: each message is one notification of a mail SES wrote to the bucket."""
    for record in event:
        start = time.perf_counter()
        try:
            outcome = deps.ses_ingestor().ingest(parse_notice(record.body))
        except (BadRequestError, NotFoundError, PayloadTooLargeError) as exc:
            # No retry can fix these: the object is kept aside (when there is
            # one) and the message is done, rather than retried into the dead letters.
            _log(route="ses", status=exc.status, outcome=type(exc).__name__,
                 quarantine=exc.details.get("quarantine"), ms=elapsed_ms(start))
            continue
        except MailServiceError as exc:
            _log(route="ses", status=exc.status, outcome=type(exc).__name__, ms=elapsed_ms(start))
            raise StorageUnavailableError(exc.message) from None
        _log(route="ses", status=200, id=outcome.id, outcome="duplicate" if outcome.duplicate else "stored",
             attachments=outcome.attachments, ms=elapsed_ms(start))
