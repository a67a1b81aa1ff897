"""MailReads: a stored mail read back, as the read API and the handoff need it; an expired mail is gone already.

The write half, ``MailStore``, is built on it (``store.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import NotFoundError, PayloadTooLargeError
from chalicelib.storage import schema
from chalicelib.storage.boto import AWS_ERRORS, PARALLEL_QUERIES, error_code, pool, storage_error

PRESIGNED_SECONDS = 300
# An original stored as this type is a message itself (SES's); any other is a provider's request.
MESSAGE_TYPE = "message/rfc822"


@dataclass(frozen=True)
class ObjectRef:
    """A stored object to hand out: its key, size and the media type it was stored with."""

    key: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Mailboxes:
    addresses: list[str]
    # The last address examined when more may follow; None at the end.
    last: str | None


# How many register items one listing request may examine before it answers a
# short page with a cursor: a narrow scope cannot make one request read them all.
MAX_EXAMINED = 1000


@dataclass(frozen=True)
class Page:
    summaries: list[dict[str, Any]]
    # The index key of the page's last mail when more follow; None on the last page.
    last: dict[str, str] | None


class MailReads:
    def __init__(self, s3: Any, dynamodb: Any, bucket: str, table: str) -> None:
        self._s3 = s3
        self._dynamodb = dynamodb
        self._bucket = bucket
        self._table = table

    def read_key(self, key: str, limit: int) -> bytes:
        """An object's bytes, refused past ``limit`` before they are read."""
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise NotFoundError("the stored message is missing") from exc
            raise storage_error("S3 GetObject", exc) from exc
        except AWS_ERRORS as exc:
            raise storage_error("S3 GetObject", exc) from exc
        if response["ContentLength"] > limit:
            response["Body"].close()
            raise PayloadTooLargeError(f"the stored message exceeds {limit} bytes")
        try:
            data: bytes = response["Body"].read()
        except AWS_ERRORS as exc:
            raise storage_error("S3 GetObject", exc) from exc
        return data

    def _item(self, id_: str) -> dict[str, Any]:
        names = (
            schema.DOC, schema.DOC_KEY, schema.PREFIX, schema.RAW_KEY, schema.RAW_CONTENT_TYPE, schema.RAW_SIZE,
            schema.STATUS, schema.ATTEMPTS, schema.LAST_ERROR, schema.EXPIRES_AT,
        )
        try:
            item = self._dynamodb.get_item(
                TableName=self._table,
                Key=schema.mail_key(id_),
                # Placeholders for every name: "status" and "prefix" are DynamoDB reserved words.
                ProjectionExpression=", ".join(f"#a{n}" for n in range(len(names))),
                ExpressionAttributeNames={f"#a{n}": name for n, name in enumerate(names)},
            ).get("Item")
        except AWS_ERRORS as exc:
            raise storage_error("DynamoDB GetItem", exc) from exc
        if item is None or _expired(item):
            raise NotFoundError("no mail with that id")
        return dict(item)

    def _get(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except AWS_ERRORS as exc:
            raise storage_error("S3 GetObject", exc) from exc
        return body

    def _document(self, item: dict[str, Any]) -> dict[str, Any]:
        text = item[schema.DOC]["S"] if schema.DOC in item else self._get(item[schema.DOC_KEY]["S"]).decode("utf-8")
        document: dict[str, Any] = json.loads(text)
        return document

    def document(self, id_: str) -> dict[str, Any]:
        """The stored mail's JSON, with its handoff state under ``processing`` (null when untracked)."""
        item = self._item(id_)
        document = self._document(item)
        document["processing"] = None
        if schema.STATUS in item:
            error = item.get(schema.LAST_ERROR)
            document["processing"] = {
                "status": item[schema.STATUS]["S"],
                "attempts": int(item[schema.ATTEMPTS]["N"]),
                "error": json.loads(error["S"]) if error else None,
            }
        return document

    def read(self, ref: ObjectRef) -> bytes:
        return self._get(ref.key)

    def link(self, ref: ObjectRef, content_type: str, disposition: str) -> str:
        """A presigned GET link, valid for minutes, whose answer carries this type and disposition."""
        params: dict[str, Any] = {
            "Bucket": self._bucket, "Key": ref.key, "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        try:
            url: str = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=PRESIGNED_SECONDS)
        except AWS_ERRORS as exc:
            raise storage_error("S3 presign", exc) from exc
        return url

    def raw(self, id_: str) -> ObjectRef:
        item = self._item(id_)
        return ObjectRef(item[schema.RAW_KEY]["S"], int(item[schema.RAW_SIZE]["N"]), item[schema.RAW_CONTENT_TYPE]["S"])

    def attachment(self, id_: str, index: int) -> tuple[ObjectRef, dict[str, Any]]:
        """The attachment's object, and its entry in the document (name, disposition …)."""
        item = self._item(id_)
        for attachment in self._document(item)["attachments"]:
            if attachment["index"] == index:
                key = schema.attachment_object(item[schema.PREFIX]["S"], index)
                return ObjectRef(key, attachment["size"], attachment["content_type"]), attachment
        raise NotFoundError("no attachment with that index")

    def list_mails(self, mailbox: str | None, limit: int, after: dict[str, str] | None) -> Page:
        """One page of a mailbox (or of all mail when None), newest first, through the ``by_box`` index."""
        keys = schema.box_keys(schema.box(mailbox))
        return self._page(schema.INDEX, schema.BOX, keys, schema.INDEX_KEY, limit, after)

    def list_status(self, status: str, mailbox: str | None, limit: int, after: dict[str, str] | None) -> Page:
        """One page of the mail in a handoff status (of one mailbox, or of all mail), newest first.

        Through the sparse ``by_status`` index: only mail in a listed status is in it.
        """
        keys = schema.status_boxes(status, schema.box(mailbox))
        return self._page(schema.STATUS_INDEX, schema.STATUS_BOX, keys, schema.STATUS_INDEX_KEY, limit, after)

    def _page(
        self, index: str, attribute: str, keys: list[str], key: tuple[str, ...], limit: int,
        after: dict[str, str] | None,
    ) -> Page:
        """The newest ``limit`` mails of every partition in ``keys`` (a key's shards), merged.

        A listing's ``order`` values (``{received_at}#{id}``) are unique and
        sort alike in every shard, so the page after one ends is every shard's
        mail older than its last: a cursor is one index key, whichever shard it
        came from, and a cursor issued before the shards still continues.
        """
        condition = "#box = :box" + (" AND #order < :after" if after is not None else "")
        names = {"#box": attribute, **({"#order": schema.ORDER} if after is not None else {})}

        def query(value: str) -> list[dict[str, Any]]:
            values = {":box": {"S": value}, **({":after": {"S": after[schema.ORDER]}} if after is not None else {})}
            request: dict[str, Any] = {
                "TableName": self._table, "IndexName": index, "KeyConditionExpression": condition,
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ScanIndexForward": False,
                # One more than asked tells whether another page exists, so the
                # last page's cursor is null rather than pointing at nothing.
                "Limit": limit + 1,
            }
            return self._query(request, limit + 1)

        # The shards PARALLEL_QUERIES at a time: a page waits for a few round trips, not one per shard.
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), PARALLEL_QUERIES):
            for items_of_shard in pool().map(query, keys[start : start + PARALLEL_QUERIES]):
                found += items_of_shard
        items = sorted(found, key=lambda item: item[schema.ORDER]["S"], reverse=True)[: limit + 1]
        page = items[:limit]
        # Expired entries are in the index until TTL removes them: left out here,
        # so a page may be shorter than asked (its cursor still continues).
        visible = [item for item in page if not _expired(item)]
        last = {name: page[-1][name]["S"] for name in key} if len(items) > limit else None
        return Page([json.loads(item[schema.SUMMARY]["S"]) for item in visible], last)

    def statuses(self, ids: list[str]) -> dict[str, str]:
        """The handoff status of each tracked mail among ``ids``: a listing shows it, and the summaries cannot
        hold it, as they are written once and the status changes."""
        keys = [schema.mail_key(id_) for id_ in dict.fromkeys(ids)]
        return {
            item[schema.ID]["S"]: item[schema.STATUS]["S"]
            for item in self._batch_get(keys, (schema.ID, schema.STATUS))
            if schema.STATUS in item
        }

    def _batch_get(self, keys: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
        """The items of these (distinct) keys that exist, with the named attributes: BatchGetItem, 100 keys a call,
        asked again for the keys DynamoDB leaves unprocessed."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):  # BatchGetItem's bound
            request: dict[str, Any] = {self._table: {
                "Keys": keys[start : start + 100],
                # Placeholders for every name: "status" is a DynamoDB reserved word.
                "ProjectionExpression": ", ".join(f"#a{n}" for n in range(len(names))),
                "ExpressionAttributeNames": {f"#a{n}": name for n, name in enumerate(names)},
            }}
            try:
                while request:
                    response = self._dynamodb.batch_get_item(RequestItems=request)
                    found += response.get("Responses", {}).get(self._table, [])
                    request = response.get("UnprocessedKeys") or {}
            except AWS_ERRORS as exc:
                raise storage_error("DynamoDB BatchGetItem", exc) from exc
        return found

    def list_mailboxes(self, limit: int, after: str | None, visible: Callable[[str], bool]) -> Mailboxes:
        """One page of the mailbox register in address order, only the ``visible`` ones.

        The register is spread over ``MAILBOX_SHARDS`` index partitions; a page
        is their merge. Each shard is read from ``after`` on; what all shards
        have surely given (up to the smallest last address of a shard that has
        more) is in order, and the walk goes on from there.
        """
        found: list[str] = []
        examined = 0
        while True:
            sorted_part, bound = self._merged(after, limit + 1)
            for address, expired in sorted_part:
                examined += 1
                after = address
                if not expired and visible(address):
                    found.append(address)
                    if len(found) == limit:
                        more = bound is not None or address != sorted_part[-1][0]
                        return Mailboxes(found, address if more else None)
            if bound is None:
                return Mailboxes(found, None)
            if examined >= MAX_EXAMINED:
                return Mailboxes(found, after)

    def _merged(self, after: str | None, per_shard: int) -> tuple[list[tuple[str, bool]], str | None]:
        """The shards' next addresses, merged, with whether each expired; and the bound below which the merge is
        complete, None when every shard was read to its end."""
        merged: list[tuple[str, bool]] = []
        bounds: list[str] = []
        for shard in range(schema.MAILBOX_SHARDS):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": schema.INDEX,
                "KeyConditionExpression": "#box = :box",
                "ExpressionAttributeNames": {"#box": schema.BOX},
                "ExpressionAttributeValues": {":box": {"S": schema.mailbox_partition(shard)}},
                "Limit": per_shard,
            }
            if after is not None:
                request["KeyConditionExpression"] += " AND #order > :after"
                request["ExpressionAttributeNames"]["#order"] = schema.ORDER
                request["ExpressionAttributeValues"][":after"] = {"S": after}
            try:
                response = self._dynamodb.query(**request)
            except AWS_ERRORS as exc:
                raise storage_error("DynamoDB Query", exc) from exc
            items = response.get("Items", [])
            merged += [(item[schema.ORDER]["S"], _expired(item)) for item in items]
            if "LastEvaluatedKey" in response and items:
                bounds.append(items[-1][schema.ORDER]["S"])
        bound = min(bounds) if bounds else None
        complete = sorted(entry for entry in merged if bound is None or entry[0] <= bound)
        return complete, bound

    def _query(self, request: dict[str, Any], wanted: int) -> list[dict[str, Any]]:
        """Items of a query until ``wanted`` or its end: one call reads at most 1 MB."""
        items: list[dict[str, Any]] = []
        try:
            while len(items) < wanted:
                response = self._dynamodb.query(**request)
                items += response.get("Items", [])
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except AWS_ERRORS as exc:
            raise storage_error("DynamoDB Query", exc) from exc
        return items


def _expired(item: dict[str, Any]) -> bool:
    return schema.EXPIRES_AT in item and int(item[schema.EXPIRES_AT]["N"]) <= time.time()
