"""Every stored mail handed to its handler at least once, never twice to one that succeeded.

Driven through the app's own SQS consumer, with moto's SQS over HTTP playing the
queue and its dead-letter queue, and scripts/sqs_poller.py playing Lambda's
event source.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.delivery import consumer
from chalicelib.delivery import handoff as handoff_module
from chalicelib.delivery.handoff import backoff_seconds
from chalicelib.delivery.ledger import LEASE
from chalicelib.delivery.routing import Bounce, Route, Router, always, subject
from chalicelib.errors import StorageUnavailableError
from chalicelib.logs import LOGGER_NAME, TRACEBACKS
from chalicelib.mailboxes.replies import Threads
from chalicelib.mailboxes.reply_addresses import reply_address
from chalicelib.model import StoredMail
from chalicelib.wiring import services
from scripts.send_mail import build_body
from scripts.sqs_poller import Poller
from tests.conftest import QUEUE, REPLY_SECRET, ROOT, TABLE, mail_path, read_headers

RECEIVED = datetime(2026, 11, 27, 21, 0, 0, tzinfo=UTC)


def eml(number: int, to: str = "support@example.com", text: str = "Hello", subject_: str = "Question") -> bytes:
    return (
        f"From: Customer <c{number}@example.org>\r\nTo: {to}\r\nSubject: {subject_}\r\n"
        f"Message-ID: <h{number}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


class Recorder:
    """A mailbox that records what it was handed, and fails as often as told."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.seen: list[str] = []
        self.callers: list[tuple[str, int, str]] = []  # the frame that called it: (file, line, function)
        self.failures = failures
        self.error = error or RuntimeError("handler broke on purpose")

    def __call__(self, mail: StoredMail) -> None:
        self.seen.append(mail.id)
        caller = sys._getframe(1)
        self.callers.append((caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name))
        if self.failures > 0:
            self.failures -= 1
            raise self.error


def lines_of(path: str, statement: str) -> list[int]:
    """The numbers of the lines of a file that are ``statement``."""
    return [n for n, line in enumerate((ROOT / path).read_text().splitlines(), 1) if line.strip() == statement]


def line_of(path: str, statement: str) -> int:
    """The number of the one line of a test file that is ``statement``."""
    (number,) = lines_of(path, statement)
    return number


RECORDER_RAISE = line_of("tests/contract/test_handoff.py", "raise self.error")


@pytest.fixture
def sqs(configured: str) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backoff each failed attempt asked for; the tests then let that time pass at once."""
    asked: list[int] = []

    def record(attempt: int) -> int:
        asked.append(backoff_seconds(attempt))
        return 0

    monkeypatch.setattr(handoff_module, "backoff_seconds", record)
    return asked


@pytest.fixture
def handoff_client(client: Client, backoffs: list[int]) -> Iterator[Client]:
    services.sendgrid().clock = lambda: RECEIVED
    yield client


def use_router(*routes: Route) -> None:
    services.handoff().router = Router(list(routes))


def post(client: Client, message: bytes) -> dict[str, Any]:
    body, content_type = build_body(message)
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code in (200, 503), response.body
    return {"status": response.status_code, **json.loads(response.body)}


def processing(client: Client, mail_id: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)[
        "processing"
    ]
    return result


def poller(sqs: Any, name: str = QUEUE) -> Poller:
    return Poller(sqs, name, consumer.hand_off)


def drain(sqs: Any, rounds: int = 20) -> None:
    for _ in range(rounds):
        if poller(sqs).poll() == (0, 0):
            return
    raise AssertionError("the queue did not drain")


def queue_depth(sqs: Any, name: str) -> int:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


# -- the handoff, end to end ---------------------------------------------------------


def test_a_stored_mail_is_pending_then_delivered_to_its_mailbox(handoff_client: Client, sqs: Any) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    answer = post(handoff_client, eml(1))
    assert processing(handoff_client, answer["id"]) == {"status": "pending", "attempts": 0, "error": None}
    assert queue_depth(sqs, QUEUE) == 1
    drain(sqs)
    assert inbox.seen == [answer["id"]]
    assert processing(handoff_client, answer["id"]) == {"status": "delivered", "attempts": 1, "error": None}
    assert queue_depth(sqs, QUEUE) == 0


def test_a_handler_reads_the_mails_bytes_and_its_message(handoff_client: Client, sqs: Any) -> None:
    read: list[tuple[str, bytes]] = []

    def reader(mail: StoredMail) -> None:
        read.append((str(mail.message()["Subject"]), mail.raw_message()))

    use_router(Route("reader", always, reader))
    source = eml(2, subject_="Bytes, please")
    body, content_type = build_body(source, raw=True)
    answer = json.loads(handoff_client.http.post(mail_path(), body=body, headers={"Content-Type": content_type}).body)
    drain(sqs)
    assert read == [("Bytes, please", source)]
    assert processing(handoff_client, answer["id"]) == {"status": "delivered", "attempts": 1, "error": None}


def test_the_shipped_replies_mailbox_files_the_reply_under_its_thread(handoff_client: Client, sqs: Any) -> None:
    address = reply_address(REPLY_SECRET, "ticket-42", "c2@example.org", "example.com")
    answer = post(handoff_client, eml(2, to=address,
                                     text="Works now.\r\n\r\nOn Mon, Support wrote:\r\n> Try again\r\n"))
    other = post(handoff_client, eml(3))
    drain(sqs)
    assert processing(handoff_client, answer["id"])["status"] == "delivered"
    assert processing(handoff_client, other["id"])["status"] == "delivered"
    replies = Threads(boto3.client("dynamodb"), TABLE).replies("ticket-42")
    assert replies == [{"mail_id": answer["id"], "from": "c2@example.org", "text": "Works now."}]


def test_a_reply_with_nothing_of_its_own_bounces_without_retries(handoff_client: Client, sqs: Any) -> None:
    address = reply_address(REPLY_SECRET, "t", "c4@example.org", "example.com")
    answer = post(handoff_client, eml(4, to=address, text="\r\nOn Mon, S wrote:\r\n> q\r\n"))
    drain(sqs)
    assert processing(handoff_client, answer["id"]) == {
        "status": "bounced", "attempts": 1,
        "error": {"class": "Bounce", "message": "the reply has no text of its own", "route": "replies"},
    }
    assert queue_depth(sqs, QUEUE) == 0


def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(
    handoff_client: Client, sqs: Any, backoffs: list[int]
) -> None:
    flaky = Recorder(failures=2)
    use_router(Route("flaky", always, flaky))
    answer = post(handoff_client, eml(5))
    poller(sqs).poll()
    state = processing(handoff_client, answer["id"])
    assert state == {
        "status": "pending", "attempts": 1,
        "error": {"class": "RuntimeError", "message": "handler broke on purpose", "route": "flaky"},
    }
    drain(sqs)
    assert backoffs == [30, 60]
    assert flaky.seen == [answer["id"]] * 3
    assert processing(handoff_client, answer["id"])["status"] == "delivered"
    assert processing(handoff_client, answer["id"])["attempts"] == 3


def test_after_the_last_attempt_the_mail_fails_and_the_message_goes_to_the_dead_letter_queue(
    handoff_client: Client, sqs: Any, backoffs: list[int]
) -> None:
    broken = Recorder(failures=100, error=ValueError("cannot parse the ticket number"))
    use_router(Route("tickets", always, broken))
    answer = post(handoff_client, eml(6))
    drain(sqs, rounds=30)
    assert len(broken.seen) == 5
    assert processing(handoff_client, answer["id"]) == {
        "status": "failed", "attempts": 5,
        "error": {"class": "ValueError", "message": "cannot parse the ticket number", "route": "tickets"},
    }
    assert queue_depth(sqs, QUEUE) == 0
    assert queue_depth(sqs, f"{QUEUE}-dead-letter") == 1
    assert backoffs == [30, 60, 120, 240]  # none after the last: it goes to the dead letters at once

    # An operator fixes the handler and re-queues the mail.
    broken.failures = 0
    retried = handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers())
    assert retried.status_code == 202
    # A new round of attempts: the count starts again, or the first failure of it would be the last.
    assert processing(handoff_client, answer["id"])["status"] == "pending"
    assert processing(handoff_client, answer["id"])["attempts"] == 0
    drain(sqs)
    assert processing(handoff_client, answer["id"]) == {
        "status": "delivered", "attempts": 1,
        "error": {"class": "ValueError", "message": "cannot parse the ticket number", "route": "tickets"},
    }
    assert len(broken.seen) == 6


def test_only_failed_or_bounced_mail_can_be_retried(handoff_client: Client, sqs: Any) -> None:
    use_router(Route("inbox", always, Recorder()))
    answer = post(handoff_client, eml(7))
    response = handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers())
    assert response.status_code == 409
    assert json.loads(response.body)["Message"] == "the mail is pending; only failed or bounced mail is retried"
    assert handoff_client.http.post(f"/mails/{'a' * 26}/retry", headers=read_headers()).status_code == 404
    assert handoff_client.http.post(f"/mails/{answer['id']}/retry").status_code == 401


def test_a_mail_committed_but_not_queued_is_queued_by_the_redelivery(
    handoff_client: Client, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    queue = services.sendgrid().queue
    assert queue is not None
    real_send = queue.send

    def down(mail_id: str) -> None:
        raise StorageUnavailableError("SQS SendMessage failed")

    monkeypatch.setattr(queue, "send", down)
    first = post(handoff_client, eml(8))
    assert first["status"] == 503
    assert processing(handoff_client, _only_mail_id())["status"] == "pending"  # committed, not handed over
    assert queue_depth(sqs, QUEUE) == 0

    monkeypatch.setattr(queue, "send", real_send)
    again = post(handoff_client, eml(8))
    assert again["status"] == 200 and again["duplicate"] is True
    drain(sqs)
    assert inbox.seen == [again["id"]]
    assert processing(handoff_client, again["id"])["status"] == "delivered"


def _only_mail_id() -> str:
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    [mail_id] = [item["id"]["S"] for item in items if item["sk"]["S"] == "mail"]
    return mail_id


def test_a_redelivery_after_the_handoff_queues_nothing_and_runs_nothing_twice(
    handoff_client: Client, sqs: Any
) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    first = post(handoff_client, eml(9))
    drain(sqs)
    again = post(handoff_client, eml(9))
    assert again["duplicate"] is True
    assert queue_depth(sqs, QUEUE) == 0
    assert inbox.seen == [first["id"]]


def test_two_messages_for_one_mail_run_its_handler_once(handoff_client: Client, sqs: Any) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    first = post(handoff_client, eml(10))
    post(handoff_client, eml(10))  # still pending: the redelivery sends the id again
    assert queue_depth(sqs, QUEUE) == 2
    drain(sqs)
    assert inbox.seen == [first["id"]]
    assert queue_depth(sqs, QUEUE) == 0


@pytest.mark.parametrize(
    "body",
    ["not json with secret-content", '["secret-content"]', '{"id": 5, "x": "secret-content"}',
     '{"id": "secret-content", "round": 7}', '{"mail": "secret-content"}'],
)
def test_an_unreadable_message_is_dropped_and_logged_without_content(
    handoff_client: Client, log_records: pytest.LogCaptureFixture, body: str
) -> None:
    event = handoff_client.events.generate_sqs_event(message_bodies=[body], queue_name=QUEUE)
    handoff_client.lambda_.invoke("hand_off", event)
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    assert lines[-1]["outcome"] == "unreadable message"
    assert all("secret-content" not in r.getMessage() for r in log_records.records)


def test_a_handler_error_reaches_lambdas_log_without_its_message(
    handoff_client: Client, sqs: Any, log_records: pytest.LogCaptureFixture
) -> None:
    leaky = Recorder(failures=1, error=RuntimeError("customer wrote: my password is x"))
    use_router(Route("leaky", always, leaky))
    answer = post(handoff_client, eml(11))
    event = handoff_client.events.generate_sqs_event(
        message_bodies=[json.dumps({"id": answer["id"]})], queue_name=QUEUE
    )
    with pytest.raises(consumer.HandlerFailed) as caught:
        handoff_client.lambda_.invoke("hand_off", event)
    assert str(caught.value) == f"RuntimeError handling mail {answer['id']}"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    # Where it was raised, frame by frame, outermost first; never what it said.
    assert {k: v for k, v in lines[-1].items() if k != "ms"} == {
        "route": "handoff", "id": answer["id"], "outcome": "retry", "mailbox": "leaky", "error": "RuntimeError",
        "receive_count": 1,
        "frames": [
            f"{Path(caller).relative_to(ROOT).as_posix()}:{line} in {function}"
            for caller, line, function in leaky.callers  # the handoff's frame that ran the handler
        ] + [f"tests/contract/test_handoff.py:{RECORDER_RAISE} in __call__"],
    }
    assert [Path(caller) for caller, _, _ in leaky.callers] == [Path(handoff_module.__file__)]
    assert all("my password" not in r.getMessage() for r in log_records.records)
    assert [r.exc_info for r in log_records.records if r.name == LOGGER_NAME and r.exc_info] == []


def test_under_make_dev_a_handler_errors_whole_traceback_is_logged_before_its_line(
    handoff_client: Client, log_records: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRACEBACKS, "1")  # as scripts/dev.py sets it
    leaky = Recorder(failures=1, error=RuntimeError("customer wrote: my password is x"))
    use_router(Route("leaky", always, leaky))
    answer = post(handoff_client, eml(19))
    event = handoff_client.events.generate_sqs_event(
        message_bodies=[json.dumps({"id": answer["id"]})], queue_name=QUEUE
    )
    with pytest.raises(consumer.HandlerFailed):
        handoff_client.lambda_.invoke("hand_off", event)
    traceback_record, line_record = [r for r in log_records.records if r.name == LOGGER_NAME][-2:]
    assert traceback_record.levelno == logging.ERROR
    assert traceback_record.getMessage() == "RuntimeError's traceback:"
    assert traceback_record.exc_info is not None
    text = logging.Formatter().formatException(traceback_record.exc_info)
    assert text.startswith("Traceback (most recent call last):\n")
    ((caller, line, function),) = leaky.callers
    assert f'File "{caller}", line {line}, in {function}\n' in text
    assert text.endswith("    raise self.error\nRuntimeError: customer wrote: my password is x")
    assert json.loads(line_record.getMessage())["outcome"] == "retry"


def test_the_last_attempts_line_says_failed_as_the_ledger_does(
    handoff_client: Client, sqs: Any, backoffs: list[int], log_records: pytest.LogCaptureFixture
) -> None:
    use_router(Route("tickets", always, Recorder(failures=100, error=ValueError("cannot parse the ticket number"))))
    answer = post(handoff_client, eml(20))
    drain(sqs, rounds=30)
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    assert [(line["outcome"], line["mailbox"], line["error"], line["receive_count"])
            for line in lines if line.get("route") == "handoff"] == [
        ("retry", "tickets", "ValueError", 1),
        ("retry", "tickets", "ValueError", 2),
        ("retry", "tickets", "ValueError", 3),
        ("retry", "tickets", "ValueError", 4),
        ("failed", "tickets", "ValueError", 5),
        # The receive past the last attempt, on its way to the dead letters: no handler ran.
        ("failed", None, "AttemptsExhausted", 6),
    ]
    assert processing(handoff_client, answer["id"])["status"] == "failed"
    assert queue_depth(sqs, f"{QUEUE}-dead-letter") == 1


def test_a_mail_whose_last_attempt_died_with_its_lease_can_be_retried(handoff_client: Client, sqs: Any) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    answer = post(handoff_client, eml(12))
    handoff = services.handoff()
    assert handoff.ledger.claim(answer["id"], RECEIVED, None)  # an attempt that then crashed
    handoff.clock = lambda: RECEIVED
    assert handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers()).status_code == 409
    handoff.clock = lambda: RECEIVED + LEASE + timedelta(seconds=1)
    assert handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers()).status_code == 202
    drain(sqs)
    assert inbox.seen == [answer["id"]]


def test_a_retry_is_not_undone_by_the_last_message_of_the_round_before(
    handoff_client: Client, sqs: Any, log_records: pytest.LogCaptureFixture
) -> None:
    """The first round's message outlives a retry when its attempt died holding the lease: its receive past the
    last attempt would fail the new round, and its earlier receives would count against it."""
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    answer = post(handoff_client, eml(19))
    handoff = services.handoff()
    assert handoff.ledger.claim(answer["id"], RECEIVED, None)  # the first round's attempt, which then crashed
    handoff.clock = lambda: RECEIVED + LEASE + timedelta(seconds=1)
    assert handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers()).status_code == 202
    # The first round's message, shown past its last attempt (it has no round), and the retry's own message.
    assert handoff.process(answer["id"], receive_count=6) == handoff_module.Attempt("superseded")
    assert processing(handoff_client, answer["id"]) == {"status": "pending", "attempts": 0, "error": None}
    drain(sqs)
    assert inbox.seen == [answer["id"]]
    assert processing(handoff_client, answer["id"]) == {"status": "delivered", "attempts": 1, "error": None}
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    assert sorted(line["outcome"] for line in lines if line.get("route") == "handoff") == ["delivered", "superseded"]
    assert queue_depth(sqs, QUEUE) == 0
    assert queue_depth(sqs, f"{QUEUE}-dead-letter") == 0


def test_a_message_of_the_current_round_still_goes_to_the_dead_letters_past_its_last_attempt(
    handoff_client: Client, sqs: Any
) -> None:
    use_router(Route("inbox", always, Recorder()))
    answer = post(handoff_client, eml(20))
    handoff = services.handoff()
    assert handoff.ledger.claim(answer["id"], RECEIVED, None)
    handoff.clock = lambda: RECEIVED + LEASE + timedelta(seconds=1)
    assert handoff_client.http.post(f"/mails/{answer['id']}/retry", headers=read_headers()).status_code == 202
    (current,) = [message for message in _messages(sqs) if "round" in message]
    with pytest.raises(handoff_module.AttemptsExhausted):
        handoff.process(answer["id"], receive_count=6, round_id=current["round"])
    assert processing(handoff_client, answer["id"])["status"] == "failed"


def _messages(sqs: Any) -> list[dict[str, Any]]:
    """The queue's messages, read and shown again at once."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    return [json.loads(message["Body"]) for message in received]


class Crash(BaseException):
    """What a Lambda timeout or an out-of-memory kill looks like to the ledger: no answer at all."""


def test_a_last_attempt_that_dies_without_an_answer_still_ends_failed(
    handoff_client: Client, sqs: Any, monkeypatch: pytest.MonkeyPatch, backoffs: list[int]
) -> None:
    attempts: list[int] = []

    def handler(mail: StoredMail) -> None:
        attempts.append(1)
        if len(attempts) < 5:
            raise RuntimeError("not yet")
        raise Crash  # the fifth and last attempt never answers

    use_router(Route("slow", always, handler))
    answer = post(handoff_client, eml(13))
    receipts: list[str] = []

    def recording(event: dict[str, Any], context: Any) -> Any:
        receipts.append(event["Records"][0]["receiptHandle"])
        return consumer.hand_off(event, context)

    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    for _ in range(10):
        try:
            if Poller(sqs, QUEUE, recording).poll() == (0, 0):
                break
        except Crash:
            # The crashed attempt's message comes back after its visibility
            # timeout, once its lease has run out: both made to pass now.
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipts[-1], VisibilityTimeout=0)
            services.handoff().clock = lambda: datetime.now(UTC) + LEASE * 2
    assert len(attempts) == 5
    assert processing(handoff_client, answer["id"]) == {
        "status": "failed", "attempts": 5,
        "error": {"class": "AttemptsExhausted", "message": "the last attempt ended without an answer", "route": None},
    }
    assert queue_depth(sqs, QUEUE) == 0
    assert queue_depth(sqs, f"{QUEUE}-dead-letter") == 1
    assert backoffs == [30, 60, 120, 240]  # none after the last: it goes to the dead letters at once


def test_a_second_consumer_meeting_a_held_lease_leaves_the_mail_to_the_first(handoff_client: Client, sqs: Any) -> None:
    """SQS may hand one message to two consumers, or a redelivery queue the id twice: one handler runs."""
    second_tries: list[str] = []

    def slow(mail: StoredMail) -> None:
        if second_tries:
            return  # the second consumer's run, if the lease let it in
        # While this attempt holds the lease, another consumer takes the same mail.
        second_tries.append("started")
        try:
            services.handoff().process(mail.id, 1)
        except handoff_module.Busy as exc:
            second_tries.append(type(exc).__name__)
        else:
            second_tries.append("ran")

    use_router(Route("slow", always, slow))
    answer = post(handoff_client, eml(14))
    drain(sqs)
    assert second_tries == ["started", "Busy"]
    assert processing(handoff_client, answer["id"]) == {"status": "delivered", "attempts": 1, "error": None}


def test_each_attempt_is_one_log_line_naming_its_outcome_and_mailbox(
    handoff_client: Client, sqs: Any, log_records: pytest.LogCaptureFixture
) -> None:
    def refuse(mail: StoredMail) -> None:
        raise Bounce("refused on purpose")

    use_router(Route("refuse", subject(r"refuse"), refuse), Route("inbox", always, Recorder()))
    delivered = post(handoff_client, eml(15))["id"]
    bounced = post(handoff_client, eml(16, subject_="please refuse"))["id"]
    drain(sqs)
    services.handoff().queue.send(delivered)  # a second message for a mail already handed over: spent
    drain(sqs)
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    handoffs = [(line["id"], line["outcome"], line["mailbox"], line["receive_count"])
                for line in lines if line.get("route") == "handoff"]
    assert sorted(handoffs[:2]) == sorted([(delivered, "delivered", "inbox", 1), (bounced, "bounced", "refuse", 1)])
    assert handoffs[2:] == [(delivered, "delivered", None, 1)]


def test_a_mail_stored_without_a_handoff_cannot_be_retried(client: Client) -> None:
    services.sendgrid().queue = None  # as a stage without MAILS_QUEUE stores it: no handoff state
    untracked = post(client, eml(17))["id"]
    assert processing(client, untracked) is None
    response = client.http.post(f"/mails/{untracked}/retry", headers=read_headers())
    assert response.status_code == 409
    assert json.loads(response.body)["Message"] == "the mail is not tracked; only failed or bounced mail is retried"


def test_a_message_for_an_untracked_mail_runs_no_handler_and_says_so(
    handoff_client: Client, sqs: Any, log_records: pytest.LogCaptureFixture
) -> None:
    inbox = Recorder()
    use_router(Route("inbox", always, inbox))
    queue = services.sendgrid().queue
    services.sendgrid().queue = None
    untracked = post(handoff_client, eml(18))["id"]
    assert queue is not None
    queue.send(untracked)  # an id queued by hand, for a mail stored without a handoff
    drain(sqs)
    assert inbox.seen == []
    lines = [json.loads(r.getMessage()) for r in log_records.records if r.name == LOGGER_NAME]
    assert [(line["id"], line["outcome"], line["mailbox"]) for line in lines if line.get("route") == "handoff"] == [
        (untracked, "untracked", None)
    ]
