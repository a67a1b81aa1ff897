"""Who may read mail: ``Authorization: Bearer TOKEN``, one of the configured read tokens."""

from __future__ import annotations

from chalicelib.constant_time import matches_any
from chalicelib.errors import AuthenticationError, NotConfiguredError


def check_bearer(accepted: tuple[str, ...], authorization: str | None) -> None:
    if not accepted:
        raise NotConfiguredError("no read tokens are configured")
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("bearer token missing")
    if not matches_any(token.strip(), list(accepted)):
        raise AuthenticationError("bearer token wrong")
