"""What an operator sees: each line as JSON with its Lambda context and mail id, and the EMF metric blobs.

Driven through the app (Chalice's test client) and the queue functions (scripts/sqs_poller.py as Lambda's
event source), against moto's server; the blobs are read from stdout, where Lambda hands them to CloudWatch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import logs, metrics, tracing
from chalicelib.delivery.routing import Route, always
from scripts.send_mail import build_body
from tests.conftest import KEY, ROOT, SECRET, mail_path
from tests.contract.test_handoff import (  # noqa: F401  # backoffs, handoff_client and sqs are fixtures used here
    Recorder,
    backoffs,
    drain,
    eml,
    handoff_client,
    lines_of,
    sqs,
    use_router,
)

NOW_MS = 1_796_000_000_000
STORED_DIMENSIONS = [["Service"], ["Ingress"]]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "clock_ms", lambda: NOW_MS)


def blobs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def emf(metric_units: dict[str, str], dimensions: dict[str, str], sets: list[list[str]],
        values: dict[str, Any]) -> dict[str, Any]:
    """The blob CloudWatch's embedded metric format asks for, written out by hand."""
    return {
        "_aws": {
            "Timestamp": NOW_MS,
            "CloudWatchMetrics": [{
                "Namespace": "inbound-mail/local", "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in metric_units.items()],
            }],
        },
        **dimensions, **values,
    }


def post(client: Client, body: bytes, content_type: str, path: str | None = None) -> Any:
    return client.http.post(path or mail_path(), body=body, headers={"Content-Type": content_type})


def test_a_stored_mail_is_one_line_with_its_lambda_context_and_id_and_one_blob(
    client: Client, logged: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    body, content_type = build_body(eml(1))
    response = post(client, body, content_type)
    mail_id = json.loads(response.body)["id"]
    [line] = logged
    assert set(line) == {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
                         "function_arn", "function_request_id", "correlation_id"}
    # The caller's (every ingress's answer), not logs.py's. web.py has that statement once; mutmut's copy of it
    # (make mutate) once more in each mutant of ingress_answer, and the copy that ran is the one logged.
    where = {f"run:{number}" for number in lines_of("chalicelib/web.py", "logs.line(")}
    assert (line["level"], line["service"]) == ("INFO", "inbound-mail")
    assert line["location"] in where
    assert line["function_name"] == "api_handler"  # chalice's name for the REST API's function
    assert len(line["function_request_id"]) == 36
    assert isinstance(line["cold_start"], bool)
    assert line["correlation_id"] == mail_id
    assert line["message"] == {"route": "POST /mails", "status": 200, "id": mail_id, "outcome": "stored",
                               "bytes": len(body), "attachments": 0, "ms": line["message"]["ms"]}
    [blob] = blobs(capsys.readouterr().out)
    decode_ms = blob["DecodeTime"]
    assert isinstance(decode_ms, float) and 0 <= decode_ms < 5000
    assert blob == emf(
        {"MailsStored": "Count", "BytesReceived": "Bytes", "DecodeTime": "Milliseconds"},
        {"Service": "inbound-mail", "Ingress": "sendgrid"}, STORED_DIMENSIONS,
        {"MailsStored": 1, "BytesReceived": len(body), "DecodeTime": decode_ms},
    )
    # The same mail again: a duplicate, counted as one.
    post(client, body, content_type)
    [again] = blobs(capsys.readouterr().out)
    assert again["Duplicates"] == 1 and "MailsStored" not in again


def test_only_the_first_invocation_of_a_process_is_its_cold_start(
    client: Client, logged: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(logs._process, "warm", False)
    body, content_type = build_body(eml(2))
    for _ in range(2):
        post(client, body, content_type)
    assert [line["cold_start"] for line in logged] == [True, False]
    assert len({line["function_request_id"] for line in logged}) == 2


def test_a_quarantined_post_is_counted_and_its_line_has_no_mail_id(
    client: Client, logged: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    junk = b"--xYzZY\r\nContent-Disposition: form-data; name=\"nothing\"\r\n\r\nno mail here\r\n--xYzZY--\r\n"
    response = post(client, junk, "multipart/form-data; boundary=xYzZY")
    assert response.status_code == 400
    assert "quarantine" in json.loads(response.body)
    [line] = logged
    assert "correlation_id" not in line or line["correlation_id"] is None
    assert line["message"]["outcome"] == "MalformedMailError"
    [blob] = blobs(capsys.readouterr().out)
    assert blob == emf(
        {"Quarantined": "Count", "BytesReceived": "Bytes", "DecodeTime": "Milliseconds"},
        {"Service": "inbound-mail", "Ingress": "sendgrid"}, STORED_DIMENSIONS,
        {"Quarantined": 1, "BytesReceived": len(junk), "DecodeTime": blob["DecodeTime"]},
    )


def test_a_refused_post_is_a_401_counted_before_anything_is_decoded(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    body, content_type = build_body(eml(3))
    response = post(client, body, content_type, path=mail_path(KEY, SECRET + "-wrong"))
    assert response.status_code == 401
    assert blobs(capsys.readouterr().out) == [emf(
        {"Unauthorized": "Count", "BytesReceived": "Bytes"},
        {"Service": "inbound-mail", "Ingress": "sendgrid"}, STORED_DIMENSIONS,
        {"Unauthorized": 1, "BytesReceived": len(body)},
    )]


def test_a_5xx_is_counted_by_its_cause(client: Client, capsys: pytest.CaptureFixture[str], dynamodb: Any) -> None:
    dynamodb.delete_table(TableName="mails-local")
    body, content_type = build_body(eml(4))
    assert post(client, body, content_type).status_code == 503
    [blob] = blobs(capsys.readouterr().out)
    assert blob == emf(
        {"ServerErrors": "Count", "BytesReceived": "Bytes", "DecodeTime": "Milliseconds"},
        {"Service": "inbound-mail", "Ingress": "sendgrid", "Cause": "StorageUnavailableError"},
        [["Service"], ["Ingress"], ["Ingress", "Cause"]],
        {"ServerErrors": 1, "BytesReceived": len(body), "DecodeTime": blob["DecodeTime"]},
    )


def test_a_failed_handoff_counts_each_attempt_then_the_failure_then_the_dead_letter(
    handoff_client: Client, sqs: Any, logged: list[dict[str, Any]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_router(Route("tickets", always, Recorder(failures=100, error=ValueError("cannot parse the ticket number"))))
    body, content_type = build_body(eml(5))
    mail_id = json.loads(post(handoff_client, body, content_type).body)["id"]
    capsys.readouterr()
    drain(sqs, rounds=30)
    handoff = [line for line in logged if line["message"].get("route") == "handoff"]
    assert [(line["correlation_id"], line["function_name"], line["message"]["outcome"]) for line in handoff] == [
        *[(mail_id, "hand_off", "retry")] * 4, (mail_id, "hand_off", "failed"), (mail_id, "hand_off", "failed"),
    ]
    mailbox = {"Service": "inbound-mail", "Mailbox": "tickets"}
    sets = [["Service"], ["Mailbox"]]
    assert blobs(capsys.readouterr().out) == [
        *[emf({"Attempts": "Count", "Retried": "Count"}, mailbox, sets, {"Attempts": 1, "Retried": 1})] * 4,
        emf({"Attempts": "Count", "Failed": "Count"}, mailbox, sets, {"Attempts": 1, "Failed": 1}),
        emf({"DeadLettered": "Count"}, {"Service": "inbound-mail", "Mailbox": "none"}, sets, {"DeadLettered": 1}),
    ]


def test_a_delivered_handoff_is_one_attempt_and_a_spent_message_counts_nothing(
    handoff_client: Client, sqs: Any, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from chalicelib.wiring import services

    use_router(Route("inbox", always, Recorder()))
    body, content_type = build_body(eml(6))
    mail_id = json.loads(post(handoff_client, body, content_type).body)["id"]
    capsys.readouterr()
    drain(sqs)
    services.handoff().queue.send(mail_id)  # a second message for a mail already handed over
    drain(sqs)
    assert blobs(capsys.readouterr().out) == [emf(
        {"Attempts": "Count", "Delivered": "Count"}, {"Service": "inbound-mail", "Mailbox": "inbox"},
        [["Service"], ["Mailbox"]], {"Attempts": 1, "Delivered": 1},
    )]


def test_the_namespace_is_the_stages(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(metrics.NAMESPACE, "inbound-mail/prod")
    metrics.ingested(metrics.Ingested("mailgun", 413, received_bytes=10))
    [blob] = blobs(capsys.readouterr().out)
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "inbound-mail/prod"
    assert (blob["Ingress"], blob["TooLarge"]) == ("mailgun", 1)


def test_spans_import_no_xray_unless_lambda_traces_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off, tracing costs a cold start nothing: a fresh interpreter that ran a span has no aws_xray_sdk."""
    code = ("import app, sys; from chalicelib import tracing\nwith tracing.span('decode'): pass\n"
            "print('aws_xray_sdk' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != tracing.DAEMON}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "False"
    monkeypatch.delenv(tracing.DAEMON, raising=False)
    with tracing.span("decode"):
        pass
    assert tracing.recorder() is None
    assert isinstance(tracing.elapsed("decode"), float)
    tracing.reset()
    assert tracing.elapsed("decode") is None


TRACED = """
import json, sys
from aws_xray_sdk.core import xray_recorder
from chalicelib import tracing
from chalicelib.ingress.sendgrid.webhook import Delivery
from chalicelib.wiring import services

xray_recorder.configure(sampling=False, context_missing="LOG_ERROR")
body, content_type = sys.stdin.buffer.read(), sys.argv[1]
xray_recorder.begin_segment("inbound-mail")  # Lambda's own segment, where Lambda runs it
services.sendgrid().ingest(Delivery(body, content_type, {"MailKey": sys.argv[2], "MailSecret": sys.argv[3]}, {}))
xray_recorder.end_segment()
"""


def test_where_lambda_traces_decode_s3_dynamodb_and_sqs_are_subsegments_of_their_own(configured: str) -> None:
    """X-Ray's daemon played by a UDP socket: what the SDK sends it is what X-Ray would show."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(30)
        env = {**os.environ, tracing.DAEMON: f"127.0.0.1:{daemon.getsockname()[1]}"}
        body, content_type = build_body(eml(7))
        subprocess.run([sys.executable, "-c", TRACED, content_type, KEY, SECRET], input=body, env=env, cwd=ROOT,
                       check=True, timeout=120, capture_output=True)
        header, segment = daemon.recv(65536).decode().split("\n", 1)
    assert json.loads(header) == {"format": "json", "version": 1}
    subsegments = json.loads(segment)["subsegments"]
    assert [(s["name"], s.get("aws", {}).get("operation")) for s in subsegments] == [
        # The mailbox is new: its register item is written after the commit (read beside the puts, on a pool thread).
        ("decode", None), ("s3", "PutObject"), ("dynamodb", "TransactWriteItems"), ("dynamodb", "BatchWriteItem"),
        ("sqs", "GetQueueUrl"), ("sqs", "SendMessage"),
    ]
