"""GET /mailboxes: the mailbox register, in address order, paged, as the token's scope allows; never a scan."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from chalice.test import Client

from chalicelib.storage import schema
from chalicelib.wiring import services
from scripts import mails as mails_cli
from tests.conftest import TOKEN
from tests.contract.test_read_api import Clock, eml, get, post


@pytest.fixture
def clock(client: Client) -> Clock:
    clock = Clock()
    services.sendgrid().clock = clock
    return clock


ADDRESSES = [f"{name}@example.com" for name in "abcdefghijklmnopqrst"]  # 20: every shard holds some


def pages(client: Client, limit: int, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    cursor = None
    for _ in range(50):
        path = f"/mailboxes?limit={limit}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        response = client.http.get(path, headers=headers or {"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.body
        page = json.loads(response.body)
        yield page
        cursor = page["cursor"]
        if cursor is None:
            return
    raise AssertionError("the cursor never ended")


@pytest.fixture
def boxes(client: Client, clock: Clock) -> list[str]:
    """Twenty mailboxes; the first mail goes to two, and each of the first three gets a second mail."""
    post(client, eml(100, f"{ADDRESSES[0]}, {ADDRESSES[1]}"), envelope_to=ADDRESSES[:2])
    for number, address in enumerate(ADDRESSES):
        post(client, eml(number, address), envelope_to=[address])
    for number, address in enumerate(ADDRESSES[:3], start=50):
        post(client, eml(number, address), envelope_to=[address.upper()])
    return ADDRESSES


def test_the_shards_hold_the_addresses_spread() -> None:
    assert len({schema.mailbox_shard(address) for address in ADDRESSES}) == schema.MAILBOX_SHARDS


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_pages_concatenate_to_every_mailbox_once_in_address_order(
    client: Client, boxes: list[str], limit: int
) -> None:
    got = list(pages(client, limit))
    assert [box["address"] for page in got for box in page["mailboxes"]] == boxes
    assert all(len(page["mailboxes"]) <= limit for page in got)
    assert len(got) == max(1, -(-len(boxes) // limit))


def test_a_scoped_token_lists_only_the_mailboxes_of_its_scope(
    client: Client, boxes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READ_TOKENS", f"{TOKEN},narrow-token=[a-f]*@example.com h@example.com")
    services.reset()
    headers = {"Authorization": "Bearer narrow-token"}
    got = [box["address"] for page in pages(client, 2, headers) for box in page["mailboxes"]]
    assert got == [f"{name}@example.com" for name in "abcdefh"]


def test_a_cursor_serves_only_the_scope_it_was_issued_for(
    client: Client, boxes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("READ_TOKENS", f"{TOKEN},narrow-token=*@example.com")
    services.reset()
    cursor = json.loads(get(client, "/mailboxes?limit=2").body)["cursor"]
    response = client.http.get(f"/mailboxes?cursor={urllib.parse.quote(cursor)}",
                               headers={"Authorization": "Bearer narrow-token"})
    assert (response.status_code, json.loads(response.body)["Code"]) == (400, "BadCursorError")


def test_a_mail_listing_cursor_is_no_mailbox_cursor(client: Client, boxes: list[str]) -> None:
    cursor = json.loads(get(client, "/mails?limit=1").body)["cursor"]
    assert get(client, f"/mailboxes?cursor={urllib.parse.quote(cursor)}").status_code == 400


def test_without_a_token_it_is_401(client: Client, boxes: list[str]) -> None:
    assert client.http.get("/mailboxes").status_code == 401


def test_a_mailbox_is_written_once_and_the_listing_reads_the_index_only(
    client: Client, clock: Clock, dynamodb: Any
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    services.dynamodb().meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, model, **_: calls.append((model.name, params))
    )
    post(client, eml(1, "x@example.com"), envelope_to=["x@example.com"])
    post(client, eml(2, "x@example.com"), envelope_to=["x@example.com"])
    post(client, eml(2, "x@example.com"), envelope_to=["x@example.com"])  # a redelivery
    writes = [params for name, params in calls if name == "BatchWriteItem"]
    assert [item["PutRequest"]["Item"] for params in writes for item in params["RequestItems"]["mails-local"]] == [
        {"pk": {"S": "mailbox#x@example.com"}, "sk": {"S": "mailbox"},
         "box": {"S": schema.mailbox_shard("x@example.com")}, "order": {"S": "x@example.com"}},
    ]
    calls.clear()
    assert json.loads(get(client, "/mailboxes").body) == {"mailboxes": [{"address": "x@example.com"}], "cursor": None}
    assert {name for name, _ in calls} == {"Query"}
    assert sorted(params["ExpressionAttributeValues"][":box"]["S"] for _, params in calls) == [
        f"mailboxes#{shard}" for shard in range(schema.MAILBOX_SHARDS)
    ]


def test_with_a_retention_a_mailbox_is_listed_while_it_holds_mail_and_written_again_only_to_outlive_it(
    client: Client, monkeypatch: pytest.MonkeyPatch, dynamodb: Any
) -> None:
    monkeypatch.setenv("MAIL_RETENTION_DAYS", "30")
    services.reset()
    now = datetime.now(UTC).replace(microsecond=0)
    arrivals = [now - timedelta(days=50), now - timedelta(days=20), now - timedelta(days=19), now]
    services.sendgrid().clock = lambda: arrivals.pop(0)

    def register() -> int | None:
        item = dynamodb.get_item(TableName="mails-local", Key=schema.mailbox_key("x@example.com")).get("Item")
        return int(item["expires_at"]["N"]) if item else None

    def day(moment: datetime, days: int) -> int:
        return int((moment + timedelta(days=days)).timestamp())

    post(client, eml(1, "gone@example.com"), envelope_to=["gone@example.com"])  # its mail and register expired
    post(client, eml(2, "x@example.com"), envelope_to=["x@example.com"])
    assert register() == day(now - timedelta(days=20), 30 + 15)
    post(client, eml(3, "x@example.com"), envelope_to=["x@example.com"])
    assert register() == day(now - timedelta(days=20), 30 + 15)  # outlives this mail too: not written
    post(client, eml(4, "x@example.com"), envelope_to=["x@example.com"])
    assert register() == day(now, 30 + 15)  # this one it would not outlive: written again
    assert json.loads(get(client, "/mailboxes").body) == {"mailboxes": [{"address": "x@example.com"}], "cursor": None}


def test_no_mail_is_an_empty_last_page(client: Client) -> None:
    assert json.loads(get(client, "/mailboxes").body) == {"mailboxes": [], "cursor": None}


def test_mails_mailboxes_prints_each_address_following_the_cursor(
    client: Client, boxes: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class TestClientSession:
        """requests.Session's surface that the reader uses, over Chalice's test client."""

        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

        def get(self, url: str, params: dict[str, Any], timeout: float) -> Any:
            path = url.removeprefix("http://service") + "?" + urllib.parse.urlencode(params)
            answer = client.http.get(path, headers=self.headers)
            response = requests.Response()
            response.status_code = answer.status_code
            response._content = answer.body
            return response

    monkeypatch.setattr(mails_cli.requests, "Session", TestClientSession)
    assert mails_cli.main(["--url", "http://service", "--token", TOKEN, "mailboxes", "--limit", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == boxes
