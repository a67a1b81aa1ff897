"""Hand every stored mail to the code that handles it, at least once, and record what happened.

After the commit the mail is ``pending`` and its id goes onto an SQS queue. A
consumer claims it (``processing``, with a lease), runs the handler its route
names, and records the end: ``delivered``, ``bounced`` (the handler refused it
for good) or, after the last attempt, ``failed`` with the error's class and
message. The claim is a conditional write, so a second message for the same
mail (a redelivery re-queued it, or SQS delivered twice) never runs a handler
that already succeeded; an expired lease lets a crashed attempt be taken over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.clock import utc_now
from chalicelib.errors import ConflictError, MailServiceError, NotFoundError, StorageUnavailableError
from chalicelib.mail import StoredMail
from chalicelib.routing import Bounce, Router
from chalicelib.store import MailStore

log = logging.getLogger(__name__)

PENDING, PROCESSING, DELIVERED, BOUNCED, FAILED = "pending", "processing", "delivered", "bounced", "failed"
# A handler that has not finished in this time is taken to have crashed; it is
# above the consumer Lambda's timeout, so a live attempt is never taken over.
LEASE = timedelta(minutes=5)
ERROR_MESSAGE_CHARS = 500


class Busy(MailServiceError):
    """Another consumer holds the mail's lease; SQS shows the message again later."""


class AttemptsExhausted(MailServiceError):
    """Every attempt was made: the message goes on to the dead-letter queue."""


@dataclass(frozen=True)
class Attempt:
    id: str
    status: str
    route: str | None = None


def _error(exc: BaseException, route: str | None) -> str:
    # The class and message only: a traceback would carry mail content into the item.
    return json.dumps(
        {"class": type(exc).__name__, "message": str(exc)[:ERROR_MESSAGE_CHARS], "route": route},
        ensure_ascii=False,
    )


class Queue:
    """The SQS queue the ids travel on; its URL is looked up once."""

    def __init__(self, sqs: Any, name: str) -> None:
        self._sqs = sqs
        self._name = name
        self._url: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def url(self) -> str:
        if self._url is None:
            try:
                self._url = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailableError(f"SQS queue {self._name} not reachable") from exc
        assert self._url is not None
        return self._url

    def send(self, mail_id: str) -> None:
        try:
            self._sqs.send_message(QueueUrl=self.url(), MessageBody=json.dumps({"id": mail_id}))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailableError("SQS SendMessage failed") from exc

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Exponential backoff: SQS shows a failed message again only after this long."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url(), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (BotoCoreError, ClientError) as exc:
            # The queue's own visibility timeout still brings the message back.
            log.warning("could not delay a failed message (%s)", type(exc).__name__)


def backoff_seconds(attempt: int) -> int:
    return int(min(30 * 2 ** max(attempt - 1, 0), 900))


class Ledger:
    """The processing state on the mail's own DynamoDB item."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def _key(self, mail_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"mail#{mail_id}"}, "sk": {"S": "mail"}}

    def _update(self, mail_id: str, **request: Any) -> bool:
        """One conditional update; False when its condition did not hold."""
        try:
            self._dynamodb.update_item(TableName=self._table, Key=self._key(mail_id), **request)
        except ClientError as exc:
            if exc.response["Error"].get("Code") == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailableError("DynamoDB UpdateItem failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailableError("DynamoDB UpdateItem failed") from exc
        return True

    def status(self, mail_id: str) -> str | None:
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key=self._key(mail_id), ProjectionExpression="#s",
                ExpressionAttributeNames={"#s": "status"}, ConsistentRead=True,
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailableError("DynamoDB GetItem failed") from exc
        if item is None:
            raise NotFoundError("no mail with that id")
        return item["status"]["S"] if "status" in item else None

    def claim(self, mail_id: str, now: datetime) -> bool:
        return self._update(
            mail_id,
            UpdateExpression="SET #s = :processing, lease_until = :until ADD attempts :one",
            ConditionExpression="#s = :pending OR (#s = :processing AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":processing": {"S": PROCESSING}, ":pending": {"S": PENDING}, ":one": {"N": "1"},
                ":until": {"S": (now + LEASE).isoformat()}, ":now": {"S": now.isoformat()},
            },
        )

    def finish(self, mail_id: str, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = {":status": {"S": status}, ":processing": {"S": PROCESSING}}
        expression = "SET #s = :status REMOVE lease_until"
        if error is not None:
            expression = "SET #s = :status, last_error = :error REMOVE lease_until"
            values[":error"] = {"S": error}
        self._update(
            mail_id, UpdateExpression=expression, ConditionExpression="#s = :processing",
            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues=values,
        )

    def exhaust(self, mail_id: str, now: datetime) -> None:
        """Failed, if the last attempt left the mail pending or died holding its lease; else as it is."""
        error = json.dumps(
            {"class": "AttemptsExhausted", "message": "the last attempt ended without an answer", "route": None}
        )
        self._update(
            mail_id,
            UpdateExpression="SET #s = :failed, last_error = :error REMOVE lease_until",
            ConditionExpression="#s = :pending OR (#s = :processing AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":failed": {"S": FAILED}, ":pending": {"S": PENDING}, ":processing": {"S": PROCESSING},
                ":error": {"S": error}, ":now": {"S": now.isoformat()},
            },
        )

    def requeue(self, mail_id: str, now: datetime) -> bool:
        """A failed or bounced mail back to pending, for another round of attempts.

        So is one whose last attempt died with its lease (a crash or a Lambda
        timeout leaves it ``processing`` while its message goes to the dead letters).
        """
        return self._update(
            mail_id,
            UpdateExpression="SET #s = :pending, attempts = :zero REMOVE lease_until",
            ConditionExpression="#s IN (:failed, :bounced) OR (#s = :processing AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":pending": {"S": PENDING}, ":zero": {"N": "0"}, ":processing": {"S": PROCESSING},
                ":failed": {"S": FAILED}, ":bounced": {"S": BOUNCED}, ":now": {"S": now.isoformat()},
            },
        )


@dataclass
class Handoff:
    store: MailStore
    ledger: Ledger
    queue: Queue
    router: Router
    max_attempts: int = 5
    clock: Callable[[], datetime] = utc_now

    def process(self, mail_id: str, receive_count: int, receipt_handle: str | None = None) -> Attempt:
        """Run the mail's handler once; an exception leaves the message for SQS to show again."""
        if receive_count > self.max_attempts:
            # The queue shows a message once more than there are attempts (its
            # maxReceiveCount is one higher) so that a last attempt that died
            # without an answer — a crash, a Lambda timeout — is recorded too.
            self.ledger.exhaust(mail_id, self.clock())
            if receipt_handle is not None:
                self.queue.delay(receipt_handle, 0)
            raise AttemptsExhausted(f"no attempt left for mail {mail_id}")
        if not self.ledger.claim(mail_id, self.clock()):
            status = self.ledger.status(mail_id)
            if status == PROCESSING:
                raise Busy("another consumer is handling this mail")
            # delivered, bounced or failed already: this message is spent.
            return Attempt(mail_id, status or "untracked")
        mail = StoredMail.from_document(self.store.document(mail_id))
        route = self.router.route(mail)
        try:
            route.handler(mail)
        except Bounce as exc:
            self.ledger.finish(mail_id, BOUNCED, _error(exc, route.name))
            return Attempt(mail_id, BOUNCED, route.name)
        except Exception as exc:
            final = receive_count >= self.max_attempts
            self.ledger.finish(mail_id, FAILED if final else PENDING, _error(exc, route.name))
            if receipt_handle is not None:
                # After the last attempt the message is shown again at once, so
                # that SQS moves it to the dead-letter queue without waiting.
                self.queue.delay(receipt_handle, 0 if final else backoff_seconds(receive_count))
            raise
        self.ledger.finish(mail_id, DELIVERED)
        return Attempt(mail_id, DELIVERED, route.name)

    def retry(self, mail_id: str) -> None:
        """Another round of attempts for a failed or bounced mail."""
        if not self.ledger.requeue(mail_id, self.clock()):
            status = self.ledger.status(mail_id)
            raise ConflictError(f"the mail is {status or 'not tracked'}; only failed or bounced mail is retried")
        self.queue.send(mail_id)
