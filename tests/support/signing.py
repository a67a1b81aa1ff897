"""Sign a post as SendGrid does, written apart from the verifier so that the two check each other."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """base64 DER ECDSA/SHA-256 over the timestamp's bytes followed by the body."""
    return base64.b64encode(private_key.sign(timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))).decode()


def public_key_base64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The public half in the form SendGrid's console shows: base64 DER SubjectPublicKeyInfo."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")

