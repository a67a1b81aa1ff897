"""Mailgun's signature, checked against a vector computed apart from the code (OpenSSL) from Mailgun's example values.

Mailgun's "Securing Webhooks" page shows a token and timestamp but no key, and
its example signature is not one any key produced (it ends in ``12345``); so
the vector keeps Mailgun's token and timestamp and takes its signature from
``openssl dgst -sha256 -hmac KEY`` over their concatenation.
"""

from __future__ import annotations

import pytest

from chalicelib.errors import AuthenticationError
from chalicelib.ingress.mailgun.signature import Signed, sign, verify

# From Mailgun's documentation.
TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
TIMESTAMP = "1770920772"
KEY = "key-example-webhook-signing-key"
# echo -n "${TIMESTAMP}${TOKEN}" | openssl dgst -sha256 -hmac "${KEY}"
SIGNATURE = "e6afc36a81ad2c02b9459db07388b61569f89053228df37763d1d878a8f41730"
NOW = 1770920772.0


def test_the_vector_signs_as_openssl_computed_it() -> None:
    assert sign(KEY, TIMESTAMP, TOKEN) == SIGNATURE


def test_a_valid_signature_is_accepted_with_the_token_to_remember_until_the_tolerance_ends() -> None:
    assert verify((KEY,), TIMESTAMP, TOKEN, SIGNATURE, NOW, 600) == Signed(TOKEN, 1770920772 + 600)


def test_any_of_the_keys_during_a_rotation_verifies() -> None:
    assert verify(("key-old", KEY), TIMESTAMP, TOKEN, SIGNATURE, NOW, 600).token == TOKEN
    assert verify((KEY, "key-new"), TIMESTAMP, TOKEN, SIGNATURE.upper(), NOW, 600).token == TOKEN


@pytest.mark.parametrize(
    ("timestamp", "token", "signature", "now", "reason"),
    [
        (None, TOKEN, SIGNATURE, NOW, "signature missing"),
        (TIMESTAMP, "", SIGNATURE, NOW, "signature missing"),
        (TIMESTAMP, TOKEN, None, NOW, "signature missing"),
        ("+1770920772", TOKEN, SIGNATURE, NOW, "signature timestamp malformed"),
        ("１７７０９２０７７２", TOKEN, SIGNATURE, NOW, "signature timestamp malformed"),
        (TIMESTAMP, TOKEN, SIGNATURE, NOW + 601, "signature timestamp outside tolerance"),
        (TIMESTAMP, TOKEN, SIGNATURE, NOW - 601, "signature timestamp outside tolerance"),
        (TIMESTAMP, TOKEN, SIGNATURE, float("nan"), "signature timestamp outside tolerance"),
        (TIMESTAMP, TOKEN, SIGNATURE[:-1], NOW, "signature malformed"),
        (TIMESTAMP, TOKEN, SIGNATURE[:-1] + "g", NOW, "signature malformed"),
        (TIMESTAMP, "x" * 257, SIGNATURE, NOW, "signature malformed"),
        (TIMESTAMP, TOKEN[:-1] + "4", SIGNATURE, NOW, "signature invalid"),
        (str(int(TIMESTAMP) + 1), TOKEN, SIGNATURE, NOW, "signature invalid"),
        (TIMESTAMP, TOKEN, SIGNATURE[:-1] + "1", NOW, "signature invalid"),
    ],
)
def test_refusals_name_the_reason_and_nothing_else(
    timestamp: str | None, token: str, signature: str | None, now: float, reason: str
) -> None:
    with pytest.raises(AuthenticationError) as refused:
        verify((KEY,), timestamp, token, signature, now, 600)
    assert refused.value.message == reason


def test_the_tolerance_bounds_are_inclusive() -> None:
    assert verify((KEY,), TIMESTAMP, TOKEN, SIGNATURE, NOW + 600, 600).token == TOKEN
    assert verify((KEY,), TIMESTAMP, TOKEN, SIGNATURE, NOW - 600, 600).token == TOKEN


def test_a_signature_by_a_key_not_configured_is_invalid() -> None:
    with pytest.raises(AuthenticationError, match="signature invalid"):
        verify(("key-other",), TIMESTAMP, TOKEN, SIGNATURE, NOW, 600)
