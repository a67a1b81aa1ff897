"""The stored mail's keys, attribute names and statuses: their one owner.

The store writes them, the ledger updates them, the read API pages through
them; ``infra/resources.json`` declares the same key schema and index.

S3, under one prefix per delivery, ``mails/{id}/{raw_sha256}/``: ``raw`` (the
request body, byte for byte), ``attachments/{index}``, and ``mail.json`` when
the document is too large for the item. The prefix names the bytes, so a
redelivery under another multipart boundary never overwrites what the first
delivery stored. Unreadable bodies lie under ``quarantine/{date}/``.

DynamoDB, one table: the mail item (``pk = mail#{id}``, ``sk = mail``) and one
mailbox entry per recipient (``sk = to#{address}``), written in one
transaction. The ``by_box`` index (``box``, ``order``) lists a mailbox, or
``all``, newest first. The sparse ``by_status`` index (``status_box``,
``order``) lists the tracked mail in one handoff status, of all mail or of one
mailbox: the mail item and its transactional mailbox entries carry
``status_box`` while the status is one of ``LISTED_STATUSES``, and lose it
once delivered, so delivered mail (nearly all of it) costs the index nothing.
Both indexes' keys are sharded by the mail id (``box_key``, ``status_box``),
and a listing reads every shard (docs/design/scale.md).

The mailbox register: one item per mailbox ever written to (``pk =
mailbox#{address}``, ``sk = mailbox``), filed in the same index under one of
``MAILBOX_SHARDS`` partitions (``box = mailboxes#N``, ``order = address``), so
that ``GET /mailboxes`` is a few queries, never a scan.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from chalicelib.model import InboundMail

# The handoff's states, on the mail item's ``status``.
PENDING = "pending"
PROCESSING = "processing"
DELIVERED = "delivered"
BOUNCED = "bounced"
FAILED = "failed"

# The statuses ``GET /mails?status=`` lists, through the sparse ``by_status`` index.
# ``processing`` is among them: a mail whose attempt died holding its lease stays
# there until SQS shows it again, and an operator looking for stuck mail finds it.
# ``delivered`` is not: it is where nearly every mail ends, and the index stays small.
LISTED_STATUSES = (PENDING, PROCESSING, BOUNCED, FAILED)

# Attribute names of the mail item (entries carry the first six).
PK = "pk"
SK = "sk"
ID = "id"
BOX = "box"
ORDER = "order"
SUMMARY = "summary"
PREFIX = "prefix"
DOC = "doc"  # the document, when it fits the item
DOC_KEY = "doc_key"  # else its S3 key
RAW_KEY = "raw_key"
RAW_CONTENT_TYPE = "raw_content_type"
RAW_SIZE = "raw_size"
EXPIRES_AT = "expires_at"  # DynamoDB's TTL attribute
COMMIT_TOKEN = "token"  # noqa: S105  # the delivery that committed the item, not a secret
STATUS = "status"
ATTEMPTS = "attempts"
LAST_ERROR = "last_error"
LEASE_UNTIL = "lease_until"
LEDGER_TOKEN = "ledger_token"  # noqa: S105  # the ledger's last move, to know its own write again; not a secret
ROUND = "handoff_round"  # set by each retry, and carried by its queue message; absent for the first round
STATUS_BOX = "status_box"  # the by_status index's partition key, present only while the status is listed

INDEX = "by_box"
INDEX_KEY = (PK, SK, BOX, ORDER)  # what a page's last key, and so a cursor, holds
ALL_MAILBOX = "all"
STATUS_INDEX = "by_status"
STATUS_INDEX_KEY = (PK, SK, STATUS_BOX, ORDER)
MAIL_SORT_KEY = "mail"


# The register's index partitions: an address's shard is fixed by its hash, so a
# listing merges this many queries and a burst of new mailboxes spreads over them.
MAILBOX_SHARDS = 8
MAILBOX_SORT_KEY = "mailbox"


def mail_key(mail_id: str) -> dict[str, Any]:
    return {PK: {"S": f"mail#{mail_id}"}, SK: {"S": MAIL_SORT_KEY}}


MAILBOX_PREFIX = "to#"  # a mailbox entry's sort key, and its box, begin with it


def once_key(kind: str, value: str) -> dict[str, Any]:
    """A value that may be used once (a webhook's token), by its digest: never in the index, never a mail."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return {PK: {"S": f"once#{kind}#{digest}"}, SK: {"S": "once"}}


FINGERPRINT = "fingerprint"  # what the value was first used for (a request body's digest)


def box(address: str | None) -> str:
    """A mailbox (or all mail when None): a mailbox entry's sort key, and what its index partitions are named after."""
    return ALL_MAILBOX if address is None else f"{MAILBOX_PREFIX}{address}"


# Every mail writes ``all`` and ``pending#all``, and every mail to one address its
# mailbox's: one partition key takes about 1,000 writes a second, and keys whose
# sort keys only grow (time order) are never split. So each index key is spread
# over a fixed number of shards, chosen from the mail id, and a listing reads
# them all (docs/design/scale.md). by_box takes one write per mail: 16 shards
# take 10,000 mails a second at 625 writes a second each. by_status takes two
# (in, and out when the status moves on): 32. Never change either: stored mail
# stays on the shard these counts chose.
BOX_SHARDS = 16
STATUS_SHARDS = 32


def _shard(mail_id: str, shards: int) -> str:
    # A prefix, not a suffix: an unsharded key (mail stored before the shards,
    # "all", "to#…", "pending#…") never begins with a digit, so no address can
    # make one key read as another.
    return f"{zlib.crc32(mail_id.encode('utf-8', 'surrogatepass')) % shards:02d}#"


def box_key(box_: str, mail_id: str) -> str:
    """The ``by_box`` partition a mail's item (``box_`` = ``all``) or mailbox entry is written to."""
    return _shard(mail_id, BOX_SHARDS) + box_


def box_keys(box_: str) -> list[str]:
    """Every ``by_box`` partition of a box: its shards, and the unsharded key of mail stored before them."""
    return [box_] + [f"{n:02d}#{box_}" for n in range(BOX_SHARDS)]


def status_box(status: str, box_: str, mail_id: str) -> str:
    """The ``by_status`` partition of a mail in a status within a ``box()`` (a mailbox, or ``all``)."""
    return _shard(mail_id, STATUS_SHARDS) + f"{status}#{box_}"


def status_boxes(status: str, box_: str) -> list[str]:
    """Every ``by_status`` partition of a status within a box, the unsharded one too (see ``box_keys``)."""
    return [f"{status}#{box_}"] + [f"{n:02d}#{status}#{box_}" for n in range(STATUS_SHARDS)]


def mailbox_key(address: str) -> dict[str, Any]:
    return {PK: {"S": f"mailbox#{address}"}, SK: {"S": MAILBOX_SORT_KEY}}


def mailbox_shard(address: str) -> str:
    """The index partition a mailbox is registered under; stable across processes (no ``hash()``)."""
    digest = hashlib.sha256(address.encode("utf-8", "surrogatepass")).digest()
    return mailbox_partition(int.from_bytes(digest[:4], "big") % MAILBOX_SHARDS)


def mailbox_partition(shard: int) -> str:
    return f"mailboxes#{shard}"


# DynamoDB's bound on a sort key, which a mailbox entry's box is.
MAX_KEY_BYTES = 1024


def box_fits(address: str) -> bool:
    return len(box(address).encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


def mail_id(mail: InboundMail, raw_sha256: str) -> str:
    """Derived from the mail, so that a redelivery finds the first delivery, and from what a sender cannot forge alone.

    A mail with a Message-ID is named by that Message-ID as written, its
    envelope recipients and ``content_digest``: the same mail under another
    multipart boundary, or through another ingress, gets the same id, and a
    mail that reuses someone else's Message-ID with other content its own.
    Without a Message-ID, the request bytes name it.
    """
    message_id = (mail.header("Message-ID") or "").strip()
    if message_id:
        basis = json.dumps(["message-id", message_id, sorted(mail.recipients()), content_digest(mail)])
    else:
        basis = "sha256\n" + raw_sha256
    digest = hashlib.sha256(basis.encode("utf-8", "surrogatepass")).digest()
    # 26 characters are 130 bits: the first 20 bytes (base32 writes 5 at a time) give them.
    return base64.b32encode(digest[:20])[:26].decode("ascii").lower()


def content_digest(mail: InboundMail) -> str:
    """SHA-256 of what the mail says: sender, date, subject, both bodies and every attachment's bytes.

    The bodies are compared without their CRs and surrounding blanks, so that
    one message decoded from a provider that rewrote its line ends still
    matches.
    """
    digest = hashlib.sha256()
    sender = (mail.sender or {}).get("address", "").lower()
    for text in (sender, mail.date or "", mail.subject or "", _body(mail.text), _body(mail.html)):
        # Each piece length-prefixed, so that no two splits collide: ASCII as it is, anything else as
        # UTF-16 (which CPython writes far faster than UTF-8) after a 0xFF, whose length it counts. Which
        # one is a property of the text itself, so the same text always hashes alike. The prefix and
        # the text are hashed one after the other: joining them would copy the body (docs/design/performance.md).
        if text.isascii():
            data = text.encode("ascii")
            digest.update(len(data).to_bytes(8, "big"))
        else:
            data = text.encode("utf-16-le", "surrogatepass")
            digest.update((1 + len(data)).to_bytes(8, "big") + b"\xff")
        digest.update(data)
    for attachment in mail.attachments:
        digest.update(bytes.fromhex(attachment.sha256))
    return digest.hexdigest()


def _body(text: str | None) -> str:
    if not text:
        return ""
    return (text.replace("\r", "") if "\r" in text else text).strip()


def object_prefix(mail_id: str, raw_sha256: str) -> str:
    return f"mails/{mail_id}/{raw_sha256}/"


def raw_object(prefix: str) -> str:
    return prefix + "raw"


def attachment_object(prefix: str, index: int) -> str:
    return f"{prefix}attachments/{index}"


def document_object(prefix: str) -> str:
    return prefix + "mail.json"


def message_object(prefix: str) -> str:
    """The message rebuilt for ``GET /mails/{id}/eml``, kept when too large to answer in place."""
    return prefix + "message.eml"


def quarantine_object(received: datetime, name: str) -> str:
    return f"quarantine/{received.astimezone(UTC):%Y-%m-%d}/{name}"
