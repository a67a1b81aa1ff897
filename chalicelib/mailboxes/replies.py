"""The reply-by-mail mailbox: a reply to ``reply+TOKEN@domain`` joins the thread TOKEN, without the quoted text.

The application sends its notification from ``reply+TOKEN@its-domain`` (TOKEN
names the thread, say a ticket); the reply comes back here, and its new text
is appended to the thread in DynamoDB (``pk = thread#TOKEN``), in order of
arrival, ready for the application to show.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.delivery.routing import Bounce
from chalicelib.errors import StorageUnavailableError
from chalicelib.model import StoredMail

REPLY_ADDRESS = r"reply\+[A-Za-z0-9_-]{1,64}@[^@\s]+"
_TOKEN = re.compile(r"reply\+([A-Za-z0-9_-]{1,64})@", re.IGNORECASE)
MAX_REPLY_CHARS = 64 * 1024

# Where a quoted earlier message starts, as the common mail clients write it.
_QUOTE_HEADERS = [
    re.compile(r"^On\b.{0,300}\bwrote:\s*$", re.IGNORECASE),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^Le\b.{0,300}\ba écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^Am\b.{0,300}\bschrieb\b.{0,300}:\s*$", re.IGNORECASE),
    re.compile(r"^.{0,300}(さん|様)?(は|が)書きました\s*[:：]\s*$"),
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),  # Outlook
    re.compile(r"^_{20,}\s*$"),  # Outlook's rule above the quoted headers
]


def strip_quoted(text: str) -> str:
    """The reply's own text: everything before the quoted earlier message, less trailing ``>`` lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for number, line in enumerate(lines):
        stripped = line.strip()
        # Gmail wraps a long attribution line: "On …, Name <a@b>" then "wrote:".
        joined = f"{stripped} {lines[number + 1].strip()}" if number + 1 < len(lines) else stripped
        if any(pattern.match(stripped) or pattern.match(joined) for pattern in _QUOTE_HEADERS):
            cut = number
            break
        if stripped.startswith("From:") and number > 0 and not lines[number - 1].strip():
            cut = number  # Outlook's plain-text quote: a blank line, then "From: …"
            break
    kept = lines[:cut]
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()
    return "\n".join(kept).strip("\n")


def thread_token(mail: StoredMail) -> str | None:
    for address in mail.envelope_to:
        match = _TOKEN.match(address)
        if match:
            return match.group(1)
    return None


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
    def __init__(self, threads: Threads) -> None:
        self._threads = threads

    def __call__(self, mail: StoredMail) -> None:
        token = thread_token(mail)
        if token is None:
            raise Bounce("no thread token in the recipient")
        text = strip_quoted(mail.text or "")
        if not text.strip():
            raise Bounce("the reply has no text of its own")
        self._threads.append(token, mail, text)
