"""Address lists and Message-IDs from header values; total, as mail needs."""

from __future__ import annotations

import email.utils
import re

from chalicelib.mime.text import clean
from chalicelib.mime.words import decode_words

__all__ = ["first_address", "parse_addresses", "parse_message_id"]

Address = dict[str, str]


def _getaddresses_or_none(value: str) -> list[tuple[str, str]]:
    try:
        return email.utils.getaddresses([value])
    except Exception:  # e.g. RecursionError on deeply nested groups
        return []


# The shape nearly every address list has: `Name <a@b>` or a bare `a@b`, comma
# separated, read with one regular expression instead of the email package's
# parser; anything else goes through the email package. Tests pin that both agree.
_ATOM = r"[A-Za-z0-9_'-]+"
_DOT_ATOM = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS = re.compile(
    rf"\s*(?:({_ATOM}(?: {_ATOM})*) <({_DOT_ATOM}@{_DOMAIN})>|<({_DOT_ATOM}@{_DOMAIN})>|({_DOT_ATOM}@{_DOMAIN}))\s*"
)


def _getaddresses(value: str) -> list[tuple[str, str]]:
    simple = [_SIMPLE_ADDRESS.fullmatch(part) for part in value.split(",")]
    if all(simple):
        return [(match[1] or "", match[2] or match[3] or match[4]) for match in simple if match is not None]
    try:
        return email.utils.getaddresses([value])
    except Exception:
        # Salvage entry by entry: one hopeless entry must not cost the others.
        return [pair for chunk in value.split(",") for pair in _getaddresses_or_none(chunk)]


def _parse_addresses(value: str) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    # Parse first and decode the names after: a decoded name may contain commas, quotes or "@".
    for raw_name, raw_address in _getaddresses(clean(value)):
        name = decode_words(raw_name).strip()
        address = raw_address.strip()
        if name or address:
            result.append({"name": name, "address": address})
    return result


def parse_addresses(value: str) -> list[dict[str, str]]:
    """``[{"name": ..., "address": ...}]`` from an address-list header value.

    Groups are flattened to their members (an empty group such as
    ``undisclosed-recipients:;`` yields nothing), display names are RFC 2047-decoded,
    a comment stands in for a missing display name (``a@b (Alice)``), and entries with
    neither name nor address are dropped. Addresses are returned as parsed, not validated.
    """
    if not isinstance(value, str):
        return []
    try:
        return _parse_addresses(value)
    except Exception:  # total by contract
        return []


def first_address(value: str | None) -> Address | None:
    found = parse_addresses(value) if value else []
    return found[0] if found else None


_ANGLE_ID = re.compile(r"<([^<>]*)>")


def _parse_message_id(value: str) -> str | None:
    text = clean(value)
    for match in _ANGLE_ID.finditer(text):
        # Broken mailers fold inside the brackets; an id never contains whitespace.
        inner = "".join(match.group(1).split())
        if inner:
            return f"<{inner}>"
    tokens = text.replace("<", " ").replace(">", " ").split()
    return f"<{tokens[0]}>" if tokens else None


def parse_message_id(value: str | None) -> str | None:
    """The first ``<id>`` of the value with whitespace removed; a bare id gets its brackets; empty: None."""
    if not isinstance(value, str):
        return None
    try:
        return _parse_message_id(value)
    except Exception:  # total by contract
        return None
