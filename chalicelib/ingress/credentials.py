"""Who may post mail: a key and secret pair, as SendGrid's ``MailKey``/``MailSecret`` query or HTTP Basic.

HTTP Basic is preferred: API Gateway logs query strings, not headers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from chalicelib.constant_time import matches_any
from chalicelib.errors import AuthenticationError, NotConfiguredError


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
    if not matches_any(f"{pair[0]}\x00{pair[1]}", [f"{k}\x00{s}" for k, s in accepted]):
        raise AuthenticationError("credentials wrong")
    return pair[0]
