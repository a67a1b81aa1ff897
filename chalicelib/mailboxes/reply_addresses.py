"""Reply addresses no one can guess: ``reply+THREAD.SIG@domain``, SIG an HMAC over the thread and its correspondent.

The application mints one address per thread and correspondent with
``reply_address`` and sends its notification from it (or with it as
Reply-To); only that correspondent's reply verifies, and only to that thread.
SIG is 80 bits of HMAC-SHA256 under ``REPLY_SECRET``, so that the local part
stays within SMTP's 64 characters; THREAD is at most 30 characters of
``a-z 0-9 _ -`` (mail systems may change the local part's case, so it is
compared lower-cased).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from chalicelib.errors import NotConfiguredError

THREAD = re.compile(r"[a-z0-9_-]{1,30}")
_ADDRESS = re.compile(r"reply\+([a-z0-9_-]{1,30})\.([a-z2-7]{16})@[^@\s]+")
SIG_CHARS = 16  # base32: 80 bits


def _sig(secret: str, thread: str, correspondent: str) -> str:
    message = f"reply\x00{thread.lower()}\x00{correspondent.strip().lower()}".encode("utf-8", "surrogatepass")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:SIG_CHARS].lower()


def reply_address(secret: str, thread: str, correspondent: str, domain: str) -> str:
    """The address to send a thread's notification from, so that this correspondent's reply joins it."""
    if not secret:
        raise NotConfiguredError("REPLY_SECRET is not set")
    if not THREAD.fullmatch(thread.lower()):
        raise ValueError("a thread is 1 to 30 characters of a-z, 0-9, _ and -")
    return f"reply+{thread.lower()}.{_sig(secret, thread, correspondent)}@{domain}"


def parse(address: str) -> tuple[str, str] | None:
    """(thread, sig) of a reply address, lower-cased; None for anything else."""
    match = _ADDRESS.fullmatch(address.strip().lower())
    return (match.group(1), match.group(2)) if match else None


def verifies(secret: str, thread: str, sig: str, sender: str) -> bool:
    """Was this thread's address minted for this sender?"""
    return hmac.compare_digest(sig.encode("ascii", "replace"), _sig(secret, thread, sender).encode("ascii"))
