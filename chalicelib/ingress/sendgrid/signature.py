"""Verify SendGrid's signed-webhook headers before anything reads the body.

SendGrid (Inbound Parse and Event Webhook alike) signs each request with ECDSA
over P-256 and SHA-256:

* ``X-Twilio-Email-Event-Webhook-Timestamp``: unix seconds, as decimal text;
* ``X-Twilio-Email-Event-Webhook-Signature``: base64 of the DER signature;
* signed payload: the timestamp header's bytes immediately followed by the raw
  request body bytes;
* verification key: base64 of the DER SubjectPublicKeyInfo shown in the
  SendGrid console (SendGrid's own helper wraps it in PEM armour).

The verifier works on bytes only, so the caller can (and must) run it before
any multipart parser sees the body: unauthenticated input never reaches the
parser. Every rejection is an ``AuthenticationError`` whose message names only
the reason class, never the signature, key, timestamp value or body, because
messages end up in responses and logs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from chalicelib.errors import AuthenticationError, NotConfiguredError

__all__ = ["MAX_SIGNATURE_BYTES", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SignatureVerifier"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# Compared against lower-cased incoming names, so the lookup works the same for
# Chalice's case-insensitive mapping and for a plain dict with any spelling.
_SIGNATURE_NAME = SIGNATURE_HEADER.lower()
_TIMESTAMP_NAME = TIMESTAMP_HEADER.lower()

# A DER ECDSA signature on P-256 is SEQUENCE { INTEGER r, INTEGER s }, each
# integer at most 33 bytes (32 plus a sign byte): 2 + 2 * (2 + 33) = 72 bytes.
# Anything longer cannot verify, so refuse it before any hashing.
MAX_SIGNATURE_BYTES = 72
# Checked on the text before decoding so a megabyte-long header costs nothing.
# Deliberately looser than the 96 characters MAX_SIGNATURE_BYTES needs: a
# real signature with a stray space or newline then still gets the more
# useful "not valid base64" reason, and the byte bound below stays exact.
_MAX_SIGNATURE_CHARS = 256

# ASCII digits only: ``int()`` alone would also take "+1", " 1", "1_0" and
# non-ASCII Unicode digits (fullwidth, Arabic-Indic...), which ``\d`` matches
# too. Twelve digits reach year 33658, well past any real timestamp, and the
# bound keeps ``int()`` cheap and far from its int-string-length ValueError.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")

_ECDSA_PREHASHED_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))


def _digest(timestamp: str, body: bytes) -> bytes:
    # SendGrid signs timestamp + body. Feeding the two pieces to one running
    # SHA-256 and handing cryptography the digest (Prehashed) gives the same
    # result as signing the concatenation, without allocating a second copy of
    # a body that may be many megabytes.
    digest = hashlib.sha256()
    digest.update(timestamp.encode("ascii"))
    digest.update(body)
    return digest.digest()


@dataclass(frozen=True)
class SignatureVerifier:
    """Checks one request's SendGrid signature headers against the raw body."""

    public_key: EllipticCurvePublicKey
    # Applied both ways: older than now - tolerance is a replay, later than
    # now + tolerance is a forged or badly skewed clock. Bounds are inclusive.
    tolerance_seconds: int = 600

    def __post_init__(self) -> None:
        # Checked here as well as in from_base64 so that building the
        # dataclass directly cannot bypass the curve check. Both are our
        # configuration, hence NotConfiguredError (5xx, SendGrid retries).
        if not isinstance(self.public_key, EllipticCurvePublicKey) or not isinstance(
            self.public_key.curve, ec.SECP256R1
        ):
            raise NotConfiguredError("signature public key is not a P-256 key")
        # bool is an int subclass; True as a tolerance is surely a mistake.
        if (
            isinstance(self.tolerance_seconds, bool)
            or not isinstance(self.tolerance_seconds, int)
            or self.tolerance_seconds < 0
        ):
            raise NotConfiguredError("signature tolerance must be a non-negative integer")

    @classmethod
    def from_base64(cls, key_b64: str, tolerance_seconds: int = 600) -> SignatureVerifier:
        """Load SendGrid's verification key: base64 DER SPKI, or a PEM string."""
        # The key comes from our own configuration, so any failure here is
        # NotConfiguredError rather than AuthenticationError. The message never
        # quotes the key; the chained cause (from cryptography) does not either.
        if not isinstance(key_b64, str):
            raise NotConfiguredError("signature public key is not text")
        try:
            if "-----BEGIN" in key_b64:
                loaded = serialization.load_pem_public_key(key_b64.encode("ascii"))
            else:
                # Whitespace is dropped because values pasted into env vars or
                # SSM often carry a trailing newline or line wrapping; after
                # that, decoding is strict so junk is not silently skipped.
                compact = "".join(key_b64.split())
                der = base64.b64decode(compact, validate=True)
                loaded = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            # ValueError covers binascii.Error (bad base64), non-ASCII text and
            # bad DER/PEM.
            raise NotConfiguredError("signature public key cannot be loaded") from exc
        if not isinstance(loaded, EllipticCurvePublicKey):
            raise NotConfiguredError("signature public key is not a P-256 key")
        return cls(public_key=loaded, tolerance_seconds=tolerance_seconds)

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Return if SendGrid signed this request within tolerance; raise otherwise.

        ``now`` is passed in (unix seconds) rather than read here so the clock
        is the caller's decision and tests are exact.
        """
        signature_text, timestamp_text = _find_headers(headers)
        if not signature_text:
            raise AuthenticationError("signature missing")
        if not timestamp_text:
            raise AuthenticationError("signature timestamp missing")

        # Cheap checks first, the elliptic-curve work last.
        if _TIMESTAMP_RE.fullmatch(timestamp_text) is None:
            raise AuthenticationError("signature timestamp malformed")
        timestamp = int(timestamp_text)
        # Written as "inside the window" rather than "outside it" so that a
        # NaN ``now`` (every comparison False) rejects instead of accepting.
        tolerance = self.tolerance_seconds
        if not (now - tolerance <= timestamp <= now + tolerance):
            raise AuthenticationError("signature timestamp outside tolerance")

        if len(signature_text) > _MAX_SIGNATURE_CHARS:
            raise AuthenticationError("signature too long")
        try:
            # validate=True: reject any character outside the base64 alphabet
            # instead of silently discarding it. ValueError also covers
            # non-ASCII text. "from None" keeps the decoder's detail (which
            # may describe the input) out of chained tracebacks.
            signature = base64.b64decode(signature_text, validate=True)
        except ValueError:
            raise AuthenticationError("signature not valid base64") from None
        if len(signature) > MAX_SIGNATURE_BYTES:
            raise AuthenticationError("signature too long")

        try:
            # Malformed DER is reported as InvalidSignature too, so this is
            # the only crypto failure to expect here.
            self.public_key.verify(signature, _digest(timestamp_text, body), _ECDSA_PREHASHED_SHA256)
        except InvalidSignature:
            raise AuthenticationError("signature invalid") from None


def _find_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    # One pass, lower-casing each name, so a plain dict keyed in any spelling
    # works. If a plain dict holds the same header twice under different
    # spellings we cannot know which one was signed, so refuse rather than
    # pick one.
    signature: str | None = None
    timestamp: str | None = None
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == _SIGNATURE_NAME:
            if signature is not None:
                raise AuthenticationError("signature header repeated")
            signature = value
        elif lowered == _TIMESTAMP_NAME:
            if timestamp is not None:
                raise AuthenticationError("signature timestamp header repeated")
            timestamp = value
    return signature, timestamp
