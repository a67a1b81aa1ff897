"""Paging cursors: their exact form, which cursors issued before a release must keep, and every way one is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api import cursor
from chalicelib.errors import BadCursorError
from tests.support.examples import examples

SECRET = b"k" * 32
LISTING = "scope\nall"
KEY = {"pk": "mail#a", "sk": "mail", "box": "all", "order": "2026-11-27T21:00:00.000Z#a"}
# Issued by this code: a change to the format would make every cursor in a reader's hands a 400 after a deploy.
ISSUED = (
    "eyJiIjoic2NvcGVcbmFsbCIsImsiOlsibWFpbCNhIiwibWFpbCIsImFsbCIsIjIwMjYtMTEtMjdUMjE6MDA6MDAuMDAwWiNhIl19"
    ".2pH9do2OPZS9iReHh0cz7A"
)


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


def test_a_cursor_has_one_exact_form() -> None:
    assert cursor.encode(SECRET, LISTING, KEY) == ISSUED
    mac = ISSUED.split(".")[1]
    assert len(base64.urlsafe_b64decode(mac + "==")) == 16  # a 128-bit MAC
    assert cursor.decode(SECRET, LISTING, ISSUED) == KEY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cursor is not valid"),
        ("garbage", "cursor is not valid"),
        (ISSUED[:-2] + "AA", "cursor is not valid"),
        (ISSUED.split(".", 1)[0], "cursor is not valid"),
        ("%%%." + ISSUED.split(".")[1], "cursor is not valid"),
        ("x" * 2049, "cursor is not valid"),
        ("A." + ISSUED.split(".")[1], "cursor is not valid"),  # one base64 character: no bytes at all
    ],
)
def test_a_cursor_we_did_not_issue_is_refused_with_one_message(text: str, message: str) -> None:
    with pytest.raises(BadCursorError) as caught:
        cursor.decode(SECRET, LISTING, text)
    assert caught.value.message == message


def test_a_cursor_of_another_listing_or_key_is_refused() -> None:
    with pytest.raises(BadCursorError) as caught:
        cursor.decode(SECRET, "scope\nto#a@example.com", ISSUED)
    assert caught.value.message == "cursor belongs to another listing"
    with pytest.raises(BadCursorError):
        cursor.decode(b"another secret", LISTING, ISSUED)


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=40), st.lists(st.text(max_size=30), min_size=4, max_size=4))
def test_every_cursor_reads_back_as_issued(listing: str, values: list[str]) -> None:
    key = dict(zip(("pk", "sk", "box", "order"), values, strict=True))
    issued = cursor.encode(SECRET, listing, key)
    assert "=" not in issued  # fits a query string as it is
    assert cursor.decode(SECRET, listing, issued) == key
