"""SendGrid's ECDSA webhook signature, checked before anything reads the body."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
from collections.abc import Iterator
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chalicelib.errors import AuthenticationError, NotConfiguredError
from chalicelib.ingress.sendgrid.signature import (
    MAX_SIGNATURE_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureVerifier,
)
from tests.support.examples import examples
from tests.support.signing import public_key_base64, sign

T = TypeVar("T")

NOW = 1_700_000_000.0
TS = "1700000000"
BODY = b'--xYzZY\r\nContent-Disposition: form-data; name="to"\r\n\r\nhello@example.com\r\n'

# Every message verify() may produce. The fuzz test asserts membership, which
# also proves no message ever echoes input.
KNOWN_MESSAGES = {
    "signature missing",
    "signature timestamp missing",
    "signature timestamp malformed",
    "signature timestamp outside tolerance",
    "signature too long",
    "signature not valid base64",
    "signature invalid",
    "signature header repeated",
    "signature timestamp header repeated",
}

# Generated once per test session: key generation is cheap, but the fuzz test
# must not pay for it per example.
_PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
_OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return _PRIVATE_KEY


@pytest.fixture
def verifier(key: ec.EllipticCurvePrivateKey) -> SignatureVerifier:
    return SignatureVerifier.from_base64(public_key_base64(key))


def headers(signature: str, timestamp: str = TS) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: timestamp}


def assert_rejected(
    verifier: SignatureVerifier,
    hdrs: dict[str, str],
    body: bytes,
    message: str,
    *,
    now: float = NOW,
    secrets: tuple[str, ...] = (),
) -> None:
    """verify() raises AuthenticationError with exactly ``message``, echoing nothing."""
    with pytest.raises(AuthenticationError) as info:
        verifier.verify(hdrs, body, now)
    text = str(info.value)
    assert text == message
    assert info.value.status == 401
    # Also guards against the decoder's or crypto library's detail leaking
    # through exception chaining into logged tracebacks.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    leaked = [*hdrs.values(), *secrets, public_key_base64(_PRIVATE_KEY)]
    if body:
        leaked.append(body.decode("latin-1"))
    for value in leaked:
        if value:
            assert value not in text


# --- accepted ---------------------------------------------------------------


def test_valid_signature_accepted(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    verifier.verify(headers(sign(key, TS, BODY)), BODY, NOW)


def test_empty_body_accepted(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    verifier.verify(headers(sign(key, TS, b"")), b"", NOW)


def test_header_names_any_case_in_plain_dict(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    hdrs = {
        SIGNATURE_HEADER.lower(): sign(key, TS, BODY),
        TIMESTAMP_HEADER.upper(): TS,
        "Content-Type": "multipart/form-data; boundary=xYzZY",
    }
    verifier.verify(hdrs, BODY, NOW)


def test_multi_megabyte_body_verified_without_copying_it(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    body = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # 8 MiB
    hdrs = headers(sign(key, TS, body))
    tracemalloc.start()
    try:
        verifier.verify(hdrs, body, NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # timestamp + body would allocate another 8 MiB; streaming into sha256
    # allocates next to nothing on the Python heap.
    assert peak < 64 * 1024
    assert_rejected(verifier, hdrs, body[:-1] + b"\x00", "signature invalid")


# --- tolerance boundaries ---------------------------------------------------


@pytest.mark.parametrize("offset", [-600, 0, 600])
def test_timestamp_within_tolerance_inclusive(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier, offset: int
) -> None:
    ts = str(int(NOW) + offset)
    verifier.verify(headers(sign(key, ts, BODY), ts), BODY, NOW)


@pytest.mark.parametrize("offset", [-601, 601, -86_400, 86_400])
def test_timestamp_beyond_tolerance_rejected(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier, offset: int
) -> None:
    # Correctly signed: only the age (replay) or future date is wrong.
    ts = str(int(NOW) + offset)
    assert_rejected(
        verifier,
        headers(sign(key, ts, BODY), ts),
        BODY,
        "signature timestamp outside tolerance",
    )


def test_fractional_now_is_compared_exactly(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    ts = str(int(NOW) - 600)
    hdrs = headers(sign(key, ts, BODY), ts)
    verifier.verify(hdrs, BODY, NOW + 0.0)
    assert_rejected(verifier, hdrs, BODY, "signature timestamp outside tolerance", now=NOW + 0.5)


def test_custom_tolerance(key: ec.EllipticCurvePrivateKey) -> None:
    verifier = SignatureVerifier.from_base64(public_key_base64(key), tolerance_seconds=5)
    ok, late = str(int(NOW) - 5), str(int(NOW) - 6)
    assert verifier.tolerance_seconds == 5
    verifier.verify(headers(sign(key, ok, BODY), ok), BODY, NOW)
    assert_rejected(
        verifier,
        headers(sign(key, late, BODY), late),
        BODY,
        "signature timestamp outside tolerance",
    )


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_clock_rejects(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier, now: float
) -> None:
    assert_rejected(
        verifier,
        headers(sign(key, TS, BODY)),
        BODY,
        "signature timestamp outside tolerance",
        now=now,
    )


# --- rejections -------------------------------------------------------------


def test_signature_header_missing(verifier: SignatureVerifier) -> None:
    assert_rejected(verifier, {TIMESTAMP_HEADER: TS}, BODY, "signature missing")


def test_signature_header_empty(verifier: SignatureVerifier) -> None:
    assert_rejected(verifier, headers(""), BODY, "signature missing")


def test_timestamp_header_missing(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    assert_rejected(
        verifier,
        {SIGNATURE_HEADER: sign(key, TS, BODY)},
        BODY,
        "signature timestamp missing",
    )


def test_timestamp_header_empty(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    assert_rejected(verifier, headers(sign(key, TS, BODY), ""), BODY, "signature timestamp missing")


def test_no_headers_at_all(verifier: SignatureVerifier) -> None:
    assert_rejected(verifier, {}, BODY, "signature missing")


@pytest.mark.parametrize(
    "timestamp",
    [
        "+1700000000",
        "-1700000000",
        " 1700000000",
        "1700000000 ",
        "1700000000\n",
        "1700000000.0",
        "1.7e9",
        "1_700_000_000",
        "0x6553f100",
        # Non-ASCII digits that int() would accept: fullwidth, Arabic-Indic.
        "".join(chr(0xFF10 + int(d)) for d in TS),
        "".join(chr(0x0660 + int(d)) for d in TS),
        "1700000000" + "0" * 3,  # 13 digits: beyond the bound
        "9" * 5000,  # would hit int()'s max-str-digits ValueError
        "abc",
    ],
)
def test_timestamp_not_plain_integer(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier, timestamp: str
) -> None:
    # Signed over the bogus text itself, so only the format check can stop it.
    assert_rejected(
        verifier,
        headers(sign(key, timestamp, BODY) if timestamp.isascii() else "AAAA", timestamp),
        BODY,
        "signature timestamp malformed",
    )


@pytest.mark.parametrize(
    "signature",
    [
        "not base64!",
        "MEUCIQ==MEUC",  # padding in the middle
        "MEUCIQ",  # missing padding
        "MEUC IQ==",  # embedded space
        "MEUCIQ==\n",  # trailing newline
        "MEUC-_==",  # url-safe alphabet
        "MEUCIQé=",  # non-ASCII
    ],
)
def test_signature_not_valid_base64(verifier: SignatureVerifier, signature: str) -> None:
    assert_rejected(verifier, headers(signature), BODY, "signature not valid base64")


def test_real_signature_with_whitespace_not_accepted(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    # A non-strict decoder would drop the space and verify; strict refuses.
    good = sign(key, TS, BODY)
    assert_rejected(verifier, headers(good[:8] + " " + good[8:]), BODY, "signature not valid base64")


def test_signature_decoded_length_bound(verifier: SignatureVerifier) -> None:
    # 72 bytes (the P-256 DER maximum) still reach the curve check; 73 do not.
    at_limit = base64.b64encode(b"\x30" * MAX_SIGNATURE_BYTES).decode()
    assert_rejected(verifier, headers(at_limit), BODY, "signature invalid")
    over = base64.b64encode(b"\x30" * (MAX_SIGNATURE_BYTES + 1)).decode()
    assert_rejected(verifier, headers(over), BODY, "signature too long")


def test_signature_huge_text_refused_before_decoding(
    verifier: SignatureVerifier,
) -> None:
    huge = base64.b64encode(b"\x00" * 1_000_000).decode()
    assert_rejected(verifier, headers(huge), BODY, "signature too long")
    # Not even valid base64, yet "too long": the text bound runs first.
    assert_rejected(verifier, headers("!" * 257), BODY, "signature too long")
    assert_rejected(verifier, headers("!" * 256), BODY, "signature not valid base64")


def test_signature_valid_der_but_for_other_message(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    wrong = sign(key, TS, b"some other body")
    assert_rejected(verifier, headers(wrong), BODY, "signature invalid", secrets=(wrong,))


def test_signature_from_other_key(verifier: SignatureVerifier) -> None:
    wrong = sign(_OTHER_KEY, TS, BODY)
    assert_rejected(verifier, headers(wrong), BODY, "signature invalid")


def test_signature_raw_r_s_not_der(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    # Some signers emit raw r||s (64 bytes); SendGrid sends DER, so this fails.
    r, s = decode_dss_signature(base64.b64decode(sign(key, TS, BODY)))
    raw = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    assert_rejected(verifier, headers(raw), BODY, "signature invalid")


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_body_tampered_one_byte(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier, position: int
) -> None:
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01
    assert_rejected(verifier, headers(sign(key, TS, BODY)), bytes(tampered), "signature invalid")


def test_body_extended_or_truncated(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    hdrs = headers(sign(key, TS, BODY))
    assert_rejected(verifier, hdrs, BODY + b"\n", "signature invalid")
    assert_rejected(verifier, hdrs, BODY[:-1], "signature invalid")
    assert_rejected(verifier, hdrs, b"", "signature invalid")


def test_timestamp_changed(key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier) -> None:
    # Still inside tolerance, so only the signature can catch it.
    signature = sign(key, TS, BODY)
    assert_rejected(verifier, headers(signature, str(int(TS) + 1)), BODY, "signature invalid")


def test_boundary_between_timestamp_and_body_is_not_shifted(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    # "1700000000" + "0abc" == "17000000000" + "abc" byte for byte; the
    # 11-digit variant is far outside tolerance, so it cannot be replayed.
    signature = sign(key, TS, b"0abc")
    shifted = TS + "0"
    assert_rejected(
        verifier,
        headers(signature, shifted),
        b"abc",
        "signature timestamp outside tolerance",
    )


def test_repeated_header_under_two_spellings_rejected(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    good = sign(key, TS, BODY)
    hdrs = headers(good)
    hdrs[SIGNATURE_HEADER.lower()] = good
    assert_rejected(verifier, hdrs, BODY, "signature header repeated")
    hdrs = headers(good)
    hdrs[TIMESTAMP_HEADER.upper()] = TS
    assert_rejected(verifier, hdrs, BODY, "signature timestamp header repeated")


# --- key loading ------------------------------------------------------------


def test_pem_key_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = SignatureVerifier.from_base64(pem)
    verifier.verify(headers(sign(key, TS, BODY)), BODY, NOW)


def test_sendgrid_style_pem_wrapping_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    # SendGrid's helper wraps the console value in PEM armour exactly so.
    pem = "\n-----BEGIN PUBLIC KEY-----\n" + public_key_base64(key) + "\n-----END PUBLIC KEY-----\n"
    verifier = SignatureVerifier.from_base64(pem)
    verifier.verify(headers(sign(key, TS, BODY)), BODY, NOW)


def test_base64_key_with_surrounding_whitespace_accepted(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    b64 = public_key_base64(key)
    verifier = SignatureVerifier.from_base64(f"  {b64[:40]}\n{b64[40:]}\n")
    assert verifier.public_key.public_numbers() == key.public_key().public_numbers()


def _key_b64(public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1(), ec.SECP521R1()])
def test_other_curve_rejected_at_load(curve: ec.EllipticCurve) -> None:
    other = ec.generate_private_key(curve)
    b64 = _key_b64(other.public_key())
    with pytest.raises(NotConfiguredError) as info:
        SignatureVerifier.from_base64(b64)
    assert str(info.value) == "signature public key is not a P-256 key"
    assert info.value.status == 503
    assert b64 not in str(info.value)


def test_other_curve_rejected_when_constructed_directly() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(NotConfiguredError, match=r"^signature public key is not a P-256 key$"):
        SignatureVerifier(public_key=other)


def test_non_ec_key_rejected_at_load() -> None:
    b64 = _key_b64(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NotConfiguredError, match=r"^signature public key is not a P-256 key$"):
        SignatureVerifier.from_base64(b64)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "not base64 at all!",
        base64.b64encode(b"definitely not DER").decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\né\n-----END PUBLIC KEY-----\n",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",  # truncated SPKI prefix
    ],
)
def test_junk_key_not_configured(junk: str) -> None:
    with pytest.raises(NotConfiguredError) as info:
        SignatureVerifier.from_base64(junk)
    assert str(info.value) == "signature public key cannot be loaded"
    assert info.value.status == 503


def test_a_key_with_a_character_outside_base64_is_not_loaded(key: ec.EllipticCurvePrivateKey) -> None:
    b64 = public_key_base64(key)
    # A lenient decoder would skip the "!" and load the key: a mistyped configuration must not pass unseen.
    with pytest.raises(NotConfiguredError, match=r"^signature public key cannot be loaded$"):
        SignatureVerifier.from_base64(b64[:10] + "!" + b64[10:])


def test_a_key_that_is_not_text_is_refused_with_its_reason() -> None:
    with pytest.raises(NotConfiguredError, match=r"^signature public key is not text$"):
        SignatureVerifier.from_base64(b"MFkw")  # type: ignore[arg-type]


def test_private_key_pem_pasted_by_mistake_not_configured(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(NotConfiguredError) as info:
        SignatureVerifier.from_base64(pem)
    assert str(info.value) == "signature public key cannot be loaded"
    # The private key material must not surface in the message.
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert all(line not in str(info.value) for line in body_lines)


@pytest.mark.parametrize("tolerance", [-1, True])
def test_bad_tolerance_not_configured(key: ec.EllipticCurvePrivateKey, tolerance: int) -> None:
    with pytest.raises(NotConfiguredError, match=r"^signature tolerance must be"):
        SignatureVerifier.from_base64(public_key_base64(key), tolerance_seconds=tolerance)


def test_zero_tolerance_accepts_only_exact_second(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    verifier = SignatureVerifier.from_base64(public_key_base64(key), tolerance_seconds=0)
    verifier.verify(headers(sign(key, TS, BODY)), BODY, NOW)
    assert_rejected(
        verifier,
        headers(sign(key, TS, BODY)),
        BODY,
        "signature timestamp outside tolerance",
        now=NOW + 1,
    )


# --- fuzz -------------------------------------------------------------------


def _mostly(strategy: st.SearchStrategy[T], rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    # one_of() picks branches evenly; weight 7:1 so missing headers and odd
    # clocks do not crowd out the examples that reach the signature check.
    return st.integers(0, 7).flatmap(lambda n: rare if n == 0 else strategy)


def _header_names() -> st.SearchStrategy[str]:
    # Real names in other spellings test the repeated-header path.
    real = st.sampled_from([SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.upper(), SIGNATURE_HEADER])
    return _mostly(st.text(max_size=40), real)


# Longer than any signed text the fuzz test can send (<= 12 + 2048 bytes), so
# a real signature made over it can never legitimately verify there.
_UNREACHABLE_PREFIX = b"x" * 4096


def _signature_values() -> st.SearchStrategy[str]:
    # Raw text, base64 of arbitrary bytes, DER-looking bytes, and genuine DER
    # signatures (right key over another message, or another key) so examples
    # reach the elliptic-curve check, not only the early exits.
    return st.one_of(
        st.text(max_size=120),
        st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
        st.binary(min_size=1, max_size=70).map(
            lambda b: base64.b64encode(b"\x30" + bytes([len(b)]) + b).decode()
        ),
        st.binary(max_size=64).map(lambda b: sign(_PRIVATE_KEY, TS, _UNREACHABLE_PREFIX + b)),
        st.binary(max_size=64).map(lambda b: sign(_OTHER_KEY, TS, b)),
    )


def _timestamp_values() -> st.SearchStrategy[str]:
    # Mostly timestamps inside the window so the signature path is exercised.
    return _mostly(
        st.integers(min_value=int(NOW) - 600, max_value=int(NOW) + 600).map(str),
        st.text(max_size=20) | st.integers().map(str),
    )


@settings(
    max_examples=examples(300),
    deadline=None,
    database=None,  # keep example files out of the shared working tree
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    extra=st.dictionaries(_header_names(), st.text(max_size=40), max_size=4),
    signature=_mostly(_signature_values(), st.none()),
    timestamp=_mostly(_timestamp_values(), st.none()),
    body=st.binary(max_size=2048),
    now=_mostly(st.just(NOW), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_fuzz_never_verifies_never_raises_other(
    extra: dict[str, str],
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: float,
) -> None:
    verifier = SignatureVerifier(public_key=_PRIVATE_KEY.public_key())
    hdrs = dict(extra)
    if signature is not None:
        hdrs[SIGNATURE_HEADER] = signature
    if timestamp is not None:
        hdrs[TIMESTAMP_HEADER] = timestamp
    with pytest.raises(AuthenticationError) as info:
        verifier.verify(hdrs, body, now)
    assert str(info.value) in KNOWN_MESSAGES
    # Shown by --hypothesis-show-statistics: confirms examples reach every
    # stage, including the elliptic-curve check, not only the early exits.
    event(str(info.value))


def _iter_bytes_flips(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x80
        yield bytes(flipped)


def test_every_single_bit_flip_of_signature_rejected(
    key: ec.EllipticCurvePrivateKey, verifier: SignatureVerifier
) -> None:
    der = base64.b64decode(sign(key, TS, BODY))
    for flipped in _iter_bytes_flips(der):
        encoded = base64.b64encode(flipped).decode()
        assert_rejected(verifier, headers(encoded), BODY, "signature invalid")


def test_digest_matches_concatenation() -> None:
    # Documents the equivalence the Prehashed path relies on.
    streamed = hashlib.sha256()
    streamed.update(TS.encode())
    streamed.update(BODY)
    assert streamed.digest() == hashlib.sha256(TS.encode() + BODY).digest()
