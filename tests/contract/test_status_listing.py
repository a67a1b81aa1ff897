"""GET /mails?status=: the mail in one handoff status, through a sparse index, in pages; `mails list --status`
and `mails retry --all-failed`.

Driven through the app's own SQS consumer and moto's server, as tests/contract/test_handoff.py is.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib.delivery.routing import Bounce, Route, always, subject
from chalicelib.model import StoredMail
from chalicelib.storage import schema
from chalicelib.wiring import services
from scripts import mails as mails_cli
from tests.conftest import TABLE, TOKEN, read_headers
from tests.contract.test_handoff import (  # noqa: F401  # backoffs, handoff_client and sqs are fixtures used here
    RECEIVED,
    Recorder,
    backoffs,
    drain,
    handoff_client,
    post,
    sqs,
    use_router,
)

SCOPED = "scoped-token-0123456789"
STATUSES = ("pending", "processing", "bounced", "failed")


def eml(number: int, to: str, subject_: str) -> bytes:
    return (
        f"From: Customer <c{number}@example.org>\r\nTo: {to}\r\nSubject: {subject_}\r\n"
        f"Message-ID: <s{number}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    ).encode()


def listing(client: Client, query: str, token: str = TOKEN) -> Any:
    return client.http.get(f"/mails?{query}", headers=read_headers(token))


def ids(client: Client, status: str, to: str | None = None) -> list[str]:
    response = listing(client, f"status={status}&limit=100" + (f"&to={to}" if to else ""))
    assert response.status_code == 200, response.body
    page = json.loads(response.body)
    assert page["cursor"] is None
    return [mail["id"] for mail in page["mails"]]


def by_status(client: Client, to: str | None = None) -> dict[str, list[str]]:
    return {status: ids(client, status, to) for status in STATUSES}


def refuse(mail: StoredMail) -> None:
    raise Bounce("not for us")


@pytest.fixture
def clocked(handoff_client: Client) -> Client:  # noqa: F811
    """Each mail received a second after the one before, so that newest first is a known order."""
    seconds = iter(range(1000))
    services.sendgrid().clock = lambda: RECEIVED + timedelta(seconds=next(seconds))
    return handoff_client


def test_each_status_lists_exactly_its_mail_newest_first_and_delivered_mail_leaves_the_index(
    clocked: Client, sqs: Any  # noqa: F811
) -> None:
    seen_processing: list[list[str]] = []

    def inbox(mail: StoredMail) -> None:
        seen_processing.append(ids(clocked, "processing"))

    use_router(
        Route("refuse", subject("bounce"), refuse),
        Route("broken", subject("broken"), Recorder(failures=100)),
        Route("inbox", always, inbox),
    )
    bounced = post(clocked, eml(1, "a@example.com", "bounce me"))["id"]
    failed = post(clocked, eml(2, "b@example.com", "broken"))["id"]
    delivered = post(clocked, eml(3, "a@example.com", "fine"))["id"]
    assert by_status(clocked) == {"pending": [delivered, failed, bounced], "processing": [], "bounced": [],
                                  "failed": []}
    assert by_status(clocked, "a@example.com") == {"pending": [delivered, bounced], "processing": [], "bounced": [],
                                                   "failed": []}
    drain(sqs, rounds=30)
    assert seen_processing == [[delivered]]  # while its handler ran
    assert by_status(clocked) == {"pending": [], "processing": [], "bounced": [bounced], "failed": [failed]}
    assert by_status(clocked, "a@example.com") == {"pending": [], "processing": [], "bounced": [bounced],
                                                   "failed": []}
    assert by_status(clocked, "b@example.com") == {"pending": [], "processing": [], "bounced": [], "failed": [failed]}
    # Sparse: the delivered mail's item and entry carry no index key; the others' name their status.
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    keys = {(item["id"]["S"], item["sk"]["S"]): item.get(schema.STATUS_BOX, {}).get("S") for item in items
            if item["sk"]["S"] != schema.MAILBOX_SORT_KEY}  # the mailbox register's items name no mail
    assert keys == {
        (bounced, "mail"): schema.status_box("bounced", "all", bounced),
        (bounced, "to#a@example.com"): schema.status_box("bounced", "to#a@example.com", bounced),
        (failed, "mail"): schema.status_box("failed", "all", failed),
        (failed, "to#b@example.com"): schema.status_box("failed", "to#b@example.com", failed),
        (delivered, "mail"): None, (delivered, "to#a@example.com"): None,
    }
    # On the mail's own shard of each key (docs/design/scale.md).
    assert keys[(bounced, "mail")].endswith("#bounced#all") and keys[(bounced, "mail")][:2].isdigit()


def test_a_retried_mail_moves_from_failed_to_pending_and_out_once_delivered(
    clocked: Client, sqs: Any  # noqa: F811
) -> None:
    broken = Recorder(failures=100)
    use_router(Route("broken", always, broken))
    mail_id = post(clocked, eml(1, "a@example.com", "broken"))["id"]
    drain(sqs, rounds=30)
    assert by_status(clocked, "a@example.com")["failed"] == [mail_id]
    broken.failures = 0
    assert clocked.http.post(f"/mails/{mail_id}/retry", headers=read_headers()).status_code == 202
    assert by_status(clocked, "a@example.com") == {"pending": [mail_id], "processing": [], "bounced": [],
                                                   "failed": []}
    drain(sqs)
    assert by_status(clocked) == by_status(clocked, "a@example.com") == {status: [] for status in STATUSES}


def test_a_status_pages_with_cursors_that_serve_only_their_own_listing(clocked: Client) -> None:
    use_router(Route("inbox", always, Recorder()))
    plan = ["a", "b", "a", "ab", "a", "b", "a"]
    expected: dict[str, list[str]] = {"all": [], "a@example.com": [], "b@example.com": []}
    for number, boxes in enumerate(plan):
        recipients = [f"{box}@example.com" for box in boxes]
        mail_id = post(clocked, eml(number, ", ".join(recipients), "paged"))["id"]
        for box in ["all", *recipients]:
            expected[box].insert(0, mail_id)
    for box, wanted in expected.items():
        scope = "" if box == "all" else f"&to={box}"
        for limit in (1, 2, 3):
            got, cursor, pages = [], None, 0
            while True:
                query = f"status=pending&limit={limit}{scope}" + (f"&cursor={cursor}" if cursor else "")
                page = json.loads(listing(clocked, query).body)
                got += [mail["id"] for mail in page["mails"]]
                pages += 1
                cursor = page["cursor"]
                if cursor is None:
                    break
            assert got == wanted
            assert pages == -(-len(wanted) // limit)
    cursor = json.loads(listing(clocked, "status=pending&to=a@example.com&limit=1").body)["cursor"]
    plain = json.loads(listing(clocked, "to=a@example.com&limit=1").body)["cursor"]
    for query in ("status=failed&to=a@example.com", "status=pending&to=b@example.com", "status=pending",
                  "to=a@example.com"):
        response = listing(clocked, f"{query}&limit=1&cursor={cursor}")
        assert (response.status_code, json.loads(response.body)) == (400, {
            "Code": "BadCursorError", "Message": "cursor belongs to another listing"})
    response = listing(clocked, f"status=pending&to=a@example.com&limit=1&cursor={plain}")
    assert response.status_code == 400
    forged = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    response = listing(clocked, f"status=pending&to=a@example.com&limit=1&cursor={urllib.parse.quote(forged)}")
    assert (response.status_code, json.loads(response.body)["Code"]) == (400, "BadCursorError")


def test_a_scoped_token_lists_a_status_only_in_its_mailboxes(
    clocked: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_router(Route("inbox", always, Recorder()))
    mine = post(clocked, eml(1, "a@example.com", "mine"))["id"]
    post(clocked, eml(2, "b@example.com", "theirs"))
    monkeypatch.setenv("READ_TOKENS", f"{TOKEN},{SCOPED}=a@example.com")
    services.reset()
    for query in ("status=pending", "status=pending&to=b@example.com"):
        response = listing(clocked, query, SCOPED)
        assert response.status_code == 403, query
        assert json.loads(response.body)["Code"] == "ForbiddenError"
    response = listing(clocked, "status=pending&to=a@example.com", SCOPED)
    assert [mail["id"] for mail in json.loads(response.body)["mails"]] == [mine]


@pytest.mark.parametrize("status", ["delivered", "FAILED", "", "fail", "failed "])
def test_a_status_the_index_does_not_list_is_400(handoff_client: Client, status: str) -> None:  # noqa: F811
    response = listing(handoff_client, f"status={urllib.parse.quote(status)}")
    assert (response.status_code, json.loads(response.body)) == (400, {
        "Code": "BadRequestError", "Message": "status must be one of pending, processing, bounced, failed"})


def test_a_status_listing_queries_the_sparse_index_and_never_scans(clocked: Client) -> None:
    use_router(Route("inbox", always, Recorder()))
    post(clocked, eml(1, "a@example.com", "one"))
    post(clocked, eml(2, "a@example.com", "two"))
    calls: list[tuple[str, dict[str, Any]]] = []
    services.dynamodb().meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append((model.name, params))
    )
    for query in ("status=pending&limit=1", "status=failed&to=a@example.com&limit=1"):
        assert listing(clocked, query).status_code == 200
    assert {name for name, _ in calls} == {"Query"}
    assert all(params["IndexName"] == "by_status" and params["ScanIndexForward"] is False for _, params in calls)
    # Every shard of the listing's key, and the unsharded key of mail stored before the shards.
    assert sorted(params["ExpressionAttributeValues"][":box"]["S"] for _, params in calls) == sorted(
        schema.status_boxes("pending", "all") + schema.status_boxes("failed", "to#a@example.com"))


class ServiceSession:
    """requests.Session's surface that the `mails` command uses, over Chalice's test client."""

    def __init__(self, client: Client) -> None:
        self.headers: dict[str, str] = {}
        self.client = client
        self.before_post: list[str] = []  # ids another operator re-queues just before this one does

    def _answer(self, answer: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.body
        return response

    def get(self, url: str, params: dict[str, Any], timeout: float) -> requests.Response:
        path = url.removeprefix("http://service") + ("?" + urllib.parse.urlencode(params) if params else "")
        return self._answer(self.client.http.get(path, headers=self.headers))

    def post(self, url: str, timeout: float) -> requests.Response:
        path = url.removeprefix("http://service")
        for mail_id in self.before_post:
            self.client.http.post(f"/mails/{mail_id}/retry", headers=read_headers())
        self.before_post = []
        return self._answer(self.client.http.post(path, headers=self.headers))


def test_mails_list_status_failed_finds_a_mail_whose_handler_failed_and_retry_all_failed_requeues_it(
    clocked: Client, sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    broken = Recorder(failures=100, error=ValueError("cannot parse the ticket number"))
    use_router(Route("fine", subject("fine"), Recorder()), Route("tickets", always, broken))
    first = post(clocked, eml(1, "a@example.com", "ticket 1"))["id"]
    post(clocked, eml(2, "a@example.com", "fine"))
    second = post(clocked, eml(3, "b@example.com", "ticket 2"))["id"]
    drain(sqs, rounds=40)
    capsys.readouterr()  # the handoff's metric lines (chalicelib/metrics.py) are not the command's output
    session = ServiceSession(clocked)
    monkeypatch.setattr(mails_cli.requests, "Session", lambda: session)
    base = ["--url", "http://service", "--token", TOKEN]

    assert mails_cli.main([*base, "list", "--status", "failed", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(mail["id"], mail["subject"]) for mail in listed] == [(second, "ticket 2"), (first, "ticket 1")]
    assert mails_cli.main([*base, "list", "--status", "failed", "--to", "a@example.com", "--json"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [first]

    broken.failures = 0
    session.before_post = [second]  # someone re-queues one of them meanwhile: skipped, not an error
    assert mails_cli.main([*base, "retry", "--all-failed"]) == 0
    assert capsys.readouterr().out == "retried 1, skipped 1 (no longer failed), errors 0\n"
    assert ids(clocked, "failed") == []
    assert ids(clocked, "pending") == [second, first]
    assert mails_cli.main([*base, "retry", "--all-failed"]) == 0  # again: nothing left to do
    assert capsys.readouterr().out == "retried 0, skipped 0 (no longer failed), errors 0\n"
    drain(sqs)
    assert broken.seen.count(first) == broken.seen.count(second) == 6
    assert by_status(clocked) == {status: [] for status in STATUSES}


def test_a_ledger_move_whose_answer_was_lost_is_known_as_ours_and_the_handler_runs_once(
    clocked: Client, sqs: Any  # noqa: F811
) -> None:
    """botocore retries a transaction whose answer never came; the retry, refused, finds the item marked as its own."""
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    mail_id = post(clocked, eml(1, "a@example.com", "once"))["id"]
    other = boto3.client("dynamodb")
    landed: list[str] = []

    def first_attempt_lands(params: dict[str, Any], **kwargs: Any) -> None:
        if not landed:
            other.transact_write_items(**params)  # what the first attempt did before its answer was lost
            landed.append("claim")

    services.dynamodb().meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", first_attempt_lands)
    drain(sqs)
    assert inbox.seen == [mail_id]
    assert by_status(clocked) == {status: [] for status in STATUSES}
    state = json.loads(clocked.http.get(f"/mails/{mail_id}", headers=read_headers()).body)["processing"]
    assert state == {"status": "delivered", "attempts": 1, "error": None}


def test_a_retry_whose_transaction_storage_refuses_is_503_and_leaves_the_mail_failed(
    clocked: Client, sqs: Any  # noqa: F811
) -> None:
    use_router(Route("broken", always, Recorder(failures=100)))
    mail_id = post(clocked, eml(1, "a@example.com", "broken"))["id"]
    drain(sqs, rounds=30)

    def outage(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "TransactWriteItems")

    services.dynamodb().meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", outage)
    response = clocked.http.post(f"/mails/{mail_id}/retry", headers=read_headers())
    assert (response.status_code, json.loads(response.body)["Code"]) == (503, "StorageUnavailableError")
    services.dynamodb().meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", outage)
    assert by_status(clocked, "a@example.com")["failed"] == [mail_id]
