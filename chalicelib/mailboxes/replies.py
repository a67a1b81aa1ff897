"""The reply-by-mail mailbox: a reply to a thread's address joins the thread, without the quoted text.

The application sends its notification from an address ``reply_addresses``
minted for the thread (say a ticket) and its correspondent; the reply comes
back here and joins the thread only when the address verifies for its sender
and the sender is authenticated (an SPF or DKIM pass aligned with the From
domain, or SES's DMARC pass). Its new text is appended to the thread in
DynamoDB (``pk = thread#THREAD``), in order of arrival, ready for the
application to show. Anything else bounces, and the reason is stored.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.delivery.routing import Bounce
from chalicelib.errors import NotConfiguredError, StorageUnavailableError
from chalicelib.mailboxes import reply_addresses
from chalicelib.mailboxes.quoting import visible_text
from chalicelib.model import StoredMail

__all__ = ["REPLY_ADDRESS", "Replies", "Threads", "sender_authenticated", "visible_text"]

# Every reply+ address comes here, so that one that does not verify bounces with its reason.
REPLY_ADDRESS = r"reply\+[^@\s]+@[^@\s]+"
_REPLY = re.compile(REPLY_ADDRESS, re.IGNORECASE)
MAX_REPLY_CHARS = 64 * 1024

def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].strip().lower()


def _aligned(domain: str, from_domain: str) -> bool:
    """DMARC's relaxed alignment, without the public suffix list: one domain is the other or a parent of it."""
    return "." in domain and (domain == from_domain or from_domain.endswith("." + domain)
                              or domain.endswith("." + from_domain))


def sender_authenticated(mail: StoredMail) -> bool:
    """Did the From domain's owner send this: SES's DMARC pass, or an SPF or DKIM pass aligned with it?"""
    from_domain = _domain(mail.sender["address"] if mail.sender else None)
    if not from_domain:
        return False
    if mail.verdicts.get("dmarc") == "pass":
        return True
    if any(entry.get("result") == "pass" and _aligned(entry.get("domain", "").lower(), from_domain)
           for entry in mail.dkim):
        return True
    return mail.spf == "pass" and _aligned(_domain(mail.envelope_from), from_domain)


class Threads:
    """Reply entries in the mail table, one per reply, keyed so a retry rewrites the same entry."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def append(self, token: str, mail: StoredMail, text: str) -> None:
        sender = mail.sender["address"] if mail.sender else ""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"thread#{token}"},
                    "sk": {"S": f"reply#{mail.received_at}#{mail.id}"},
                    "mail_id": {"S": mail.id},
                    "from": {"S": sender},
                    "text": {"S": text[:MAX_REPLY_CHARS]},
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailableError("DynamoDB PutItem failed") from exc

    def replies(self, token: str) -> list[dict[str, str]]:
        try:
            items = self._dynamodb.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :reply)",
                ExpressionAttributeValues={":pk": {"S": f"thread#{token}"}, ":reply": {"S": "reply#"}},
            )["Items"]
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailableError("DynamoDB Query failed") from exc
        return [{"mail_id": i["mail_id"]["S"], "from": i["from"]["S"], "text": i["text"]["S"]} for i in items]


class Replies:
    def __init__(self, threads: Threads, secret: str | None) -> None:
        self._threads = threads
        self._secret = secret

    def __call__(self, mail: StoredMail) -> None:
        if not self._secret:
            # Retried, not bounced: the replies wait in the dead letters until the secret is set.
            raise NotConfiguredError("REPLY_SECRET is not set: reply addresses cannot be verified")
        thread = self._thread(mail, self._secret)
        if not sender_authenticated(mail):
            raise Bounce("the sender is not authenticated: no DMARC pass, nor an SPF or DKIM pass aligned with From")
        text = visible_text(mail.text or "", mail.html)
        if not text.strip():
            raise Bounce("the reply has no text of its own")
        self._threads.append(thread, mail, text)

    @staticmethod
    def _thread(mail: StoredMail, secret: str) -> str:
        """The thread of the reply address this mail's sender was given; a bounce for any other."""
        sender = mail.sender["address"] if mail.sender else ""
        addresses = [address for address in mail.envelope_to if _REPLY.fullmatch(address)]
        if not addresses:
            raise Bounce("no reply address among the recipients")
        for address in addresses:
            parsed = reply_addresses.parse(address)
            if parsed is not None and reply_addresses.verifies(secret, *parsed, sender):
                return parsed[0]
        raise Bounce("the reply address was not issued to this sender")
