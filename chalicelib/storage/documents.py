"""The stored mail as JSON: the whole document, and the summary a listing shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _ASCII_STRING
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
    """``json.dumps(document, ensure_ascii=False, separators=(",", ":"))``, the same text, faster."""
    try:
        return document_bytes(document).decode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: UTF-8 cannot hold it, json's text can
        return _COMPACT_JSON.encode(document)


def document_bytes(document: dict[str, Any]) -> bytes:
    """``document_json``'s text in UTF-8, as it is stored, made without encoding the bodies twice.

    The bodies are most of a document's text, and json's encoder escapes them
    slowly: each is escaped on its own, as UTF-8 (``_string_json``), and put
    where the document holds null for it. A JSON string cannot hold an
    unescaped quote, so ``"text":null`` occurring once is the top-level key.
    Raises UnicodeEncodeError for a lone surrogate, which UTF-8 cannot hold.
    """
    bodies = {name: value for name in _BODIES if isinstance(value := document.get(name), str)}
    encoded = _COMPACT_JSON.encode({**document, **dict.fromkeys(bodies)})
    holes: list[tuple[int, str, str]] = []
    for name, body in bodies.items():
        hole = f'"{name}":null'
        if encoded.count(hole) != 1:  # a nested object with a key of that name, also null
            return _COMPACT_JSON.encode(document).encode("utf-8")
        holes.append((encoded.index(hole), hole, body))
    pieces: list[bytes] = []
    start = 0
    for at, hole, body in sorted(holes):
        pieces += [encoded[start:at].encode("utf-8"), hole[:-4].encode("utf-8"), *_string_json(body)]
        start = at + len(hole)
    pieces.append(encoded[start:].encode("utf-8"))
    return b"".join(pieces)


# The control characters json escapes as \u00XX: rare in a body, so their presence sends it the slow way.
_RARE_CONTROLS = bytes(code for code in range(0x20) if chr(code) not in "\t\n\r")


def _string_json(text: str) -> tuple[bytes, ...]:
    """``json.dumps(text, ensure_ascii=False)`` in UTF-8, in pieces to be joined: the same bytes, faster for long
    bodies.

    ASCII text (but DEL, which json escapes only when told the text is ASCII)
    goes through json's ASCII escaper, its fastest. Any other text is encoded
    to UTF-8 once, and then needs only its quotes, backslashes, line ends and
    tabs escaped: no byte of a multi-byte UTF-8 sequence is one of them, and
    ``bytes.replace`` does it at memory speed where json's encoder looks at
    every character (a 200 KB HTML body with a dash in it: 0.65 ms against
    0.3 ms, encoding included). The quotes are pieces of their own: adding
    them to the body would copy it twice more, and copies of a large body
    cost more in a delivery than on their own (docs/design/performance.md).
    """
    if text.isascii() and "\x7f" not in text:
        return (_ASCII_STRING(text).encode("ascii"),)
    data = text.encode("utf-8")
    if len(data.translate(None, _RARE_CONTROLS)) != len(data):
        return (_COMPACT_JSON.encode(text).encode("utf-8"),)
    escaped = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return b'"', escaped.replace(b"\t", b"\\t"), b'"'


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
