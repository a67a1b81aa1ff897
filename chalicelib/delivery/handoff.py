"""Hand every stored mail to the code that handles it, at least once, and record what happened.

After the commit the mail is ``pending`` and its id goes onto an SQS queue. A
consumer claims it (``processing``, with a lease), runs the handler its route
names, and records the end: ``delivered``, ``bounced`` (the handler refused it
for good) or, after the last attempt, ``failed`` with the error's class and
message. The claim is a conditional write, so a second message for the same
mail never runs a handler that already succeeded; an expired lease lets a
crashed attempt be taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.clock import utc_now
from chalicelib.delivery.ledger import Ledger, error_record
from chalicelib.delivery.queue import Queue
from chalicelib.delivery.routing import Bounce, Router
from chalicelib.errors import ConflictError, MailServiceError
from chalicelib.model import Content, StoredMail
from chalicelib.storage.reads import MailReads
from chalicelib.storage.schema import BOUNCED, DELIVERED, FAILED, PENDING, PROCESSING


class Busy(MailServiceError):
    """Another consumer holds the mail's lease; SQS shows the message again later."""


class AttemptsExhausted(MailServiceError):
    """Every attempt was made: the message goes on to the dead-letter queue."""


class HandlerError(Exception):
    """The route's handler raised (that exception is the cause); ``final`` when no attempt is left, the mail failed."""

    def __init__(self, route: str, final: bool) -> None:
        super().__init__(f"the {route} handler raised")
        self.route = route
        self.final = final


# What a message of an earlier round than the mail's comes to: nothing run, the message spent.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Attempt:
    """How one attempt ended, and the mailbox it went to (None when it ran no handler)."""

    status: str
    route: str | None = None


def backoff_seconds(attempt: int) -> int:
    return int(min(30 * 2 ** max(attempt - 1, 0), 900))


@dataclass
class Handoff:
    store: MailReads
    ledger: Ledger
    queue: Queue
    router: Router
    max_attempts: int = 5
    clock: Callable[[], datetime] = utc_now
    # Where a handler's StoredMail reads its bytes from, when it asks (storage/content.py).
    content: Content | None = None

    def process(
        self, mail_id: str, receive_count: int, receipt_handle: str | None = None, round_id: str | None = None
    ) -> Attempt:
        """Run the mail's handler once; an exception leaves the message for SQS to show again.

        ``round_id`` is the round the message was sent for (None: the first, sent by the commit); a message of
        an earlier round than the mail's is spent (``superseded``) and runs nothing. A handler's own exception
        comes out as the cause of a ``HandlerError``, which says whether that was the last attempt.
        """
        if receive_count > self.max_attempts:
            return self._give_up(mail_id, round_id, receipt_handle)
        if not self.ledger.claim(mail_id, self.clock(), round_id):
            status, current = self.ledger.state(mail_id)
            if current != round_id:
                return Attempt(SUPERSEDED)
            if status == PROCESSING:
                raise Busy("another consumer is handling this mail")
            return Attempt(status or "untracked")  # delivered, bounced or failed: this message is spent
        mail = StoredMail.from_document(self.store.document(mail_id), self.content)
        route = self.router.route(mail)
        try:
            route.handler(mail)
        except Bounce as exc:
            self.ledger.finish(mail_id, BOUNCED, error_record(exc, route.name))
            return Attempt(BOUNCED, route.name)
        except Exception as exc:
            final = self._failed(mail_id, receive_count, receipt_handle, error_record(exc, route.name))
            raise HandlerError(route.name, final) from exc
        self.ledger.finish(mail_id, DELIVERED)
        return Attempt(DELIVERED, route.name)

    def _give_up(self, mail_id: str, round_id: str | None, receipt_handle: str | None) -> Attempt:
        """The receive past the last attempt: the queue's maxReceiveCount is one higher than the attempts,
        so that a last attempt that died without an answer (a crash, a Lambda timeout) is recorded too."""
        if not self.ledger.exhaust(mail_id, self.clock(), round_id) and self.ledger.state(mail_id)[1] != round_id:
            return Attempt(SUPERSEDED)  # a retry started a new round: not a dead letter
        if receipt_handle is not None:
            self.queue.delay(receipt_handle, 0)
        raise AttemptsExhausted(f"no attempt left for mail {mail_id}")

    def _failed(self, mail_id: str, receive_count: int, receipt_handle: str | None, error: str) -> bool:
        """Records the failed attempt; True when it was the last, so the mail is failed."""
        final = receive_count >= self.max_attempts
        self.ledger.finish(mail_id, FAILED if final else PENDING, error)
        if receipt_handle is not None:
            # After the last attempt the message is shown again at once, so
            # that SQS moves it to the dead-letter queue without waiting.
            self.queue.delay(receipt_handle, 0 if final else backoff_seconds(receive_count))
        return final

    def retry(self, mail_id: str) -> None:
        """Another round of attempts for a failed or bounced mail."""
        round_id = self.ledger.requeue(mail_id, self.clock())
        if round_id is None:
            status = self.ledger.state(mail_id)[0]
            raise ConflictError(f"the mail is {status or 'not tracked'}; only failed or bounced mail is retried")
        self.queue.send(mail_id, round_id)
