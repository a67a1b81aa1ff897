"""The handoff's state, kept on the mail's own DynamoDB item: every change one conditional update."""

from __future__ import annotations

import json
import re
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
_NAMES = {"#s": schema.STATUS, "#l": schema.LEASE_UNTIL, "#a": schema.ATTEMPTS, "#e": schema.LAST_ERROR}
_STATUSES = {
    ":pending": {"S": schema.PENDING}, ":processing": {"S": schema.PROCESSING}, ":failed": {"S": schema.FAILED},
    ":bounced": {"S": schema.BOUNCED},
}
# A claim may take a pending mail, or one whose last attempt died holding its lease.
_CLAIMABLE = "#s = :pending OR (#s = :processing AND #l < :now)"


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

    def _update(self, mail_id: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional update; False when its condition did not hold."""
        # DynamoDB refuses a placeholder an expression does not use: exactly the used ones are sent.
        used = set(_PLACEHOLDER.findall(f"{expression} {condition}"))
        try:
            self._dynamodb.update_item(
                TableName=self._table, Key=schema.mail_key(mail_id), UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={name: _NAMES[name] for name in used if name.startswith("#")},
                ExpressionAttributeValues={
                    name: values[name] if name in values else _STATUSES[name] for name in used if name.startswith(":")
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailableError("DynamoDB UpdateItem failed") from exc
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB UpdateItem failed") from exc
        return True

    def status(self, mail_id: str) -> str | None:
        """The mail's handoff status; None when it is not tracked."""
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key=schema.mail_key(mail_id), ProjectionExpression="#s",
                ExpressionAttributeNames={"#s": schema.STATUS}, ConsistentRead=True,
            ).get("Item")
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("DynamoDB GetItem failed") from exc
        if item is None:
            raise NotFoundError("no mail with that id")
        return item[schema.STATUS]["S"] if schema.STATUS in item else None

    def claim(self, mail_id: str, now: datetime) -> bool:
        """Processing, with a lease, and one more attempt; False when another consumer has it or it is done."""
        return self._update(
            mail_id, "SET #s = :processing, #l = :until ADD #a :one", _CLAIMABLE,
            {":one": {"N": "1"}, ":until": {"S": (now + LEASE).isoformat()}, ":now": {"S": now.isoformat()}},
        )

    def finish(self, mail_id: str, status: str, error: str | None = None) -> None:
        """The attempt's end: delivered, bounced, failed, or pending again for the next attempt."""
        values: dict[str, Any] = {":status": {"S": status}}
        expression = "SET #s = :status REMOVE #l"
        if error is not None:
            expression = "SET #s = :status, #e = :error REMOVE #l"
            values[":error"] = {"S": error}
        self._update(mail_id, expression, "#s = :processing", values)

    def exhaust(self, mail_id: str, now: datetime) -> None:
        """Failed, if the last attempt left the mail pending or died holding its lease; else as it is."""
        error = json.dumps(
            {"class": "AttemptsExhausted", "message": "the last attempt ended without an answer", "route": None}
        )
        self._update(
            mail_id, "SET #s = :failed, #e = :error REMOVE #l", _CLAIMABLE,
            {":error": {"S": error}, ":now": {"S": now.isoformat()}},
        )

    def requeue(self, mail_id: str, now: datetime) -> bool:
        """A failed or bounced mail back to pending with no attempts, for another round.

        So is one whose last attempt died with its lease (a crash or a Lambda
        timeout leaves it ``processing`` while its message goes to the dead letters).
        """
        return self._update(
            mail_id, "SET #s = :pending, #a = :zero REMOVE #l",
            "#s IN (:failed, :bounced) OR (#s = :processing AND #l < :now)",
            {":zero": {"N": "0"}, ":now": {"S": now.isoformat()}},
        )
