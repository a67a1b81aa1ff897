"""What ``mime/stdlib.py`` relies on in the email package's private state, pinned on this Python.

The fast header block and tree build ``Message`` objects by hand, and the
decoder reads a part's payload as sent. If a Python release stores a
message's state differently, these fail before any mail is decoded wrongly.
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser

import pytest

from chalicelib.mime.stdlib import headers_only, keep_original, original, raw_payload, set_leaf_bytes

BLOCK = (
    b"From sender@example.com Mon Jan  1 00:00:00 2024\r\n"
    b"Received: from a.example\r\n\tby b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Subject:   spaced \xe9\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"\r\n"
)


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


def test_the_parser_keeps_headers_unixfrom_and_payload_where_we_read_them() -> None:
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(BLOCK)
    state = vars(parsed)
    assert state["_headers"] == list(parsed.raw_items())
    assert state["_unixfrom"] == "From sender@example.com Mon Jan  1 00:00:00 2024"
    assert state["_payload"] == ""


def test_a_headers_only_message_is_the_one_the_parser_builds() -> None:
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(BLOCK)
    built = headers_only(list(parsed.raw_items()), parsed.get_unixfrom())
    assert list(built.raw_items()) == list(parsed.raw_items())
    assert built.get_unixfrom() == parsed.get_unixfrom()
    assert built.get_payload() == parsed.get_payload() == ""
    assert (built.get_content_type(), built.get_content_charset()) == ("text/plain", "iso-8859-1")
    assert built["Subject"] == parsed["Subject"]
    assert built.defects == parsed.defects == []
    assert not built.is_multipart()


def test_the_parser_keeps_a_leaf_body_as_text_holding_its_bytes() -> None:
    body = b"caf\xe9 \xff\x00\r\nline two\r\n"
    leaf = BytesParser(policy=policy.compat32).parsebytes(b"Content-Type: application/octet-stream\r\n\r\n" + body)
    assert isinstance(vars(leaf)["_payload"], str)
    assert raw_payload(leaf) == body
    # The public accessor would not give them back: what raw_payload is for.
    assert leaf.get_payload(decode=False).encode("utf-8", "replace") != body


def test_a_leaf_given_a_view_keeps_the_view_as_its_payload() -> None:
    source = b"Content-Type: text/plain\r\n\r\nthe body"
    leaf = headers_only([("Content-Type", "text/plain")], None)
    view = memoryview(source)[28:]
    set_leaf_bytes(leaf, view)
    assert vars(leaf)["_payload"] is view
    assert raw_payload(leaf) is view and bytes(view) == b"the body"
    assert not leaf.is_multipart()
    assert leaf.get_content_type() == "text/plain"


def test_a_forwarded_part_keeps_its_original_bytes_beside_its_tree() -> None:
    inner = headers_only([("Subject", "inner")], None)
    outer = headers_only([("Content-Type", "message/rfc822")], None)
    outer.set_payload([inner])
    assert original(outer) is None
    view = memoryview(b"Subject: inner\r\n\r\n")
    keep_original(outer, view)
    assert original(outer) is view
    assert outer.is_multipart() and outer.get_payload(0) is inner
    assert list(outer.raw_items()) == [("Content-Type", "message/rfc822")]


def test_a_payload_of_no_known_kind_reads_as_empty() -> None:
    message = Message(policy=policy.compat32)
    message.set_payload([headers_only([], None)])
    assert raw_payload(message) == b""
