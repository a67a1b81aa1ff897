"""The handoff's state, kept on the mail's own DynamoDB item: every change one conditional transaction.

The transaction moves the status on the mail item, under its condition, and
with it the ``by_status`` index key (``schema.status_box``) of the item and of
each mailbox entry that carries one: all of them or none, so a listing by
status never shows a mail under a status it has left.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import NotFoundError, StorageUnavailableError
from chalicelib.storage import schema
from chalicelib.storage.boto import AWS_ERRORS, error_code

# A handler that has not finished in this time is taken to have crashed; it is
# above the consumer Lambda's timeout, so a live attempt is never taken over.
LEASE = timedelta(minutes=5)
ERROR_MESSAGE_CHARS = 500

_PLACEHOLDER = re.compile(r"[#:][a-z]+")
_NAMES = {
    "#s": schema.STATUS, "#l": schema.LEASE_UNTIL, "#a": schema.ATTEMPTS, "#e": schema.LAST_ERROR,
    "#x": schema.STATUS_BOX, "#t": schema.LEDGER_TOKEN, "#r": schema.ROUND,
}
_STATUSES = {
    ":pending": {"S": schema.PENDING}, ":processing": {"S": schema.PROCESSING}, ":failed": {"S": schema.FAILED},
    ":bounced": {"S": schema.BOUNCED},
}
# A claim may take a pending mail, or one whose last attempt died holding its lease.
_CLAIMABLE = "(#s = :pending OR (#s = :processing AND #l < :now))"


def error_record(exc: BaseException, route: str | None) -> str:
    """What is kept of a handler's error: its class and message, never a traceback that would quote the mail."""
    return json.dumps(
        {"class": type(exc).__name__, "message": str(exc)[:ERROR_MESSAGE_CHARS], "route": route},
        ensure_ascii=False,
    )


class Ledger:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def _update(self, mail_id: str, status: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        """The move to ``status``, with the index keys; False when its condition did not hold."""
        token = uuid.uuid4().hex
        expression = _indexed(expression, status).replace("SET ", "SET #t = :token, ", 1)
        listed = schema.status_box(status, schema.ALL_MAILBOX, mail_id)
        values = {**values, ":box": {"S": listed}, ":token": {"S": token}}
        # DynamoDB refuses a placeholder an expression does not use: exactly the used ones are sent.
        used = set(_PLACEHOLDER.findall(f"{expression} {condition}"))
        mail = {
            "TableName": self._table, "Key": schema.mail_key(mail_id), "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {name: _NAMES[name] for name in used if name.startswith("#")},
            "ExpressionAttributeValues": {
                name: values[name] if name in values else _STATUSES[name] for name in used if name.startswith(":")
            },
        }
        actions = [{"Update": mail}] + [{"Update": self._entry(mail_id, box, status)} for box in self._boxes(mail_id)]
        try:
            # The token makes botocore's retry of a transaction whose answer was lost a success, not a refusal.
            self._dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=token)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise StorageUnavailableError("DynamoDB TransactWriteItems failed") from exc
            reasons = exc.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                # An emulator refuses the retry of our own transaction instead: the item's mark tells.
                return self._marked(mail_id, token)
            raise StorageUnavailableError("DynamoDB TransactWriteItems was cancelled") from exc
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB TransactWriteItems failed") from exc
        return True

    def _marked(self, mail_id: str, token: str) -> bool:
        """Whether the item carries this move's token: our own write, whose answer was lost."""
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key=schema.mail_key(mail_id), ProjectionExpression="#t",
                ExpressionAttributeNames={"#t": schema.LEDGER_TOKEN}, ConsistentRead=True,
            ).get("Item") or {}
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB GetItem failed") from exc
        return bool(item.get(schema.LEDGER_TOKEN, {}).get("S") == token)

    def _boxes(self, mail_id: str) -> list[str]:
        """The mailbox entries listed by status (those of the commit's transaction): their sort keys."""
        request: dict[str, Any] = {
            "TableName": self._table, "ConsistentRead": True,
            "KeyConditionExpression": "#p = :p AND begins_with(#k, :to)",
            "FilterExpression": "attribute_exists(#x)", "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#p": schema.PK, "#k": schema.SK, "#x": schema.STATUS_BOX},
            "ExpressionAttributeValues": {
                ":p": schema.mail_key(mail_id)[schema.PK], ":to": {"S": schema.MAILBOX_PREFIX},
            },
        }
        boxes: list[str] = []
        try:
            while True:
                response = self._dynamodb.query(**request)
                boxes += [item[schema.SK]["S"] for item in response.get("Items", [])]
                if "LastEvaluatedKey" not in response:
                    return boxes
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB Query failed") from exc

    def _entry(self, mail_id: str, box: str, status: str) -> dict[str, Any]:
        """A mailbox entry's index key moved along; never an entry made anew (TTL may have removed it)."""
        listed = status in schema.LISTED_STATUSES
        update: dict[str, Any] = {
            "TableName": self._table, "Key": {**schema.mail_key(mail_id), schema.SK: {"S": box}},
            "UpdateExpression": "SET #x = :box" if listed else "REMOVE #x",
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": {"#x": schema.STATUS_BOX, "#k": schema.SK},
        }
        if listed:
            update["ExpressionAttributeValues"] = {":box": {"S": schema.status_box(status, box, mail_id)}}
        return update

    def state(self, mail_id: str) -> tuple[str | None, str | None]:
        """The mail's handoff status (None when it is not tracked) and its round (None for the first)."""
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key=schema.mail_key(mail_id), ProjectionExpression="#s, #r",
                ExpressionAttributeNames={"#s": schema.STATUS, "#r": schema.ROUND}, ConsistentRead=True,
            ).get("Item")
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB GetItem failed") from exc
        if item is None:
            raise NotFoundError("no mail with that id")
        return (
            item[schema.STATUS]["S"] if schema.STATUS in item else None,
            item[schema.ROUND]["S"] if schema.ROUND in item else None,
        )

    def claim(self, mail_id: str, now: datetime, round_id: str | None) -> bool:
        """Processing, with a lease, and one more attempt; False when another consumer has it, it is done, or
        the message is of an earlier round."""
        condition, values = _of_round(_CLAIMABLE, round_id)
        return self._update(
            mail_id, schema.PROCESSING, "SET #s = :processing, #l = :until ADD #a :one", condition,
            {**values, ":one": {"N": "1"}, ":until": {"S": (now + LEASE).isoformat()}, ":now": {"S": now.isoformat()}},
        )

    def finish(self, mail_id: str, status: str, error: str | None = None) -> None:
        """The attempt's end: delivered, bounced, failed, or pending again for the next attempt."""
        values: dict[str, Any] = {":status": {"S": status}}
        expression = "SET #s = :status REMOVE #l"
        if error is not None:
            expression = "SET #s = :status, #e = :error REMOVE #l"
            values[":error"] = {"S": error}
        self._update(mail_id, status, expression, "#s = :processing", values)

    def exhaust(self, mail_id: str, now: datetime, round_id: str | None) -> bool:
        """Failed, if this round's last attempt left the mail pending or died holding its lease; else as it is
        (False)."""
        error = json.dumps(
            {"class": "AttemptsExhausted", "message": "the last attempt ended without an answer", "route": None}
        )
        condition, values = _of_round(_CLAIMABLE, round_id)
        return self._update(
            mail_id, schema.FAILED, "SET #s = :failed, #e = :error REMOVE #l", condition,
            {**values, ":error": {"S": error}, ":now": {"S": now.isoformat()}},
        )

    def requeue(self, mail_id: str, now: datetime) -> str | None:
        """A failed or bounced mail back to pending with no attempts, for a new round: its id, or None when the
        mail is in no state to retry.

        So is one whose last attempt died with its lease (a crash or a Lambda
        timeout leaves it ``processing`` while its message goes to the dead letters).
        The earlier rounds' messages still on the queue are spent from then on: the
        receive past a round's last attempt would otherwise fail the new round.
        """
        round_id = uuid.uuid4().hex
        moved = self._update(
            mail_id, schema.PENDING, "SET #s = :pending, #a = :zero, #r = :round REMOVE #l",
            "#s IN (:failed, :bounced) OR (#s = :processing AND #l < :now)",
            {":zero": {"N": "0"}, ":now": {"S": now.isoformat()}, ":round": {"S": round_id}},
        )
        return round_id if moved else None


def _of_round(condition: str, round_id: str | None) -> tuple[str, dict[str, Any]]:
    """The condition, held only for the mail's current round: the one a message carries, or the first."""
    if round_id is None:
        return f"{condition} AND attribute_not_exists(#r)", {}
    return f"{condition} AND #r = :round", {":round": {"S": round_id}}


def _indexed(expression: str, status: str) -> str:
    """The update, with the mail item's ``by_status`` key set to ``:box`` (a listed status) or removed."""
    if status in schema.LISTED_STATUSES:
        return expression.replace("SET ", "SET #x = :box, ", 1)
    if "REMOVE " in expression:
        return expression.replace("REMOVE ", "REMOVE #x, ", 1)
    return expression + " REMOVE #x"
