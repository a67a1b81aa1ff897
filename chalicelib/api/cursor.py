"""Opaque, signed paging cursors for the listings (a mailbox, all mail, a handoff status).

A cursor carries the index key of the last mail on a page and the mailbox it
was issued for, signed with HMAC-SHA256. A cursor that we did not issue, that
was altered, or that belongs to another listing is refused, so a client can
never page into another mailbox or make DynamoDB read from a key of its choice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from chalicelib.errors import BadCursorError
from chalicelib.storage.schema import INDEX_KEY as _KEY_FIELDS

_MAX_CURSOR_CHARS = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:16]


def encode(secret: bytes, box: str, key: dict[str, str], fields: tuple[str, ...] = _KEY_FIELDS) -> str:
    """``fields`` names the index key's attributes, in order: the ``by_box`` index's unless told."""
    payload = json.dumps({"b": box, "k": [key[name] for name in fields]}, separators=(",", ":")).encode()
    return _b64(payload) + "." + _b64(_mac(secret, payload))


def decode(secret: bytes, box: str, cursor: str, fields: tuple[str, ...] = _KEY_FIELDS) -> dict[str, str]:
    """The index key the cursor continues after; BadCursorError for anything else."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise BadCursorError("cursor is not valid")
    body, _, mac = cursor.partition(".")
    try:
        payload = _unb64(body)
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise BadCursorError("cursor is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise BadCursorError("cursor is not valid")
    # Signed by us, so well formed; the mailbox is still checked.
    data = json.loads(payload)
    if data["b"] != box:
        raise BadCursorError("cursor belongs to another listing")
    return dict(zip(fields, data["k"], strict=True))
