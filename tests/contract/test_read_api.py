"""The read API: mailboxes in pages, attachments and originals, and the command-line reader."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from chalice.test import Client

from chalicelib.api import downloads
from chalicelib.storage import schema
from chalicelib.wiring import services
from scripts import mails as mails_cli
from scripts.send_mail import build_body
from tests.conftest import TABLE, TOKEN, mail_path, read_headers

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64
NAME = "請求書 \"final\".pdf"


def eml(number: int, to: str, attachment: bytes | None = None) -> bytes:
    head = (
        f"From: Sender {number} <s{number}@example.org>\r\nTo: {to}\r\nSubject: mail {number}\r\n"
        f"Message-ID: <m{number}@example.org>\r\nDate: Sun, 01 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    ).encode()
    if attachment is None:
        return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    return head + (
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n--XX\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''"
        + urllib.parse.quote(NAME).encode()
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + __import__("base64").encodebytes(attachment)
        + b"\r\n--XX--\r\n"
    )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock(client: Client) -> Clock:
    clock = Clock()
    services.sendgrid().clock = clock
    return clock


def post(client: Client, message: bytes, envelope_to: list[str] | None = None) -> str:
    body, content_type = build_body(message, envelope_to=envelope_to)
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.body
    mail_id: str = json.loads(response.body)["id"]
    return mail_id


def get(client: Client, path: str) -> Any:
    return client.http.get(path, headers=read_headers())


def all_pages(client: Client, query: str, limit: int) -> Iterator[dict[str, Any]]:
    cursor = None
    for _ in range(100):
        path = f"/mails?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        response = get(client, path)
        assert response.status_code == 200, response.body
        page = json.loads(response.body)
        assert len(page["mails"]) <= limit
        yield page
        cursor = page["cursor"]
        if cursor is None:
            return
    raise AssertionError("the cursor never ended")


@pytest.fixture
def mailboxes(client: Client, clock: Clock) -> dict[str, list[str]]:
    """Eleven mails with interleaved arrivals over three mailboxes; one goes to two of them."""
    expected: dict[str, list[str]] = {"a@example.com": [], "b@example.com": [], "c@example.com": [], "all": []}
    plan = ["a", "b", "a", "c", "a", "b", "b", "a", "c", "a", "ab"]
    for number, boxes in enumerate(plan):
        recipients = [f"{box}@example.com" for box in boxes]
        mail_id = post(client, eml(number, ", ".join(recipients)), envelope_to=recipients)
        for recipient in recipients:
            expected[recipient].insert(0, mail_id)
        expected["all"].insert(0, mail_id)
    return expected


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])
def test_pages_concatenate_to_exactly_each_mailbox_newest_first(
    client: Client, mailboxes: dict[str, list[str]], limit: int
) -> None:
    for mailbox, ids in mailboxes.items():
        query = "" if mailbox == "all" else f"&to={mailbox}"
        pages = list(all_pages(client, query, limit))
        got = [mail["id"] for page in pages for mail in page["mails"]]
        assert got == ids
        assert len(pages) == max(1, -(-len(ids) // limit))


def test_the_mailbox_is_matched_without_regard_to_case(client: Client, mailboxes: dict[str, list[str]]) -> None:
    page = json.loads(get(client, "/mails?to=B@Example.COM&limit=100").body)
    assert [mail["id"] for mail in page["mails"]] == mailboxes["b@example.com"]


def test_a_summary_names_the_mail_without_its_body(client: Client, clock: Clock) -> None:
    mail_id = post(client, eml(7, "x@example.com", attachment=PDF))
    [summary] = json.loads(get(client, "/mails?to=x@example.com").body)["mails"]
    assert summary == {
        "id": mail_id, "received_at": "2026-11-01T08:00:01.000Z", "subject": "mail 7",
        "from": "s7@example.org", "attachments": 1, "raw_size": summary["raw_size"], "status": "pending",
    }
    assert summary["raw_size"] > len(PDF)


def test_an_unknown_mailbox_is_an_empty_last_page(client: Client, mailboxes: dict[str, list[str]]) -> None:
    assert json.loads(get(client, "/mails?to=nobody@example.com").body) == {"mails": [], "cursor": None}


def test_listing_queries_the_index_and_never_scans(client: Client, mailboxes: dict[str, list[str]]) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    dynamodb = services.dynamodb()
    dynamodb.meta.events.register("provide-client-params.dynamodb.*", lambda params, model, **_: calls.append(
        (model.name, params)))
    list(all_pages(client, "&to=a@example.com", 2))
    list(all_pages(client, "", 4))
    # The index for the page, then the page's statuses by key.
    assert {name for name, _ in calls} == {"Query", "BatchGetItem"}
    queries = [params for name, params in calls if name == "Query"]
    assert all(params["IndexName"] == "by_box" and params["ScanIndexForward"] is False for params in queries)
    # Every shard of the listing's key, and the unsharded key of mail stored before the shards.
    assert {params["ExpressionAttributeValues"][":box"]["S"] for params in queries} == {
        *schema.box_keys("to#a@example.com"), *schema.box_keys("all")}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda cursor: "garbage",
        lambda cursor: cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB"),
        lambda cursor: cursor.split(".")[0],
        lambda cursor: "x" * 5000,
        lambda cursor: "." + cursor.split(".")[1],
    ],
)
def test_a_cursor_we_did_not_issue_is_400(client: Client, mailboxes: dict[str, list[str]], mangle: Any) -> None:
    cursor = json.loads(get(client, "/mails?to=a@example.com&limit=1").body)["cursor"]
    response = get(client, f"/mails?to=a@example.com&limit=1&cursor={urllib.parse.quote(mangle(cursor))}")
    assert response.status_code == 400
    assert json.loads(response.body)["Code"] == "BadCursorError"


def test_a_cursor_never_opens_another_mailbox(client: Client, mailboxes: dict[str, list[str]]) -> None:
    cursor = json.loads(get(client, "/mails?to=a@example.com&limit=1").body)["cursor"]
    for query in ("&to=b@example.com", ""):
        response = get(client, f"/mails?limit=1&cursor={cursor}{query}")
        assert response.status_code == 400
        assert json.loads(response.body) == {
            "Code": "BadCursorError", "Message": "cursor belongs to another listing",
        }


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", "1.5", ""])
def test_a_limit_outside_1_to_100_is_400(client: Client, limit: str) -> None:
    response = get(client, f"/mails?limit={limit}")
    assert response.status_code == 400
    assert json.loads(response.body)["Message"] == "limit must be a whole number from 1 to 100"


def test_an_attachment_downloads_byte_exact_with_its_type_and_name(client: Client, clock: Clock) -> None:
    mail_id = post(client, eml(1, "x@example.com", attachment=PDF))
    response = get(client, f"/mails/{mail_id}/attachments/1")
    assert response.status_code == 200
    assert response.body == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"___ _final_.pdf\"; "
        "filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8%20%22final%22.pdf"
    )


@pytest.mark.parametrize("index", ["0", "2", "x", "9999999"])
def test_an_unknown_attachment_is_404(client: Client, clock: Clock, index: str) -> None:
    mail_id = post(client, eml(1, "x@example.com", attachment=PDF))
    assert get(client, f"/mails/{mail_id}/attachments/{index}").status_code == 404


def test_large_downloads_redirect_to_a_short_lived_s3_link(
    client: Client, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads, "INLINE_DOWNLOAD_BYTES", 1024)
    body, content_type = build_body(eml(1, "x@example.com", attachment=PDF))
    mail_id = json.loads(
        client.http.post(mail_path(), body=body, headers={"Content-Type": content_type}).body
    )["id"]
    for path, expected in ((f"/mails/{mail_id}/attachments/1", PDF), (f"/mails/{mail_id}/raw", body)):
        response = get(client, path)
        assert response.status_code == 302
        location = response.headers["Location"]
        assert "X-Amz-Expires=300" in location
        fetched = requests.get(location, timeout=30)
        assert fetched.status_code == 200
        assert fetched.content == expected
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Content-Disposition"].startswith(f'attachment; filename="{mail_id}.bin"')
    attachment = requests.get(get(client, f"/mails/{mail_id}/attachments/1").headers["Location"], timeout=30)
    assert attachment.headers["Content-Type"] == "application/pdf"
    assert attachment.headers["Content-Disposition"].startswith('attachment; filename="___ _final_.pdf"')


def test_every_read_route_needs_a_read_token(client: Client, clock: Clock) -> None:
    mail_id = post(client, eml(1, "x@example.com", attachment=PDF))
    for path in ("/mails", f"/mails/{mail_id}", f"/mails/{mail_id}/raw", f"/mails/{mail_id}/attachments/1"):
        assert client.http.get(path, headers={"Accept": "*/*"}).status_code == 401
        assert client.http.get(path, headers=read_headers("wrong")).status_code == 401


def test_the_cli_table_counts_wide_characters_as_two_columns() -> None:
    table = mails_cli.table(
        [{"received_at": "2026-11-01T08:00:01.000Z", "id": "a" * 26, "from": "s@example.org",
          "attachments": 2, "subject": "請求書" * 20}]
    )
    header, row = table.splitlines()
    assert header.startswith("RECEIVED")
    assert row.endswith("…")
    assert mails_cli._width(row) <= mails_cli._width(header.ljust(24 + 26 + 28 + 3 + 40 + 8))


def test_the_cli_reads_through_the_http_api(
    client: Client, clock: Clock, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    mail_id = post(client, eml(1, "x@example.com", attachment=PDF))
    capsysbinary.readouterr()  # the post's metric line (chalicelib/metrics.py) is not the reader's output

    class TestClientSession:
        """requests.Session's surface that the reader uses, over Chalice's test client."""

        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

        def get(self, url: str, params: dict[str, Any], timeout: float) -> Any:
            path = url.removeprefix("http://service") + ("?" + urllib.parse.urlencode(params) if params else "")
            answer = client.http.get(path, headers=self.headers)
            response = requests.Response()
            response.status_code = answer.status_code
            response._content = answer.body
            return response

    monkeypatch.setattr(mails_cli.requests, "Session", TestClientSession)
    base = ["--url", "http://service", "--token", read_headers()["Authorization"].split()[1]]
    assert mails_cli.main([*base, "attachment", mail_id, "1"]) == 0
    assert capsysbinary.readouterr().out == PDF
    assert mails_cli.main([*base, "list", "--to", "x@example.com", "--json"]) == 0
    assert json.loads(capsysbinary.readouterr().out)["id"] == mail_id
    assert mails_cli.main([*base, "show", mail_id]) == 0
    shown = json.loads(capsysbinary.readouterr().out)
    assert shown["attachments"][0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    with pytest.raises(SystemExit, match="404"):
        mails_cli.main([*base, "show", "a" * 26])


def test_with_a_retention_mail_carries_its_expiry_and_is_gone_once_past_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_RETENTION_DAYS", "30")
    services.reset()
    received = [datetime.now(UTC) - timedelta(days=31), datetime.now(UTC) - timedelta(days=29)]
    services.sendgrid().clock = lambda: received.pop(0)
    old = post(client, eml(1, "x@example.com"))
    recent = post(client, eml(2, "x@example.com"))
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    expiries = {item["id"]["S"]: int(item["expires_at"]["N"]) for item in items if "id" in item}
    # Two mails and their mailbox entries, each with its expiry, and the mailbox's register item, written for the
    # first mail to outlive it by half the retention, and so not again for the second, which it outlives too.
    assert len(items) == 5
    [register] = [item for item in items if item["pk"]["S"] == "mailbox#x@example.com"]
    assert int(register["expires_at"]["N"]) == expiries[old] + 15 * 86400 > expiries[recent]
    assert expiries[recent] - expiries[old] == 2 * 86400
    assert get(client, f"/mails/{old}").status_code == 404
    assert get(client, f"/mails/{recent}").status_code == 200
    for query in ("?to=x@example.com", ""):
        page = json.loads(get(client, f"/mails{query}").body)
        assert [mail["id"] for mail in page["mails"]] == [recent]


def test_without_a_retention_nothing_expires(client: Client, clock: Clock) -> None:
    post(client, eml(1, "x@example.com"))
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert all("expires_at" not in item for item in items)


def test_rotating_the_read_tokens_retires_every_cursor(
    client: Client, mailboxes: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor = json.loads(get(client, "/mails?to=a@example.com&limit=1").body)["cursor"]
    assert get(client, f"/mails?to=a@example.com&limit=1&cursor={cursor}").status_code == 200
    # The same token kept beside a new one: the cursor's key is derived from the whole set.
    monkeypatch.setenv("READ_TOKENS", f"{TOKEN},a-new-token")
    services.reset()
    response = get(client, f"/mails?to=a@example.com&limit=1&cursor={cursor}")
    assert response.status_code == 400
    assert json.loads(response.body)["Code"] == "BadCursorError"
