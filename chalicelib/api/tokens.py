"""Who may read mail, and which: ``Authorization: Bearer TOKEN``, one of the configured read tokens, and its scope.

A scoped token (``TOKEN=GLOB GLOB…``) sees a mail only when one of the
mail's recipients matches one of its patterns: its envelope recipients, or
without an envelope its To and Cc addresses, the same addresses the mail is
filed under.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from chalicelib.config import ReadToken
from chalicelib.constant_time import matches_any
from chalicelib.errors import AuthenticationError, NotConfiguredError
from chalicelib.model import StoredMail


def check_bearer(accepted: tuple[ReadToken, ...], authorization: str | None) -> ReadToken:
    """The matching token, found in time that does not tell which one."""
    if not accepted:
        raise NotConfiguredError("no read tokens are configured")
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise AuthenticationError("bearer token missing")
    found = [entry for entry in accepted if matches_any(presented, [entry.token])]
    if not found:
        raise AuthenticationError("bearer token wrong")
    return found[0]


def allows(token: ReadToken, address: str) -> bool:
    """May the token read the mailbox of this (lower-cased) address?"""
    return token.scope is None or any(fnmatchcase(address, pattern) for pattern in token.scope)


def allows_mail(token: ReadToken, document: dict[str, Any]) -> bool:
    """May the token read this stored mail?"""
    if token.scope is None:
        return True
    return any(allows(token, address) for address in StoredMail.from_document(document).envelope_to)


def scope_key(token: ReadToken) -> str:
    """What a paging cursor is bound to besides its mailbox: the token's scope."""
    return "*" if token.scope is None else " ".join(sorted(token.scope))
