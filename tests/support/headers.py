"""A header block read whole, the way the decoder reads SendGrid's ``headers`` field: for tests that pin it."""

from __future__ import annotations

from chalicelib.mime.headers import decode_header_pairs, split_header_block


def parse_header_block(block: bytes, charset: str | None = None) -> list[tuple[str, str]]:
    return decode_header_pairs(split_header_block(block), charset)
