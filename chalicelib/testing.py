"""Test a mailbox the way mail reaches it: ``deliver()`` a message, and look at what its handler did.

``deliver()`` posts the message as SendGrid would, to the real webhook
(authentication, decoding, storage, the queue), takes the mail's message off
the real handoff queue and runs the real handoff (the claim, the routing
table, the handler, the ledger), against whatever AWS endpoint boto3 is
pointed at. The ``mail_stack`` pytest fixture points it at moto's server with
the local stage's table, bucket and queues, fresh for each test::

    # tests/conftest.py
    pytest_plugins = ["chalicelib.testing"]

    # tests/test_invoices.py
    def test_an_invoice_keeps_its_pdf(mail_stack):
        mail_stack.route("invoices", recipient(r"invoices@example\\.com"), invoices.receive)
        delivered = deliver("tests/fixtures/invoice.eml", "invoices@example.com")
        assert (delivered.status, delivered.mailbox) == ("delivered", "invoices")
        assert delivered.mail.attachment_bytes(1).startswith(b"%PDF")

A test harness, so it composes the app as ``app.py`` does: it is the one module
of ``chalicelib`` besides the route modules that may import Chalice (its test
client) and an ingress (SendGrid's, to post as SendGrid posts). A deployed
function never imports it.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest
from chalice.test import Client

from chalicelib.delivery.handoff import HandlerError
from chalicelib.delivery.routing import Handler, Predicate, Route, Router
from chalicelib.errors import MailServiceError
from chalicelib.ingress.sendgrid.poster import build_body
from chalicelib.model import StoredMail
from chalicelib.wiring import services

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
# How long deliver() waits for the mail's message on the handoff queue.
QUEUE_WAIT_SECONDS = 10.0


class DeliveryRefused(MailServiceError):
    """The webhook did not store the message: its answer's status and body say why."""


@dataclass(frozen=True)
class Delivered:
    """What became of one delivered message.

    ``status`` is ``delivered``, ``bounced`` (the handler raised ``Bounce``) or
    ``failed`` (the handler raised anything else: deployed, SQS would try it
    again; ``exception`` is what it raised). ``error`` is the ledger's record of
    it, as ``processing.error`` shows it.
    """

    status: str
    mailbox: str
    error: dict[str, Any] | None
    mail: StoredMail
    duplicate: bool = False
    exception: BaseException | None = field(default=None, repr=False, compare=False)


def deliver(
    eml: bytes | str | os.PathLike[str], to: str | Sequence[str], *, mode: Literal["raw", "parsed"] = "raw"
) -> Delivered:
    """Post ``eml`` through the webhook in SendGrid's ``mode`` for the envelope recipients ``to``, and hand it off.

    ``eml`` is the message's bytes, a path to it, or a ``str``: the message itself
    when it holds a line break, else a path.
    """
    if mode not in ("raw", "parsed"):
        raise ValueError(f"mode is 'raw' or 'parsed', not {mode!r}")
    recipients = [to] if isinstance(to, str) else list(to)
    body, content_type = build_body(_source(eml), raw=mode == "raw", envelope_to=recipients)
    answer = _post(body, content_type)
    mail_id, duplicate = answer["id"], answer["duplicate"]
    message = _receive(mail_id)
    if message is None and not duplicate:
        raise DeliveryRefused(f"mail {mail_id} was stored but never reached the handoff queue")
    route, exception = _hand_off(mail_id, message) if message is not None else (None, None)
    mail = StoredMail.from_document(services.store().document(mail_id), services.content())
    if route is None:  # a duplicate whose handoff ran before: the mailbox it took, by the same table
        route = services.handoff().router.route(mail).name
    processing = mail.document["processing"] or {}
    status = "failed" if exception is not None else processing.get("status", "untracked")
    return Delivered(status, route, processing.get("error"), mail, duplicate, exception)


def _source(eml: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(eml, bytes):
        return eml
    if isinstance(eml, str) and ("\n" in eml or "\r" in eml):
        return eml.encode("utf-8")
    return Path(eml).read_bytes()


def _post(body: bytes, content_type: str) -> dict[str, Any]:
    settings = services.settings()
    if settings.verification_keys:
        raise DeliveryRefused("deliver() cannot sign as SendGrid: unset SENDGRID_VERIFICATION_KEY for the test")
    if not settings.mail_credentials:
        raise DeliveryRefused("no MAIL_CREDENTIALS to post with: use the mail_stack fixture, or set them")
    key, secret = settings.mail_credentials[0]
    import app  # noqa: PLC0415  (the composition root, as Lambda imports it)

    with Client(app.app, stage_name=STAGE, project_dir=str(ROOT)) as client:
        response = client.http.post(
            f"/mails?MailKey={key}&MailSecret={secret}", body=body, headers={"Content-Type": content_type}
        )
    answer: dict[str, Any] = json.loads(response.body or b"{}")
    if response.status_code != 200:
        raise DeliveryRefused(f"the webhook answered {response.status_code}: {answer.get('error', answer)}")
    return answer


def _receive(mail_id: str) -> dict[str, Any] | None:
    """The queue's message for this mail; another mail's message is put back at once."""
    queue = services.queue()
    if queue is None:
        raise DeliveryRefused("MAILS_QUEUE is not set: no handoff to run")
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    while time.monotonic() < deadline:
        messages = _sqs().receive_message(QueueUrl=queue.url(), MaxNumberOfMessages=10, AttributeNames=["All"])
        for message in messages.get("Messages", []):
            if json.loads(message["Body"]).get("id") == mail_id:
                return dict(message)
            queue.delay(message["ReceiptHandle"], 0)
        if not messages.get("Messages"):
            return None
    return None


def _hand_off(mail_id: str, message: dict[str, Any]) -> tuple[str | None, Exception | None]:
    """The handoff as the SQS event source runs it, the message deleted once the handler is done.

    The route the attempt took, and the handler's own exception when it raised.
    """
    handoff = services.handoff()
    try:
        attempt = handoff.process(mail_id, int(message["Attributes"]["ApproximateReceiveCount"]),
                                  message["ReceiptHandle"])
    except HandlerError as exc:
        return exc.route, exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
    _sqs().delete_message(QueueUrl=handoff.queue.url(), ReceiptHandle=message["ReceiptHandle"])
    return attempt.route, None


def _sqs() -> Any:
    return boto3.client("sqs")


@dataclass
class MailStack:
    """The stack ``mail_stack`` made: the emulator's endpoint and the credentials it configured."""

    endpoint: str
    read_token: str

    def route(self, name: str, when: Predicate, handler: Handler) -> None:
        """A route ahead of the routing table's own, for this test."""
        handoff = services.handoff()
        handoff.router = Router([Route(name, when, handler), *handoff.router.routes])


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session for the fixture's own calls: each new one loads botocore's models again (~0.3 s)."""
    return boto3.session.Session()


@pytest.fixture(scope="session")
def mail_emulator() -> Iterator[str]:
    """moto's server on a free local port, for the session."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415  (a test dependency)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def mail_stack(mail_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailStack]:
    """An empty table, bucket and queues of the local stage on the emulator, and the app configured for them."""
    import requests  # noqa: PLC0415  (test dependencies)

    from scripts.create_resources import create_resources  # noqa: PLC0415

    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][STAGE]["environment_variables"]
    token = secrets.token_urlsafe(18)
    environment = {
        "AWS_ENDPOINT_URL": mail_emulator, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", **stage,
        "MAIL_CREDENTIALS": f"test:{secrets.token_urlsafe(18)}", "READ_TOKENS": token,
        "REPLY_SECRET": secrets.token_urlsafe(18),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SENDGRID_VERIFICATION_KEY", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    requests.post(f"{mail_emulator}/moto-api/reset", timeout=10).raise_for_status()
    create_resources(stage["MAILS_TABLE"], stage["MAILS_BUCKET"], _session(), queue=stage["MAILS_QUEUE"],
                     ses_queue=stage["SES_QUEUE"])
    services.reset()
    yield MailStack(mail_emulator, token)
    services.reset()
