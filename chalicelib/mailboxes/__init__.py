"""The routing table: which mailbox handles which mail. First match wins.

To add a mailbox, write a function (or callable object) that takes a
``StoredMail`` — raise ``Bounce`` to refuse the mail for good, anything else
to have it retried — and add a ``Route`` above the catch-all, for example::

    Route("invoices", recipient(r"invoices@example\\.com"), invoices.receive),
    Route("urgent", subject(r"\\burgent\\b"), pager.receive),
    Route("big", lambda mail: len(mail.attachments) > 10, archive.receive),
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.config import Settings
from chalicelib.delivery.routing import Route, Router, always, recipient
from chalicelib.mailboxes.replies import REPLY_ADDRESS, Replies, Threads
from chalicelib.model import StoredMail

log = logging.getLogger(__name__)


def inbox(mail: StoredMail) -> None:
    """The catch-all: the mail stays stored and readable through the API; nothing more to do."""
    log.info("mail %s kept in the inbox", mail.id)


def router(dynamodb: Any, settings: Settings) -> Router:
    """The table, built once per container: ``settings`` has the stage's table and secrets."""
    replies = Replies(Threads(dynamodb, settings.table), settings.reply_secret)
    return Router(
        [
            Route("replies", recipient(REPLY_ADDRESS), replies),
            Route("inbox", always, inbox),
        ]
    )
