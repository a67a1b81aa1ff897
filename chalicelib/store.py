"""MailStore: the S3 objects first, then one conditional DynamoDB transaction, the commit point.

Layout. Everything one delivery writes to S3 lies under one prefix,
``mails/{id}/{raw_sha256}/``: ``raw`` (the request body, byte for byte),
``attachments/{index}``, and ``mail.json`` when the document is too large to
sit in the item. The prefix names the bytes, so a redelivery of the same mail
under another multipart boundary never overwrites what the first delivery
stored. In DynamoDB, the mail item (``pk = mail#{id}``, ``sk = mail``) and one
entry per recipient mailbox (``sk = to#{address}``) are written in one
transaction that fails if the mail item exists: either the whole mail is
visible or none of it is. The ``by_box`` index (``box``, ``order``) lists a
mailbox, or ``all``, newest first.

The id is derived from the mail, not drawn at random, so that a redelivery
finds the first delivery: from the Message-ID and the envelope recipients when
there is a Message-ID, from the request bytes otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import NotFoundError, PayloadTooLargeError, StorageUnavailableError
from chalicelib.mail import InboundMail

log = logging.getLogger(__name__)

# One request must end inside Lambda's 25 s timeout (.chalice/config.json), and
# so inside API Gateway's 29 s. Worst case of one call: total_max_attempts x
# (connect + read) + the standard mode's backoff (random, at most 1 s before the
# one retry) = 2 x (1 + 2) + 1 = 7 s. A delivery makes its calls one after
# another: the raw PutObject, one per attachment, the transaction, the SQS
# hand-off (and GetQueueUrl once per container); a plain mail's three calls
# take at most 21 s. (The previous max_attempts=3 meant 3 *retries*, 4
# attempts: 4 x (2 + 5) + 7 = 35 s for a single call.) Fewer, shorter attempts
# cost nothing: a 503 makes SendGrid retry for 72 hours, and every write is
# idempotent (same keys; the conditional transaction, whose ClientRequestToken
# botocore keeps across its retries). Timeouts apply per socket operation, not
# per call: urllib3 sends a body under the connect timeout, one send() at a
# time, and the read timeout counts from the last byte sent, so a 4 MB
# PutObject is not cut short by them. Should more calls than that all hit
# their worst case, Lambda's timeout ends the invocation: a 5xx before the
# commit, a duplicate on the retry after it (tests/test_reliability.py kills a
# process at both points).
BOTO_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"total_max_attempts": 2, "mode": "standard"},
)

# Presigned links must be SigV4: SigV2 links are refused by newer regions and by KMS-encrypted objects.
# The body's SHA-256 goes with every PutObject (ChecksumSHA256, which S3
# verifies), so botocore need not hash it a second time to sign it.
S3_CONFIG = BOTO_CONFIG.merge(Config(signature_version="s3v4", s3={"payload_signing_enabled": False}))

# DynamoDB items hold at most 400 KB; a document above this lives in S3.
INLINE_DOCUMENT_BYTES = 100 * 1024
# TransactWriteItems takes 100 actions: the mail item and up to 99 mailboxes.
TRANSACTION_MAILBOXES = 99
SUMMARY_TEXT_CHARS = 256
PRESIGNED_SECONDS = 300
ALL_MAILBOX = "all"
PENDING = "pending"


def mail_id(mail: InboundMail, raw_sha256: str) -> str:
    if mail.message_id:
        basis = "message-id\n" + mail.message_id + "\n" + "\n".join(sorted(mail.recipients()))
    else:
        basis = "sha256\n" + raw_sha256
    digest = hashlib.sha256(basis.encode("utf-8", "surrogatepass")).digest()
    # 26 characters are 130 bits: the first 20 bytes (base32 writes 5 at a time) give them.
    return base64.b32encode(digest[:20])[:26].decode("ascii").lower()


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: sorts as text in time order."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Saved:
    id: str
    duplicate: bool
    # The handoff status (``pending`` …) when the mail is tracked, else None.
    status: str | None = None


@dataclass(frozen=True)
class ObjectRef:
    """A stored object to hand out: its key, size, and the headers it is served with."""

    key: str
    size: int
    content_type: str
    disposition: str | None


@dataclass(frozen=True)
class Page:
    box: str
    summaries: list[dict[str, Any]]
    # The index key of the page's last mail when more follow; None on the last page.
    last: dict[str, str] | None


def _storage_error(action: str, exc: Exception) -> StorageUnavailableError:
    code = exc.response["Error"].get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
    return StorageUnavailableError(f"{action} failed ({code})")


_BODIES = ("text", "html", "spam_report")
# Built once: json.dumps with any non-default argument builds a new encoder on every call.
# A document is a tree, so the encoder need not look for cycles.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_SUMMARY_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def document_json(document: dict[str, Any]) -> str:
    """``json.dumps(document, ensure_ascii=False, separators=(",", ":"))``, the same text, faster.

    The bodies are most of a document, and json's encoder escapes a string a
    third faster when told it is ASCII (``ensure_ascii=True``, the same output
    for ASCII text; ``str.isascii()`` costs nothing). So when the bodies are
    ASCII, each is encoded on its own and put back where the document holds
    null for it: a JSON string cannot hold an unescaped quote, so
    ``"text":null`` can only be a key and its value, and when it occurs once it
    is the top-level ``text``. A 10 KB mail's document from 45 to 35 µs (bench/).
    """
    bodies = {name: value for name in _BODIES if isinstance(value := document.get(name), str)}
    if not all(body.isascii() for body in bodies.values()):
        # The bodies are most of the text, and splicing into it costs more than it saves.
        return _COMPACT_JSON.encode(document)
    encoded = _COMPACT_JSON.encode({**document, **dict.fromkeys(bodies)})
    for name, body in bodies.items():
        hole = f'"{name}":null'
        if encoded.count(hole) != 1:  # a nested object with a key of that name, also null
            return _COMPACT_JSON.encode(document)
        encoded = encoded.replace(hole, f'"{name}":{json.dumps(body)}')
    return encoded


def _summary(document: dict[str, Any]) -> str:
    sender = document["from"] or {}
    return _SUMMARY_JSON.encode(
        {
            "id": document["id"],
            "received_at": document["received_at"],
            "subject": (document["subject"] or "")[:SUMMARY_TEXT_CHARS] or None,
            "from": (sender.get("address") or "")[:SUMMARY_TEXT_CHARS] or None,
            "attachments": len(document["attachments"]),
            "raw_size": document["raw_size"],
        }
    )


class MailStore:
    def __init__(self, s3: Any, dynamodb: Any, bucket: str, table: str, retention_days: int = 0) -> None:
        self._s3 = s3
        self._dynamodb = dynamodb
        self._bucket = bucket
        self._table = table
        self._retention = retention_days * 86400

    # -- writing ---------------------------------------------------------

    def _put(self, key: str, body: bytes | bytearray | memoryview, content_type: str, **extra: Any) -> None:
        try:
            # botocore takes bytes and bytearray but not a view: a view is copied here.
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=bytes(body) if isinstance(body, memoryview) else body,
                ContentType=content_type, **extra,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("S3 PutObject", exc) from exc

    def save(
        self,
        mail: InboundMail,
        raw: bytes,
        raw_content_type: str,
        received: datetime,
        track: bool = False,
        raw_key: str | None = None,
    ) -> Saved:
        """Store one delivery; with ``track`` the mail starts ``pending`` for the handoff to its handlers.

        ``raw_key`` names an original that is already in the bucket (SES wrote
        it): it is pointed at, not copied.
        """
        raw_digest = hashlib.sha256(raw).digest()
        raw_sha256 = raw_digest.hex()
        id_ = mail_id(mail, raw_sha256)
        prefix = f"mails/{id_}/{raw_sha256}/"
        received_at = timestamp(received)
        document: dict[str, Any] = {"id": id_, "received_at": received_at, **mail.to_dict()}
        document["raw_size"] = len(raw)
        document["raw_sha256"] = raw_sha256

        # moto's S3 drops a multipart/form-data body, and the original type is
        # not the object's type anyway: it is kept beside it.
        if raw_key is None:
            self._put(
                prefix + "raw", raw, "application/octet-stream",
                Metadata={"original-content-type": raw_content_type},
                ChecksumSHA256=base64.b64encode(raw_digest).decode("ascii"),
            )
        for attachment in mail.attachments:
            self._put(
                f"{prefix}attachments/{attachment.index}", attachment.data, attachment.content_type,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(attachment.sha256)).decode("ascii"),
            )
        encoded = document_json(document)
        item: dict[str, Any] = {
            "pk": {"S": f"mail#{id_}"},
            "sk": {"S": "mail"},
            "id": {"S": id_},
            "box": {"S": ALL_MAILBOX},
            "order": {"S": f"{received_at}#{id_}"},
            "summary": {"S": _summary(document)},
            "prefix": {"S": prefix},
            "raw_content_type": {"S": raw_content_type},
            "raw_size": {"N": str(len(raw))},
            "raw_key": {"S": raw_key or prefix + "raw"},
        }
        if self._retention:
            # DynamoDB's TTL removes the item (within days), S3's lifecycle rule
            # the objects; until then the reads below treat it as gone already.
            item["expires_at"] = {"N": str(int(received.timestamp()) + self._retention)}
        if track:
            item["status"] = {"S": PENDING}
            item["attempts"] = {"N": "0"}
        # This delivery's own mark, also the transaction's idempotency token. When
        # botocore retries a commit whose answer was lost, DynamoDB answers the
        # retry with success by the token; an emulator (moto) fails its condition
        # instead, and the mark in the stored item tells our own commit from a
        # duplicate delivery's.
        token = uuid.uuid4().hex
        item["token"] = {"S": token}
        if len(encoded.encode("utf-8")) > INLINE_DOCUMENT_BYTES:
            self._put(prefix + "mail.json", encoded.encode("utf-8"), "application/json")
            item["doc_key"] = {"S": prefix + "mail.json"}
        else:
            item["doc"] = {"S": encoded}

        mailboxes = [self._mailbox_entry(item, address) for address in mail.recipients()]
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        actions += [
            {"Put": {"TableName": self._table, "Item": entry}}
            for entry in mailboxes[:TRANSACTION_MAILBOXES]
        ]
        try:
            self._dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=token)
        except ClientError as exc:
            if not _condition_failed(exc):
                raise _storage_error("DynamoDB TransactWriteItems", exc) from exc
            self._write_overflow(mailboxes)
            stored = self._stored_head(id_)
            status = stored["status"]["S"] if "status" in stored else None
            if stored.get("token", {}).get("S") == token:
                return Saved(id_, duplicate=False, status=status)  # our own commit, its first answer lost
            if stored["prefix"]["S"] != prefix:
                self._forget_delivery(prefix, mail, raw_key is None)
            return Saved(id_, duplicate=True, status=status)
        except BotoCoreError as exc:
            raise _storage_error("DynamoDB TransactWriteItems", exc) from exc
        self._write_overflow(mailboxes)
        return Saved(id_, duplicate=False, status=PENDING if track else None)

    def _mailbox_entry(self, item: dict[str, Any], address: str) -> dict[str, Any]:
        entry = {
            "pk": item["pk"],
            "sk": {"S": f"to#{address}"},
            "id": item["id"],
            "box": {"S": f"to#{address}"},
            "order": item["order"],
            "summary": item["summary"],
        }
        if "expires_at" in item:
            entry["expires_at"] = item["expires_at"]
        return entry

    def _write_overflow(self, mailboxes: list[dict[str, Any]]) -> None:
        """Mailboxes beyond one transaction, written after the commit; idempotent, so a redelivery repairs them."""
        overflow = mailboxes[TRANSACTION_MAILBOXES:]
        for start in range(0, len(overflow), 25):
            batch = [{"PutRequest": {"Item": entry}} for entry in overflow[start : start + 25]]
            request: dict[str, Any] = {self._table: batch}
            try:
                while request:
                    request = self._dynamodb.batch_write_item(RequestItems=request).get(
                        "UnprocessedItems", {}
                    )
            except (BotoCoreError, ClientError) as exc:
                raise _storage_error("DynamoDB BatchWriteItem", exc) from exc

    def _stored_head(self, id_: str) -> dict[str, Any]:
        """The stored mail's prefix, handoff status and commit mark, after its condition failed."""
        try:
            stored: dict[str, Any] | None = self._dynamodb.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"mail#{id_}"}, "sk": {"S": "mail"}},
                ProjectionExpression="#p, #s, #t",
                ExpressionAttributeNames={"#p": "prefix", "#s": "status", "#t": "token"},
                ConsistentRead=True,
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("DynamoDB GetItem", exc) from exc
        if stored is None:
            # Refused as stored, yet not there (removed in between): never answer
            # that as stored; SendGrid's retry stores it again.
            raise StorageUnavailableError("DynamoDB refused the mail as stored but does not have it")
        return stored

    def _forget_delivery(self, prefix: str, mail: InboundMail, own_raw: bool) -> None:
        """Remove what a duplicate delivery under other bytes wrote; the first delivery's objects stay."""
        # An original SES wrote is not ours to delete: only what this delivery wrote goes.
        keys = [prefix + "mail.json"] + ([prefix + "raw"] if own_raw else [])
        keys += [f"{prefix}attachments/{a.index}" for a in mail.attachments]
        try:
            self._s3.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        except (BotoCoreError, ClientError) as exc:
            # The mail is stored; an orphan object is only waste, never wrong data.
            log.warning("could not remove a duplicate delivery's objects (%s)", type(exc).__name__)

    def quarantine(self, raw: bytes, content_type: str, reason: str, received: datetime) -> str:
        """Keep an unreadable body aside for an operator; returns its key."""
        digest = hashlib.sha256(raw).hexdigest()
        key = f"quarantine/{received.astimezone(UTC):%Y-%m-%d}/{digest}"
        self._put(
            key, raw, "application/octet-stream",
            Metadata={"original-content-type": content_type[:512], "reason": reason[:512]},
        )
        return key

    def quarantine_copy(self, key: str, reason: str, received: datetime) -> str:
        """Keep an unreadable object that is already in the bucket aside, by a copy inside S3."""
        target = f"quarantine/{received.astimezone(UTC):%Y-%m-%d}/{key.rsplit('/', 1)[-1]}"
        try:
            self._s3.copy_object(
                Bucket=self._bucket, Key=target, CopySource={"Bucket": self._bucket, "Key": key},
                MetadataDirective="REPLACE", ContentType="application/octet-stream",
                Metadata={"original-key": key[:512], "reason": reason[:512]},
            )
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("S3 CopyObject", exc) from exc
        return target

    # -- reading ---------------------------------------------------------

    def read_key(self, key: str, limit: int) -> bytes:
        """An object's bytes, refused past ``limit`` before they are read."""
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"].get("Code") in ("NoSuchKey", "404"):
                raise NotFoundError("the stored message is missing") from exc
            raise _storage_error("S3 GetObject", exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("S3 GetObject", exc) from exc
        if response["ContentLength"] > limit:
            response["Body"].close()
            raise PayloadTooLargeError(f"the stored message exceeds {limit} bytes")
        try:
            data: bytes = response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("S3 GetObject", exc) from exc
        return data


    def _item(self, id_: str) -> dict[str, Any]:
        try:
            item = self._dynamodb.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"mail#{id_}"}, "sk": {"S": "mail"}},
                ProjectionExpression=(
                    "doc, doc_key, #p, raw_key, raw_content_type, raw_size, #s, attempts, last_error, expires_at"
                ),
                ExpressionAttributeNames={"#p": "prefix", "#s": "status"},
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("DynamoDB GetItem", exc) from exc
        if item is None or _expired(item):
            raise NotFoundError("no mail with that id")
        return dict(item)

    def _get(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("S3 GetObject", exc) from exc
        return body

    def _document(self, item: dict[str, Any]) -> dict[str, Any]:
        text = item["doc"]["S"] if "doc" in item else self._get(item["doc_key"]["S"]).decode("utf-8")
        document: dict[str, Any] = json.loads(text)
        return document

    def document(self, id_: str) -> dict[str, Any]:
        """The stored mail's JSON, with its handoff state under ``processing`` (null when untracked)."""
        item = self._item(id_)
        document = self._document(item)
        document["processing"] = None
        if "status" in item:
            error = item.get("last_error")
            document["processing"] = {
                "status": item["status"]["S"],
                "attempts": int(item["attempts"]["N"]),
                "error": json.loads(error["S"]) if error else None,
            }
        return document

    def read(self, ref: ObjectRef) -> bytes:
        return self._get(ref.key)

    def link(self, ref: ObjectRef) -> str:
        """A presigned GET link, valid for minutes, that answers with the object's own type and file name."""
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": ref.key, "ResponseContentType": ref.content_type}
        if ref.disposition:
            params["ResponseContentDisposition"] = ref.disposition
        try:
            url: str = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=PRESIGNED_SECONDS)
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("S3 presign", exc) from exc
        return url

    def raw(self, id_: str) -> ObjectRef:
        item = self._item(id_)
        return ObjectRef(
            item["raw_key"]["S"], int(item["raw_size"]["N"]), item["raw_content_type"]["S"], None
        )

    def attachment(self, id_: str, index: int) -> ObjectRef:
        item = self._item(id_)
        for attachment in self._document(item)["attachments"]:
            if attachment["index"] == index:
                return ObjectRef(
                    f"{item['prefix']['S']}attachments/{index}",
                    attachment["size"],
                    attachment["content_type"],
                    content_disposition(attachment["filename"], index, attachment["disposition"]),
                )
        raise NotFoundError("no attachment with that index")

    def list_mails(self, mailbox: str | None, limit: int, after: dict[str, str] | None) -> Page:
        """One page of a mailbox (or of all mail when None), newest first, through the ``by_box`` index."""
        box = ALL_MAILBOX if mailbox is None else f"to#{mailbox}"
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_box",
            "KeyConditionExpression": "box = :box",
            "ExpressionAttributeValues": {":box": {"S": box}},
            "ScanIndexForward": False,
            # One more than asked tells whether another page exists, so the
            # last page's cursor is null rather than pointing at nothing.
            "Limit": limit + 1,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {name: {"S": value} for name, value in after.items()}
        items: list[dict[str, Any]] = []
        try:
            while len(items) <= limit:
                response = self._dynamodb.query(**request)
                items += response.get("Items", [])
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except (BotoCoreError, ClientError) as exc:
            raise _storage_error("DynamoDB Query", exc) from exc
        page = items[:limit]
        # Expired entries are still in the index until TTL removes them: left out
        # here, so a page may be shorter than asked (its cursor still continues).
        visible = [item for item in page if not _expired(item)]
        last = None
        if len(items) > limit:
            last = {name: page[-1][name]["S"] for name in ("pk", "sk", "box", "order")}
        return Page(box, [json.loads(item["summary"]["S"]) for item in visible], last)


def content_disposition(filename: str | None, index: int, disposition: str) -> str:
    """RFC 6266: an ASCII fallback name for old clients and ``filename*`` for the real one."""
    name = filename or f"attachment-{index}"
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\/' else "_" for ch in name)
    if not fallback.strip(". _"):
        # ".." or a name of nothing but dots: a client saving by the given name must not get one.
        name = fallback = f"attachment-{index}"
    kind = "inline" if disposition == "inline" else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _expired(item: dict[str, Any]) -> bool:
    return "expires_at" in item and int(item["expires_at"]["N"]) <= time.time()


def _condition_failed(exc: ClientError) -> bool:
    if exc.response["Error"].get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
