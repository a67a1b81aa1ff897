"""MailStore: the S3 objects first, all at once, then one conditional DynamoDB transaction, the commit point.

Either the whole mail is visible or none of it is: the transaction writes the
mail item and its mailbox entries, and fails if the item exists, which is how a
redelivery is recognised (the keys are in ``schema``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from botocore.exceptions import ClientError

from chalicelib.errors import StorageUnavailableError
from chalicelib.model import InboundMail
from chalicelib.storage import documents, schema
from chalicelib.storage.boto import AWS_ERRORS, error_code, pool, storage_error
from chalicelib.storage.reads import MESSAGE_TYPE, MailReads, ObjectRef

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# DynamoDB items hold at most 400 KB; a document above this lives in S3.
INLINE_DOCUMENT_BYTES = 100 * 1024
# TransactWriteItems takes 100 actions: the mail item and up to 99 mailboxes.
TRANSACTION_MAILBOXES = 99


@dataclass(frozen=True)
class Saved:
    id: str
    duplicate: bool
    # The handoff status (``pending`` …) when the mail is tracked, else None.
    status: str | None = None


@dataclass(frozen=True)
class _Delivery:
    """One delivery's names: the mail's id, and the prefix its bytes are stored under."""

    id: str
    prefix: str
    raw_digest: bytes
    # The original SES (or another writer) put in the bucket, pointed at rather than copied.
    raw_key: str | None

    @property
    def own_raw(self) -> bool:
        return self.raw_key is None


@dataclass(frozen=True)
class _Put:
    """One object of a delivery, to be written with the others at once."""

    key: str
    body: bytes | bytearray | memoryview
    content_type: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # botocore takes bytes and bytearray but not a view: the copy is made here, on the calling
        # thread, where a pool thread's would cost a fresh malloc arena's page faults on every mail
        # (0.5 ms of CPU for a 750 KB attachment, measured with make bench).
        if isinstance(self.body, memoryview):
            object.__setattr__(self, "body", bytes(self.body))


def _checksum(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


# Every printable ASCII character but "%", which starts an escape.
_METADATA_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
METADATA_CHARS = 512


def _metadata(value: str) -> str:
    """A value for S3 metadata, which must be ASCII: percent-encoded, and cut to its bound at a whole escape."""
    encoded = quote(value, safe=_METADATA_SAFE)
    if len(encoded) > METADATA_CHARS:
        encoded = encoded[:METADATA_CHARS]
        escape = encoded.find("%", METADATA_CHARS - 2)
        encoded = encoded[:escape] if escape >= 0 else encoded
    return encoded


class MailStore(MailReads):
    """The reads, and the writes: one delivery's objects, then the commit; the quarantine."""

    def __init__(self, s3: Any, dynamodb: Any, bucket: str, table: str, retention_days: int = 0) -> None:
        super().__init__(s3, dynamodb, bucket, table)
        self._retention = retention_days * 86400

    # -- writing ---------------------------------------------------------

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
        id_ = schema.mail_id(mail, raw_digest.hex())
        delivery = _Delivery(id_, schema.object_prefix(id_, raw_digest.hex()), raw_digest, raw_key)
        item, document = self._mail_item(delivery, mail, raw, raw_content_type, received, track)
        # An address too long for a key gets no mailbox: the mail is stored, and found by id or in "all".
        entries = [_mailbox_entry(item, address) for address in mail.recipients() if schema.box_fits(address)]
        addresses = [entry[schema.SK]["S"].removeprefix(schema.MAILBOX_PREFIX) for entry in entries]
        # The register is read while the objects are written: no round trip of its own.
        known = self._put_all(
            self._objects(delivery, mail, raw, raw_content_type, document), lambda: self._registered(addresses)
        )
        if track:
            # Only the entries of the transaction are listed by status: the ledger keeps exactly
            # those in step, and an overflow entry rewritten by a redelivery cannot list a stale one.
            for entry in entries[:TRANSACTION_MAILBOXES]:
                entry[schema.STATUS_BOX] = {"S": schema.status_box(schema.PENDING, entry[schema.SK]["S"], id_)}
        committed = self._transact(item, entries[:TRANSACTION_MAILBOXES])
        self._write_overflow(entries[TRANSACTION_MAILBOXES:])  # after either answer, so a redelivery repairs them
        if committed:
            saved = Saved(id_, duplicate=False, status=schema.PENDING if track else None)
        else:
            saved = self._refused(delivery, mail, item[schema.COMMIT_TOKEN]["S"])
        self._register(addresses, known, item)
        return saved

    def keep_message(self, mail_id: str, message: bytes) -> ObjectRef:
        """A message made from the stored mail, kept beside it (and expiring with it) to be handed out by link."""
        key = schema.message_object(self._item(mail_id)[schema.PREFIX]["S"])
        self._put(key, message, MESSAGE_TYPE)
        return ObjectRef(key, len(message), MESSAGE_TYPE)

    def _put(self, key: str, body: bytes | bytearray | memoryview, content_type: str, **extra: Any) -> None:
        try:
            # botocore takes bytes and bytearray but not a view: a view is copied here.
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=bytes(body) if isinstance(body, memoryview) else body,
                ContentType=content_type, **extra,
            )
        except AWS_ERRORS as exc:
            raise storage_error("S3 PutObject", exc) from exc

    def _objects(
        self, delivery: _Delivery, mail: InboundMail, raw: bytes, raw_content_type: str, document: bytes | None
    ) -> list[_Put]:
        """The original (unless it is in the bucket already), each attachment, and a document too large for the item."""
        puts: list[_Put] = []
        if delivery.own_raw:
            # moto's S3 drops a multipart/form-data body, and the original type is
            # not the object's type anyway: it is kept beside it.
            puts.append(_Put(
                schema.raw_object(delivery.prefix), raw, "application/octet-stream",
                {"Metadata": {"original-content-type": _metadata(raw_content_type)},
                 "ChecksumSHA256": _checksum(delivery.raw_digest)},
            ))
        puts += [
            _Put(schema.attachment_object(delivery.prefix, attachment.index), attachment.data,
                 attachment.content_type, {"ChecksumSHA256": _checksum(bytes.fromhex(attachment.sha256))})
            for attachment in mail.attachments
        ]
        if document is not None:
            puts.append(_Put(schema.document_object(delivery.prefix), document, "application/json", {}))
        return puts

    def _put_all(self, puts: list[_Put], alongside: Callable[[], _T]) -> _T:
        """Every object at once, and ``alongside`` with them: one round trip for the lot; the first failure, once
        all have ended.

        Waiting for all before raising means no put of this delivery is still
        running when the caller answers 503 (nothing is committed either way:
        the transaction comes after).
        """
        # The first put (the original, the largest) on this thread, which would only wait otherwise: the
        # commonest mail, its original alone, needs no other thread for it. ``alongside`` is submitted after the
        # others, so that it overlaps them rather than going first.
        if not puts:  # an original already in the bucket (SES's), and nothing else
            return alongside()
        first, *others = puts
        futures = [pool().submit(self._put, put.key, put.body, put.content_type, **put.extra) for put in others]
        beside = pool().submit(alongside)
        try:
            self._put(first.key, first.body, first.content_type, **first.extra)
        finally:
            # Each future's own exception() waits for it: concurrent.futures.wait's waiters and events
            # cost far more CPU for the same wait (docs/design/performance.md).
            errors = [future.exception() for future in futures]
            beside.exception()
        for error in errors:
            if error is not None:
                raise error
        return beside.result()

    def _mail_item(
        self, delivery: _Delivery, mail: InboundMail, raw: bytes, raw_content_type: str, received: datetime,
        track: bool,
    ) -> tuple[dict[str, Any], bytes | None]:
        """The mail item, and the document's bytes when they go to S3 rather than in the item."""
        received_at = documents.timestamp(received)
        document = documents.document(delivery.id, received_at, mail, len(raw), delivery.raw_digest.hex())
        item: dict[str, Any] = {
            **schema.mail_key(delivery.id),
            schema.ID: {"S": delivery.id},
            schema.BOX: {"S": schema.box_key(schema.ALL_MAILBOX, delivery.id)},
            schema.ORDER: {"S": f"{received_at}#{delivery.id}"},
            schema.SUMMARY: {"S": documents.summary_json(document)},
            schema.PREFIX: {"S": delivery.prefix},
            schema.RAW_CONTENT_TYPE: {"S": raw_content_type},
            schema.RAW_SIZE: {"N": str(len(raw))},
            schema.RAW_KEY: {"S": delivery.raw_key or schema.raw_object(delivery.prefix)},
            # This delivery's own mark, also the transaction's idempotency token:
            # it tells our own commit, whose answer was lost, from another delivery's.
            schema.COMMIT_TOKEN: {"S": uuid.uuid4().hex},
        }
        data = documents.document_bytes(document)
        if len(data) <= INLINE_DOCUMENT_BYTES:
            item[schema.DOC] = {"S": data.decode("utf-8")}
            stored = None
        else:
            item[schema.DOC_KEY] = {"S": schema.document_object(delivery.prefix)}
            stored = data
        if self._retention:
            # DynamoDB's TTL removes the item (within days), S3's lifecycle rule
            # the objects; until then the reads treat it as gone already.
            item[schema.EXPIRES_AT] = {"N": str(int(received.timestamp()) + self._retention)}
        if track:
            item[schema.STATUS] = {"S": schema.PENDING}
            item[schema.STATUS_BOX] = {"S": schema.status_box(schema.PENDING, schema.ALL_MAILBOX, delivery.id)}
            item[schema.ATTEMPTS] = {"N": "0"}
        return item, stored

    def _transact(self, item: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
        """The commit: True when it wrote the mail, False when the mail item was there already."""
        actions: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        ]
        actions += [{"Put": {"TableName": self._table, "Item": entry}} for entry in entries]
        try:
            token = item[schema.COMMIT_TOKEN]["S"]
            self._dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=token)
        except ClientError as exc:
            if not _condition_failed(exc):
                raise storage_error("DynamoDB TransactWriteItems", exc) from exc
            return False
        except AWS_ERRORS as exc:
            raise storage_error("DynamoDB TransactWriteItems", exc) from exc
        return True

    def _refused(self, delivery: _Delivery, mail: InboundMail, token: str) -> Saved:
        """The mail item existed: our own commit retried by botocore after a lost answer, or a duplicate.

        DynamoDB answers such a retry with success by its token; an emulator
        (moto) fails its condition instead, and the token in the stored item tells.
        """
        stored = self._stored_head(delivery.id)
        status = stored[schema.STATUS]["S"] if schema.STATUS in stored else None
        if stored.get(schema.COMMIT_TOKEN, {}).get("S") == token:
            return Saved(delivery.id, duplicate=False, status=status)
        if stored[schema.PREFIX]["S"] != delivery.prefix:
            self._forget(delivery, mail)
        return Saved(delivery.id, duplicate=True, status=status)

    def _write_overflow(self, entries: list[dict[str, Any]]) -> None:
        """Mailbox entries beyond one transaction; idempotent, so a redelivery repairs them."""
        for start in range(0, len(entries), 25):
            request: dict[str, Any] = {self._table: [{"PutRequest": {"Item": e}} for e in entries[start : start + 25]]}
            try:
                while request:
                    request = self._dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems", {})
            except AWS_ERRORS as exc:
                raise storage_error("DynamoDB BatchWriteItem", exc) from exc

    def _register(self, addresses: list[str], known: dict[str, int | None], item: dict[str, Any]) -> None:
        """Each mailbox in the register (``GET /mailboxes``), written only when it is new or would expire first.

        How this scales: a mail costs one BatchGetItem of its recipients' register
        items (made while its objects are written), each in its own partition
        (``mailbox#ADDRESS``), never one shared partition per mail. Only a mailbox
        seen for the first time (or, with a retention, about once per half
        retention) is written, and those writes spread over ``MAILBOX_SHARDS``
        index partitions. After either answer of the commit, like the overflow,
        so a redelivery repairs a lost one.
        """
        # The register item outlives this mail by up to half a retention, so it is written again only when a
        # mail arrives that would outlive it: the mailbox stays listed while it holds mail, and a little after.
        due = int(item[schema.EXPIRES_AT]["N"]) if schema.EXPIRES_AT in item else None
        expires = None if due is None else due + self._retention // 2
        stale = [address for address in dict.fromkeys(addresses) if address not in known or _due(known[address], due)]
        self._write_overflow([_register_entry(address, expires) for address in stale])

    def _registered(self, addresses: list[str]) -> dict[str, int | None]:
        """The register's items among these addresses, each with its expiry (None: never)."""
        keys = [schema.mailbox_key(address) for address in dict.fromkeys(addresses)]
        return {
            entry[schema.ORDER]["S"]: int(entry[schema.EXPIRES_AT]["N"]) if schema.EXPIRES_AT in entry else None
            for entry in self._batch_get(keys, (schema.ORDER, schema.EXPIRES_AT))
        }

    def _stored_head(self, id_: str) -> dict[str, Any]:
        """The stored mail's prefix, handoff status and commit token, after its condition failed."""
        try:
            stored: dict[str, Any] | None = self._dynamodb.get_item(
                TableName=self._table,
                Key=schema.mail_key(id_),
                ProjectionExpression="#p, #s, #t",
                ExpressionAttributeNames={"#p": schema.PREFIX, "#s": schema.STATUS, "#t": schema.COMMIT_TOKEN},
                ConsistentRead=True,
            ).get("Item")
        except AWS_ERRORS as exc:
            raise storage_error("DynamoDB GetItem", exc) from exc
        if stored is None:
            # Refused as stored, yet not there (removed in between): never answer
            # that as stored; the provider's retry stores it again.
            raise StorageUnavailableError("DynamoDB refused the mail as stored but does not have it")
        return stored

    def _forget(self, delivery: _Delivery, mail: InboundMail) -> None:
        """Remove what a duplicate delivery under other bytes wrote; the first delivery's objects stay."""
        prefix = delivery.prefix
        keys = [schema.document_object(prefix)] + ([schema.raw_object(prefix)] if delivery.own_raw else [])
        keys += [schema.attachment_object(prefix, a.index) for a in mail.attachments]
        try:
            self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
        except AWS_ERRORS as exc:
            # The mail is stored; an orphan object is only waste, never wrong data.
            log.warning("could not remove a duplicate delivery's objects (%s)", type(exc).__name__)

    def use_once(self, kind: str, value: str, fingerprint: str, expires_at: int) -> bool:
        """Remember ``value`` until ``expires_at`` (unix seconds, DynamoDB's TTL); False if used for other bytes.

        The same value with the same fingerprint again is allowed: that is the
        sender retrying the one request, which the mail's id makes harmless.
        """
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={**schema.once_key(kind, value), schema.FINGERPRINT: {"S": fingerprint},
                      schema.EXPIRES_AT: {"N": str(expires_at)}},
                ConditionExpression="attribute_not_exists(pk) OR #f = :f",
                ExpressionAttributeNames={"#f": schema.FINGERPRINT},
                ExpressionAttributeValues={":f": {"S": fingerprint}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise storage_error("DynamoDB PutItem", exc) from exc
        except AWS_ERRORS as exc:
            raise storage_error("DynamoDB PutItem", exc) from exc
        return True

    def quarantine(self, raw: bytes, content_type: str, reason: str, received: datetime) -> str:
        """Keep an unreadable body aside for an operator; returns its key."""
        key = schema.quarantine_object(received, hashlib.sha256(raw).hexdigest())
        self._put(
            key, raw, "application/octet-stream",
            Metadata={"original-content-type": _metadata(content_type), "reason": _metadata(reason)},
        )
        return key

    def quarantine_copy(self, key: str, reason: str, received: datetime) -> str:
        """Keep an unreadable object that is already in the bucket aside, by a copy inside S3."""
        target = schema.quarantine_object(received, key.rsplit("/", 1)[-1])
        try:
            self._s3.copy_object(
                Bucket=self._bucket, Key=target, CopySource={"Bucket": self._bucket, "Key": key},
                MetadataDirective="REPLACE", ContentType="application/octet-stream",
                Metadata={"original-key": _metadata(key), "reason": _metadata(reason)},
            )
        except AWS_ERRORS as exc:
            raise storage_error("S3 CopyObject", exc) from exc
        return target

def _mailbox_entry(item: dict[str, Any], address: str) -> dict[str, Any]:
    box = schema.box(address)
    entry = {
        schema.PK: item[schema.PK],
        schema.SK: {"S": box},
        schema.ID: item[schema.ID],
        schema.BOX: {"S": schema.box_key(box, item[schema.ID]["S"])},
        schema.ORDER: item[schema.ORDER],
        schema.SUMMARY: item[schema.SUMMARY],
    }
    if schema.EXPIRES_AT in item:
        entry[schema.EXPIRES_AT] = item[schema.EXPIRES_AT]
    return entry


def _due(expiry: int | None, due: int | None) -> bool:
    """A register item to write again: it would expire before this mail, or the retention changed."""
    if due is None:
        return expiry is not None
    return expiry is None or expiry < due


def _register_entry(address: str, expires: int | None) -> dict[str, Any]:
    entry = {
        **schema.mailbox_key(address),
        schema.BOX: {"S": schema.mailbox_shard(address)},
        schema.ORDER: {"S": address},
    }
    if expires is not None:
        entry[schema.EXPIRES_AT] = {"N": str(expires)}
    return entry


def _condition_failed(exc: ClientError) -> bool:
    if error_code(exc) != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
