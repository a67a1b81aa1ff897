"""Mailgun's webhook signature: HMAC-SHA256, keyed by the webhook signing key, over ``timestamp`` + ``token``.

The three values are form fields (Mailgun puts them in the body, not in
headers), so the form is split before they can be read; nothing of the mail is
decoded before they verify. The signature does not cover the body: a captured
``(timestamp, token, signature)`` would sign any body, so each token is used
once (the caller remembers it) and the timestamp must be within the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from chalicelib.constant_time import matches_any
from chalicelib.errors import AuthenticationError

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
# Mailgun's tokens are 50 characters; anything far longer is not one of them.
MAX_TOKEN_CHARS = 256


def sign(key: str, timestamp: str, token: str) -> str:
    """The signature Mailgun writes: lower-case hex."""
    return hmac.new(key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A verified signature: the token to remember, and until when (unix seconds) it could be replayed."""

    token: str
    replayable_until: int


def verify(
    keys: tuple[str, ...], timestamp: str | None, token: str | None, signature: str | None, now: float, tolerance: int
) -> Signed:
    """Return when one of ``keys`` signed ``timestamp + token`` within ``tolerance`` seconds of ``now``; else 401."""
    if not timestamp or not token or not signature:
        raise AuthenticationError("signature missing")
    if _TIMESTAMP.fullmatch(timestamp) is None:
        raise AuthenticationError("signature timestamp malformed")
    # "Inside the window" rather than "outside it", so that a NaN now refuses.
    if not (now - tolerance <= int(timestamp) <= now + tolerance):
        raise AuthenticationError("signature timestamp outside tolerance")
    if len(token) > MAX_TOKEN_CHARS or _SIGNATURE.fullmatch(signature) is None:
        raise AuthenticationError("signature malformed")
    # Every key is tried, each compared in constant time: which key matched does not show.
    if not matches_any(signature.lower(), [sign(key, timestamp, token) for key in keys]):
        raise AuthenticationError("signature invalid")
    return Signed(token, int(timestamp) + tolerance)
