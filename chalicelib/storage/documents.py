"""The stored mail as JSON: the whole document, and the summary a listing shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chalicelib.model import InboundMail

SUMMARY_TEXT_CHARS = 256
_BODIES = ("text", "html", "spam_report")
# Built once: json.dumps builds an encoder per call for any non-default argument.
# A document is a tree, so the encoder need not look for cycles.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_SUMMARY_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: sorts as text in time order."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def document(mail_id: str, received_at: str, mail: InboundMail, raw_size: int, raw_sha256: str) -> dict[str, Any]:
    """The contract's JSON of a stored mail, but for ``processing``, which the read adds."""
    return {
        "id": mail_id, "received_at": received_at, **mail.to_dict(), "raw_size": raw_size, "raw_sha256": raw_sha256,
    }


def document_json(document: dict[str, Any]) -> str:
    """``json.dumps(document, ensure_ascii=False, separators=(",", ":"))``, the same text, faster.

    json's encoder escapes a string faster when told it is ASCII, with the same
    output for ASCII text. So ASCII bodies are encoded on their own and put
    back where the document holds null for them: a JSON string cannot hold an
    unescaped quote, so ``"text":null`` occurring once is the top-level key.
    """
    bodies = {name: value for name in _BODIES if isinstance(value := document.get(name), str)}
    # DEL is ASCII, but json escapes it only when told the text is ASCII.
    if not all(body.isascii() and "\x7f" not in body for body in bodies.values()):
        # Non-ASCII bodies are most of the text, and splicing into it costs more than it saves.
        return _COMPACT_JSON.encode(document)
    encoded = _COMPACT_JSON.encode({**document, **dict.fromkeys(bodies)})
    for name, body in bodies.items():
        hole = f'"{name}":null'
        if encoded.count(hole) != 1:  # a nested object with a key of that name, also null
            return _COMPACT_JSON.encode(document)
        encoded = encoded.replace(hole, f'"{name}":{json.dumps(body)}')
    return encoded


def summary_json(document: dict[str, Any]) -> str:
    """What a listing shows of a mail, kept on the item and on each mailbox entry."""
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
