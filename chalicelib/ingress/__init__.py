"""The ways mail arrives. Each ingress turns its provider's request into an InboundMail and ends in ``commit()``.

The order is the contract, for every ingress alike: nothing is read before
the caller is known, nothing is answered with success before the commit, and
a body that can never be read is kept aside before it is refused, so that an
operator can still recover it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from chalicelib.delivery.queue import Queue
from chalicelib.errors import MalformedMailError, PayloadTooLargeError
from chalicelib.model import InboundMail
from chalicelib.storage.schema import PENDING
from chalicelib.storage.store import MailStore

_T = TypeVar("_T")


@dataclass(frozen=True)
class Outcome:
    id: str
    duplicate: bool
    attachments: int


def or_quarantine(step: Callable[[], _T], quarantine: Callable[[str], str]) -> _T:
    """What a reading step gives; when it finds the input unreadable, the input is kept aside first.

    No retry can fix such input, so the provider must not retry: the refusal
    (a 400, or a dropped queue message) names the quarantine key.
    """
    try:
        return step()
    except (MalformedMailError, PayloadTooLargeError) as exc:
        key = quarantine(exc.message)
        raise type(exc)(exc.message, quarantine=key) from exc


def commit(
    store: MailStore,
    queue: Queue | None,
    mail: InboundMail,
    raw: bytes,
    content_type: str,
    received: datetime,
    raw_key: str | None = None,
) -> Outcome:
    """Store a decoded mail, then put its id on the handoff queue while it is pending.

    A failure to queue is a 5xx (or an SQS retry): the redelivery finds the
    mail still pending and sends its id again, so no committed mail is left
    behind. A second message for one mail is harmless; the consumer claims it once.
    """
    # Here, not at the top: importing a route module imports this package, and the decoder
    # should load with the first mail, not with every function's cold start (chalicelib/wiring.py).
    from chalicelib.mime.scrub import scrubbed  # noqa: PLC0415

    mail = scrubbed(mail)  # the last line of defence: no lone surrogate reaches the store
    saved = store.save(mail, raw, content_type, received, track=queue is not None, raw_key=raw_key)
    if queue is not None and saved.status == PENDING:
        queue.send(saved.id)
    return Outcome(saved.id, saved.duplicate, len(mail.attachments))
