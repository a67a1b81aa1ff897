"""What SendGrid adds to the mail in either mode: the envelope, its SPF and DKIM verdicts, spam score, sender IP.

Every field may be absent or junk; junk becomes None, never an exception
(SendGrid cannot fix a mail by retrying it).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import TypedDict

from chalicelib.ingress.form import Form, json_object, text_field
from chalicelib.mime import charsets
from chalicelib.mime.text import no_surrogates
from chalicelib.model import Envelope

_DKIM_ENTRY = re.compile(r"^\s*@?([^\s:@{},]+)\s*:\s*([A-Za-z_-]+)\s*$")
_SPF_RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# An IPv4 address as ipaddress writes it (no leading zeros): what every post carries, without ipaddress's cost.
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


class Extras(TypedDict):
    """InboundMail's fields that only the provider knows."""

    envelope: Envelope | None
    spf: str | None
    dkim: list[dict[str, str]] | None
    spam_score: float | None
    spam_report: str | None
    sender_ip: str | None


def extras(form: Form) -> Extras:
    spam_report = form.fields.get("spam_report")
    return {
        "envelope": _envelope(form),
        "spf": _spf(text_field(form, "SPF")),
        "dkim": _dkim(text_field(form, "dkim")),
        "spam_score": _spam_score(text_field(form, "spam_score")),
        "spam_report": charsets.decode(spam_report, "utf-8") if spam_report is not None else None,
        "sender_ip": _sender_ip(text_field(form, "sender_ip")),
    }


def _envelope(form: Form) -> Envelope | None:
    """``{"to": [...], "from": "..."}``; None unless it names a sender or a recipient."""
    data = json_object(form.fields.get("envelope"))
    sender = data.get("from")
    recipients = data.get("to")
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list):
        recipients = []
    found = tuple(no_surrogates(r).strip() for r in recipients if isinstance(r, str) and r.strip())
    sender = no_surrogates(sender).strip() if isinstance(sender, str) else None
    if sender is None and not found:
        return None
    return Envelope(sender, found)


def _dkim(value: str | None) -> list[dict[str, str]] | None:
    """``{@example.com : pass, @other.org : fail}`` → entries; ``none`` → []; junk → None."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "none" or value == "{}":
        return []
    if not (value.startswith("{") and value.endswith("}")):
        return None
    entries = []
    for item in value[1:-1].split(","):
        match = _DKIM_ENTRY.match(item)
        if not match:
            return None
        entries.append({"domain": match.group(1), "result": match.group(2).lower()})
    return entries


def _spf(value: str | None) -> str | None:
    """One of RFC 7208's results (the first word, lower-cased); anything else → None."""
    words = (value or "").split()
    result = words[0].lower() if words else ""
    return result if result in _SPF_RESULTS else None


def _spam_score(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    return score if math.isfinite(score) else None


def _sender_ip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip("[]")
    if _CANONICAL_IPV4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
