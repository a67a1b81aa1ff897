"""SES's "Received" notification: what the stored object does not tell (recipients, verdicts, its key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import MalformedMailError

VERDICTS = ("spam", "virus", "spf", "dkim", "dmarc")


@dataclass(frozen=True)
class Notice:
    """What one SES "Received" notification tells about one message."""

    bucket: str
    key: str
    recipients: tuple[str, ...]
    sender: str | None
    verdicts: dict[str, str | None]


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_notice(body: str) -> Notice:
    """The SQS message body: SNS's envelope around SES's JSON, or SES's JSON itself (raw delivery)."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"])
    except ValueError:
        raise MalformedMailError("the notification is not JSON") from None
    if not isinstance(data, dict) or data.get("notificationType") != "Received":
        raise MalformedMailError("not an SES Received notification")
    receipt = _object(data.get("receipt"))
    action = _object(receipt.get("action"))
    bucket, key = action.get("bucketName"), action.get("objectKey")
    if action.get("type") != "S3" or not isinstance(bucket, str) or not isinstance(key, str):
        raise MalformedMailError("the notification names no S3 object")
    recipients = receipt.get("recipients")
    mail = _object(data.get("mail"))
    sender = mail.get("source")
    verdicts: dict[str, str | None] = {}
    for name in VERDICTS:
        verdict = receipt.get(f"{name}Verdict")
        status = verdict.get("status") if isinstance(verdict, dict) else None
        verdicts[name] = status.lower() if isinstance(status, str) else None
    return Notice(
        bucket=bucket,
        key=key,
        recipients=tuple(r for r in recipients if isinstance(r, str)) if isinstance(recipients, list) else (),
        sender=sender if isinstance(sender, str) else None,
        verdicts=verdicts,
    )
