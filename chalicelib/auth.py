"""Who may post mail (ingest credentials) and who may read it (bearer tokens).

Every comparison runs over every configured value with ``hmac.compare_digest``
on fixed-length digests and never returns early, so neither the key name, the
position of the matching pair nor the length of a guess shows in the timing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from chalicelib.errors import AuthenticationError, NotConfiguredError


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _matches_any(presented: str, accepted: list[str]) -> bool:
    wanted = _digest(presented)
    found = False
    for candidate in accepted:
        found |= hmac.compare_digest(wanted, _digest(candidate))
    return found


def presented_credentials(
    query: Mapping[str, str] | None, authorization: str | None
) -> tuple[str, str] | None:
    """The pair a request offers: SendGrid's ``MailKey``/``MailSecret`` query, else HTTP Basic."""
    if query and "MailKey" in query and "MailSecret" in query:
        return query["MailKey"], query["MailSecret"]
    if authorization:
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            key, sep, secret = decoded.partition(":")
            if sep:
                return key, secret
    return None


def check_ingest(
    accepted: tuple[tuple[str, str], ...],
    query: Mapping[str, str] | None,
    authorization: str | None,
) -> str:
    """The key of the matching pair; NotConfiguredError when none is configured (fail closed)."""
    if not accepted:
        raise NotConfiguredError("no ingest credentials are configured")
    pair = presented_credentials(query, authorization)
    if pair is None:
        raise AuthenticationError("credentials missing")
    # Key and secret are compared as one string so that a right key with a wrong
    # secret costs the same as a wrong key.
    if not _matches_any(f"{pair[0]}\x00{pair[1]}", [f"{k}\x00{s}" for k, s in accepted]):
        raise AuthenticationError("credentials wrong")
    return pair[0]


def check_bearer(accepted: tuple[str, ...], authorization: str | None) -> None:
    if not accepted:
        raise NotConfiguredError("no read tokens are configured")
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("bearer token missing")
    if not _matches_any(token.strip(), list(accepted)):
        raise AuthenticationError("bearer token wrong")
