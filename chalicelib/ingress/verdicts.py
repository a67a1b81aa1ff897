"""A provider's SPF result and spam score, from the words it writes: anything else is None, never an error."""

from __future__ import annotations

import math

SPF_RESULTS = frozenset({"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"})


def spf_result(value: str | None) -> str | None:
    """One of RFC 7208's results: the value's first word, lower-cased (``Pass (sender SPF authorized) …``)."""
    words = (value or "").split()
    result = words[0].lower() if words else ""
    return result if result in SPF_RESULTS else None


def spam_score(value: str | None) -> float | None:
    try:
        score = float(value or "")
    except ValueError:
        return None
    return score if math.isfinite(score) else None


def from_headers(headers: list[tuple[str, str]], spf_header: str, score_header: str) -> tuple[str | None, float | None]:
    """The SPF result and spam score from the first of each named (lower-case) header the provider added."""
    found = {name.lower(): value for name, value in reversed(headers)}
    return spf_result(found.get(spf_header)), spam_score(found.get(score_header))
