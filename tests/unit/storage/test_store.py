"""The store without a network: its JSON of a stored mail, and a refusal it must not believe.

The store over moto's DynamoDB and S3 is tested through the routes (test_ingest_contract.py,
test_reliability.py).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import StorageUnavailableError
from chalicelib.mime import message
from chalicelib.storage.boto import pool
from chalicelib.storage.documents import document_bytes, document_json
from chalicelib.storage.store import MailStore
from tests.support.examples import examples

# Strings that would confuse a careless splice: the key-and-null text itself,
# quotes, backslashes, controls, non-ASCII and astral characters.
_tricky = st.one_of(
    st.text(max_size=30),
    st.sampled_from(['"text":null', '","text":null,"', "\\u00e9", '\\"', "\r\n\t\x00\x1f", "café", "日本語", "😀"]),
)
_body = st.one_of(st.none(), _tricky, st.lists(_tricky, max_size=5).map("".join))


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": "a" * 26,
        "subject": draw(_body),
        "from": {"name": draw(_body), "address": "a@example.com"},
        "envelope": None,
        "text": draw(_body),
        "html": draw(_body),
        "headers": [["Subject", draw(_body)], ["X-Text", '"text":null']],
        "attachments": [{"filename": draw(_body), "size": 3}],
        "spam_report": draw(_body),
        "verdicts": {"text": draw(_body), "html": None},
        "raw_size": 10,
    }


@settings(max_examples=examples(500), deadline=None)
@given(_documents())
def test_the_document_json_is_exactly_what_json_dumps_writes(document: dict[str, Any]) -> None:
    assert document_json(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=examples(500), deadline=None)
@given(_documents())
def test_the_stored_document_is_json_dumps_text_in_utf8(document: dict[str, Any]) -> None:
    assert document_bytes(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_long_non_ascii_html_body_is_escaped_as_json_escapes_it() -> None:
    html = '<a href="x">caf\u00e9 \u2014 \\ \t</a>\r\n' * 5000 + "\U0001f600"
    document = {"id": "x", "text": "plain", "html": html, "spam_report": None, "headers": [["A", "\u00e9"]]}
    expected = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    assert (document_json(document), document_bytes(document)) == (expected, expected.encode())


def test_a_lone_surrogate_is_written_by_json_but_never_stored() -> None:
    document = {"id": "x", "text": "a\ud800b", "html": None, "spam_report": None}
    assert document_json(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(UnicodeEncodeError):
        document_bytes(document)


def test_an_ascii_body_holding_the_key_text_itself_lands_in_its_own_place() -> None:
    document = {"subject": '"text":null', "text": 'a "text":null b', "html": None, "spam_report": "x"}
    assert json.loads(document_json(document)) == document
    assert document_json(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class _RefusingDynamoDB:
    """A table that refuses every mail as already stored, yet holds none (removed in between)."""

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        error: Any = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                      "CancellationReasons": [{"Code": "ConditionalCheckFailed"}]}
        raise ClientError(error, "TransactWriteItems")

    def get_item(self, **params: Any) -> dict[str, Any]:
        return {}

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return {"Responses": {}}  # the mailbox register, read with the objects: no mailbox known yet


class _S3:
    def put_object(self, **params: Any) -> dict[str, Any]:
        return {}


def test_a_mail_refused_as_stored_but_not_there_is_a_503_never_a_duplicate() -> None:
    store = MailStore(_S3(), _RefusingDynamoDB(), bucket="b", table="t")
    mail = message.decode(b"Message-ID: <a@example.com>\r\nTo: b@example.com\r\n\r\nbody", mode="raw")
    with pytest.raises(StorageUnavailableError):
        store.save(mail, b"raw", "multipart/form-data; boundary=x", datetime.now(UTC))


def test_a_body_with_del_is_written_as_json_dumps_writes_it() -> None:
    # DEL is ASCII, yet json escapes it only under ensure_ascii: the ASCII shortcut must not take it.
    document = {"id": "x", "text": "a\x7fb", "html": None, "spam_report": None}
    assert document_json(document) == json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def test_a_forked_child_runs_its_puts_on_a_pool_of_its_own() -> None:
    # make mutate forks a process whose pool's threads stayed behind; a put in the child must not wait forever.
    assert pool().submit(lambda: 1).result(timeout=10) == 1
    child = os.fork()
    if child == 0:
        try:
            os._exit(0 if pool().submit(lambda: 2).result(timeout=10) == 2 else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
