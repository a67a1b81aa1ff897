"""The clients and services, built on first use and kept for the life of the Lambda container.

Routes and queue consumers take them from ``services``, the one instance per
process: Lambda imports a Blueprint's event handler module directly, never
``app.py``, so nothing could hand them in. Tests call ``services.reset()``
after changing the environment.

Each service's code is imported when the service is first built, not here:
every Lambda function imports the whole app, and a cold start should pay only
for what its own function runs (the REST API never hands off a mail, hand_off
never decodes a SendGrid post, and cryptography is loaded only when a
signature key is set). tests/unit/test_cold_start.py holds it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib import tracing
from chalicelib.config import Settings, load_settings, ssm_reader
from chalicelib.delivery.queue import Queue
from chalicelib.errors import NotConfiguredError
from chalicelib.storage.boto import BOTO_CONFIG, S3_CONFIG
from chalicelib.storage.store import MailStore

if TYPE_CHECKING:
    from chalicelib.delivery.handoff import Handoff
    from chalicelib.ingress.mailgun.ingestor import MailgunIngestor
    from chalicelib.ingress.postmark.ingestor import PostmarkIngestor
    from chalicelib.ingress.relay.ingestor import RelayIngestor
    from chalicelib.ingress.sendgrid.conductor import Conductor
    from chalicelib.ingress.sendgrid.webhook import SendGridIngestor
    from chalicelib.ingress.ses.ingestor import SesIngestor
    from chalicelib.storage.content import MailContent


class Services:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._settings: Settings | None = None
        self._dynamodb: Any = None
        self._s3: Any = None
        self._store: MailStore | None = None
        self._content: MailContent | None = None
        self._queue: Queue | None = None
        self._sendgrid: SendGridIngestor | None = None
        self._ses: SesIngestor | None = None
        self._relay: RelayIngestor | None = None
        self._postmark: PostmarkIngestor | None = None
        self._mailgun: MailgunIngestor | None = None
        self._handoff: Handoff | None = None

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
            tracing.instrument()
            self._dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
        return self._dynamodb

    def s3(self) -> Any:
        if self._s3 is None:
            tracing.instrument()
            self._s3 = boto3.client("s3", config=S3_CONFIG)
        return self._s3

    def store(self) -> MailStore:
        if self._store is None:
            settings = self.settings()
            self._store = MailStore(
                self.s3(), self.dynamodb(), bucket=settings.bucket, table=settings.table,
                retention_days=settings.retention_days,
            )
        return self._store

    def content(self) -> MailContent:
        """A stored mail's bytes; each ingress that stores a request says how to make the message from it."""
        if self._content is None:
            from chalicelib.ingress.mailgun import ingestor as mailgun  # noqa: PLC0415 - see the module's docstring
            from chalicelib.ingress.postmark import ingestor as postmark  # noqa: PLC0415
            from chalicelib.ingress.sendgrid import original  # noqa: PLC0415
            from chalicelib.storage.content import MailContent  # noqa: PLC0415

            self._content = MailContent(self.store(), {
                "raw": original.message_of, "parsed": original.message_of,
                "mailgun": mailgun.message_of, "postmark": postmark.message_of,
            })
        return self._content

    def queue(self) -> Queue | None:
        """One queue for every ingress and the handoff, so that its URL is looked up once per container."""
        name = self.settings().queue
        if name and self._queue is None:
            self._queue = Queue(boto3.client("sqs", config=BOTO_CONFIG), name)
        return self._queue

    def sendgrid(self) -> SendGridIngestor:
        if self._sendgrid is None:
            from chalicelib.ingress.sendgrid.webhook import SendGridIngestor  # noqa: PLC0415

            settings = self.settings()
            verifiers: tuple[Any, ...] = ()
            if settings.verification_keys:
                from chalicelib.ingress.sendgrid.signature import SignatureVerifier  # noqa: PLC0415 - cryptography

                verifiers = tuple(
                    SignatureVerifier.from_base64(key, settings.signature_tolerance)
                    for key in settings.verification_keys
                )
            self._sendgrid = SendGridIngestor(settings, self.store(), verifiers, self.queue())
        return self._sendgrid

    def conductor(self) -> Conductor:
        """The console's compose form into the SendGrid webhook's own steps (its route checks who may)."""
        from chalicelib.ingress.sendgrid.conductor import Conductor  # noqa: PLC0415

        return Conductor(self.sendgrid())

    def ses(self) -> SesIngestor:
        if self._ses is None:
            from chalicelib.ingress.ses.ingestor import SesIngestor  # noqa: PLC0415

            self._ses = SesIngestor(self.settings().bucket, self.store(), self.queue())
        return self._ses

    def relay(self) -> RelayIngestor:
        if self._relay is None:
            from chalicelib.ingress.relay.ingestor import RelayIngestor  # noqa: PLC0415

            self._relay = RelayIngestor(self.settings(), self.store(), self.queue())
        return self._relay

    def postmark(self) -> PostmarkIngestor:
        if self._postmark is None:
            from chalicelib.ingress.postmark.ingestor import PostmarkIngestor  # noqa: PLC0415

            self._postmark = PostmarkIngestor(self.settings(), self.store(), self.queue())
        return self._postmark

    def mailgun(self) -> MailgunIngestor:
        if self._mailgun is None:
            from chalicelib.ingress.mailgun.ingestor import MailgunIngestor  # noqa: PLC0415

            self._mailgun = MailgunIngestor(self.settings(), self.store(), self.queue())
        return self._mailgun

    def handoff(self) -> Handoff:
        if self._handoff is None:
            from chalicelib import mailboxes  # noqa: PLC0415
            from chalicelib.delivery.handoff import Handoff  # noqa: PLC0415
            from chalicelib.delivery.ledger import Ledger  # noqa: PLC0415

            settings = self.settings()
            queue = self.queue()
            if queue is None:
                raise NotConfiguredError("MAILS_QUEUE is not set")
            self._handoff = Handoff(
                self.store(),
                Ledger(self.dynamodb(), settings.table),
                queue,
                mailboxes.router(self.dynamodb(), settings),
                max_attempts=settings.max_attempts,
                content=self.content(),
            )
        return self._handoff


services = Services()
