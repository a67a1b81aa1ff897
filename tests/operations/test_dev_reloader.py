"""`make dev`'s servers restart when the app's code changes, never because a file was read; its consumers and state."""

from __future__ import annotations

import json
import logging
import stat
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from watchdog import events

from chalicelib.storage import schema
from scripts import dev_state
from scripts.consumers import HandoffLines, handoff_line
from scripts.dev import requeue_unfinished
from scripts.emulator import changes_state
from scripts.sqs_poller import Poller
from scripts.watch import ROOT, restarts_for
from tests.conftest import QUEUE, TABLE

LIB = ROOT / "chalicelib"
SIGNED = "AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


@pytest.mark.parametrize(
    ("event", "restarts"),
    [
        (events.FileModifiedEvent(str(LIB / "mailboxes" / "inbox.py")), True),
        (events.FileCreatedEvent(str(LIB / "mailboxes" / "invoices.py")), True),
        (events.FileDeletedEvent(str(LIB / "mailboxes" / "invoices.py")), True),
        (events.FileClosedEvent(str(ROOT / "app.py")), True),
        (events.FileModifiedEvent(str(ROOT / ".chalice" / "config.json")), True),
        # An editor's save: written beside the file, then moved over it.
        (events.FileMovedEvent(str(LIB / ".inbox.py.swp"), str(LIB / "inbox.py")), True),
        # Reads: the server's own imports and the files it serves. watchdog ≥ 2.3 reports them.
        (events.FileOpenedEvent(str(LIB / "wiring.py")), False),
        (events.FileClosedNoWriteEvent(str(LIB / "wiring.py")), False),
        # Not the app's code.
        (events.FileModifiedEvent(str(LIB / "__pycache__" / "wiring.cpython-311.pyc")), False),
        (events.FileModifiedEvent(str(LIB / "notes.txt")), False),
        (events.FileModifiedEvent(str(ROOT / "tests" / "conftest.py")), False),
        (events.FileModifiedEvent(str(ROOT / "README.md")), False),
        (events.FileModifiedEvent(str(ROOT / ".chalice" / "deployments" / "x.zip")), False),
        (events.FileModifiedEvent("/tmp/chalicelib/app.py"), False),
        (events.DirModifiedEvent(str(LIB)), False),
    ],
)
def test_the_dev_server_restarts_only_for_a_change_to_the_apps_code(
    event: events.FileSystemEvent, restarts: bool
) -> None:
    assert restarts_for(event) is restarts


# -- make dev's queue consumers, its state and its emulator ---------------------------


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"route": "handoff", "id": "iawnzw", "outcome": "delivered", "mailbox": "inbox", "receive_count": 1},
         "iawnzw → inbox: delivered"),
        ({"route": "handoff", "id": "iawnzw", "outcome": "bounced", "mailbox": "replies", "receive_count": 1},
         "iawnzw → replies: bounced"),
        ({"route": "handoff", "id": "iawnzw", "outcome": "retry", "mailbox": "inbox", "error": "RuntimeError",
          "receive_count": 2, "frames": ["chalicelib/mailboxes/x.py:3 in receive"]},
         "iawnzw → inbox: retry (RuntimeError), attempt 2 of 5"),
        ({"route": "handoff", "id": "iawnzw", "outcome": "failed", "mailbox": "inbox", "error": "RuntimeError",
          "receive_count": 5}, "iawnzw → inbox: failed (RuntimeError), attempt 5 of 5"),
        # The receive past the last attempt, and a consumer that found the lease held: no handler ran.
        ({"route": "handoff", "id": "iawnzw", "outcome": "failed", "mailbox": None, "error": "AttemptsExhausted",
          "receive_count": 6}, "iawnzw: failed (AttemptsExhausted)"),
        ({"route": "handoff", "id": "iawnzw", "outcome": "retry", "mailbox": None, "error": "Busy",
          "receive_count": 1}, "iawnzw: retry (Busy), attempt 1 of 5"),
        ({"route": "handoff", "id": "iawnzw", "outcome": "delivered", "mailbox": None, "receive_count": 1},
         "iawnzw: delivered (no handler ran)"),
        ({"route": "handoff", "outcome": "unreadable message"}, "handoff: unreadable message"),
        ({"route": "ses", "status": 200, "id": "iawnzw", "outcome": "stored"}, None),
    ],
)
def test_each_handoff_has_one_line_for_people_without_addresses_or_text(
    fields: dict[str, Any], line: str | None
) -> None:
    assert handoff_line(fields, max_attempts=5) == line


def test_the_consumers_print_the_line_beside_the_json_one(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("test-dev-lines")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    lines = HandoffLines(max_attempts=5)
    logger.addHandler(lines)
    try:
        logger.error("RuntimeError's traceback:")  # not a line of fields: nothing for people
        logger.info('{"route":"handoff","id":"iawnzw","outcome":"delivered","mailbox":"inbox","receive_count":1}')
    finally:
        logger.removeHandler(lines)
    assert capsys.readouterr().out == "iawnzw → inbox: delivered\n"


def signed(service: str, method: str = "POST", target: str | None = None) -> dict[str, str]:
    """A request's environ as moto's server sees it, signed for ``service``."""
    environ = {"REQUEST_METHOD": method, "HTTP_AUTHORIZATION": SIGNED.format(service=service)}
    return environ if target is None else {**environ, "HTTP_X_AMZ_TARGET": target}


@pytest.mark.parametrize(
    ("environ", "changes"),
    [
        *[(signed("s3", method), True) for method in ("PUT", "DELETE", "POST")],
        *[(signed("s3", method), False) for method in ("GET", "HEAD")],
        *[(signed("dynamodb", target=f"DynamoDB_20120810.{action}"), True)
          for action in ("TransactWriteItems", "UpdateItem", "CreateTable")],
        *[(signed("dynamodb", target=f"DynamoDB_20120810.{action}"), False)
          for action in ("GetItem", "Query", "DescribeTable")],
        # SQS is not journaled: a replayed receive or delete would name a message that no longer is.
        (signed("sqs", target="AmazonSQS.SendMessage"), False),
        ({"REQUEST_METHOD": "PUT"}, False),  # unsigned: a presigned link, or the emulator's own API
    ],
)
def test_the_emulator_journals_what_changes_dynamodb_or_s3(environ: dict[str, str], changes: bool) -> None:
    assert changes_state(environ) is changes


def test_the_credentials_are_made_once_readable_by_their_owner_only(tmp_path: Path) -> None:
    state = tmp_path / ".dev"
    made = dev_state.load_or_create_credentials(state)
    assert dev_state.load_or_create_credentials(state) == made
    assert dev_state.read_credentials(state) == made
    assert made.ingest_key == "sendgrid"
    assert len({made.ingest_secret, made.read_token, made.reply_secret}) == 3
    assert stat.S_IMODE((state / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert sorted(path.name for path in state.iterdir()) == ["credentials.json"]


def test_the_scripts_find_the_running_make_devs_url_and_credentials(tmp_path: Path) -> None:
    assert dev_state.server_url(tmp_path) is None
    assert dev_state.read_credentials(tmp_path) is None
    dev_state.write_server(tmp_path, "http://127.0.0.1:8123")
    assert dev_state.server_url(tmp_path) == "http://127.0.0.1:8123"
    credentials = dev_state.Credentials("sendgrid", "s3cret", "t0ken", "r3ply")
    assert dev_state.webhook_url("http://127.0.0.1:8123", credentials) == "http://sendgrid:s3cret@127.0.0.1:8123/mails"
    assert dev_state.without_credentials("http://sendgrid:s3cret@127.0.0.1:8123/mails?MailSecret=x") == (
        "http://127.0.0.1:8123"
    )
    dev_state.remove_server(tmp_path)
    assert dev_state.server_url(tmp_path) is None


def test_a_stopping_poller_hands_back_the_messages_it_has_not_begun(aws: str) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    for number in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": f"mail-{number}"}))
    stop = threading.Event()
    handled: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        handled.append(json.loads(event["Records"][0]["body"])["id"])
        stop.set()  # as SIGTERM does, while the first message is handled

    received = Poller(sqs, QUEUE, handler).poll(stop=stop)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert received == (1, 0)
    assert sorted(json.loads(m["Body"])["id"] for m in again) == sorted({"mail-0", "mail-1", "mail-2"} - set(handled))


def test_make_dev_queues_again_the_mail_left_unfinished(aws: str) -> None:
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    for mail_id, status in (("a", "pending"), ("b", "processing"), ("c", "delivered"), ("d", "failed")):
        dynamodb.put_item(TableName=TABLE, Item={**schema.mail_key(mail_id), "id": {"S": mail_id},
                                                 "status": {"S": status}})
    # A retried mail: its message names the retry's round, or the consumer would take it for a stale one.
    dynamodb.put_item(TableName=TABLE, Item={**schema.mail_key("e"), "id": {"S": "e"}, "status": {"S": "pending"},
                                             schema.ROUND: {"S": "r2"}})
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "mail#a"}, "sk": {"S": "to#x@example.com"},
                                             "id": {"S": "a"}})  # a mailbox entry: no status
    assert requeue_unfinished(TABLE, QUEUE) == 3
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert sorted(bodies) == ['{"id": "a"}', '{"id": "b"}', '{"id": "e", "round": "r2"}']
