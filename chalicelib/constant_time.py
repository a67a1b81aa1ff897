"""Is a presented secret one of the accepted ones? Answered in time that tells nothing.

Every comparison runs over every accepted value with ``hmac.compare_digest``
on fixed-length digests and never returns early, so neither which value
matched nor the length of a guess shows in the timing.
"""

from __future__ import annotations

import hashlib
import hmac


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def matches_any(presented: str, accepted: list[str]) -> bool:
    wanted = _digest(presented)
    found = False
    for candidate in accepted:
        found |= hmac.compare_digest(wanted, _digest(candidate))
    return found
