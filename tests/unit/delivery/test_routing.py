"""Which handler a mail goes to: the first matching route, a bounce when none does; and the retry backoff."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.delivery.handoff import backoff_seconds
from chalicelib.delivery.routing import Bounce, Route, Router, always, recipient, subject
from chalicelib.model import StoredMail


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


def handler(mail: StoredMail) -> None:
    """A route's handler; these tests only ask which route is picked."""


def stored(**overrides: Any) -> StoredMail:
    document = {
        "id": "m1", "received_at": "2026-11-27T21:00:00.000Z", "subject": "Invoice 42", "from": None,
        "to": [{"name": "", "address": "Billing@Example.com"}], "cc": [], "message_id": None,
        "envelope": {"from": "x@example.org", "to": ["reply+T1@example.com"]}, "text": "hi", "html": None,
        "headers": [], "attachments": [],
    }
    document.update(overrides)
    return StoredMail.from_document(document)


def test_first_matching_route_wins_and_the_catch_all_takes_the_rest() -> None:
    router = Router([
        Route("replies", recipient(r"reply\+\w+@example\.com"), handler),
        Route("invoices", subject(r"\binvoice\b"), handler),
        Route("inbox", always, handler),
    ])
    assert router.route(stored()).name == "replies"
    assert router.route(stored(envelope={"to": ["REPLY+x@EXAMPLE.com"]})).name == "replies"
    assert router.route(stored(envelope={"to": ["other@example.com"]})).name == "invoices"
    assert router.route(stored(envelope={"to": ["other@example.com"]}, subject="Hello")).name == "inbox"


def test_without_a_catch_all_an_unmatched_mail_bounces() -> None:
    route = Router([Route("replies", recipient(r"reply\+\w+@example\.com"), handler)]).route(
        stored(envelope={"to": ["x@example.com"]})
    )
    with pytest.raises(Bounce):
        route.handler(stored())


def test_backoff_doubles_up_to_fifteen_minutes() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 5, 6, 9)] == [30, 60, 120, 240, 480, 900, 900]
