"""Every AWS call of the store failing, one at a time: a 503 that names the call, and nothing half written or lost.

Faults are injected with botocore's own events on the service's clients
(``before-parameter-build``), so the request never reaches the emulator and the rest of
the run is untouched. tests/reliability/ does the same over the network, with
a proxy, a closed port and killed processes; these are the fast, exact ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib.mime import message
from chalicelib.storage import store as store_module
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import BUCKET, QUEUE, TABLE, mail_path, read_headers
from tests.support.ingresses import Hook, down, inject

__all__ = ["inject"]  # a fixture, used by name


def eml(number: int, text: str = "Hello", attachment: bytes | None = None) -> bytes:
    head = (f"From: A <a{number}@example.org>\r\nTo: box@example.com\r\nSubject: s{number}\r\n"
            f"Message-ID: <fault-{number}@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n")
    if attachment is None:
        return (head + f"Content-Type: text/plain\r\n\r\n{text}\r\n").encode()
    return head.encode() + (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
        + text.encode() + b"\r\n--B\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=a.bin\r\n\r\n" + attachment + b"\r\n--B--\r\n"
    )


def post(client: Client, source: bytes) -> Any:
    body, content_type = build_body(source)
    return client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})


def answer(response: Any) -> tuple[int, Any]:
    return response.status_code, json.loads(response.body)


@pytest.mark.parametrize(
    ("service", "operation", "path", "message"),
    [
        ("dynamodb", "GetItem", "/mails/{id}", "DynamoDB GetItem failed (EndpointConnectionError)"),
        ("dynamodb", "Query", "/mails?to=box@example.com", "DynamoDB Query failed (EndpointConnectionError)"),
        ("s3", "GetObject", "/mails/{id}/attachments/1", "S3 GetObject failed (EndpointConnectionError)"),
        ("s3", "GetObject", "/mails/{id}/raw", "S3 GetObject failed (EndpointConnectionError)"),
    ],
)
def test_a_read_that_storage_cannot_serve_is_503_naming_the_call(
    client: Client, inject: Callable[[str, str, Hook], None], service: str, operation: str, path: str, message: str
) -> None:
    mail_id = json.loads(post(client, eml(1, attachment=b"\x00\x01")).body)["id"]
    inject(service, operation, down)
    response = client.http.get(path.format(id=mail_id), headers=read_headers())
    assert answer(response) == (503, {"Code": "StorageUnavailableError", "Message": message})
    assert response.headers["Retry-After"] == "60"


def test_a_large_document_that_s3_cannot_serve_is_503(
    client: Client, inject: Callable[[str, str, Hook], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INLINE_DOCUMENT_BYTES", 100)  # this mail's document goes to S3
    mail_id = json.loads(post(client, eml(2, text="x" * 500)).body)["id"]
    assert json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)["text"].strip() == "x" * 500
    inject("s3", "GetObject", down)
    response = client.http.get(f"/mails/{mail_id}", headers=read_headers())
    assert answer(response) == (503, {"Code": "StorageUnavailableError",
                                      "Message": "S3 GetObject failed (EndpointConnectionError)"})


def eml_with(number: int, attachments: int) -> bytes:
    head = (f"From: A <a{number}@example.org>\r\nTo: box@example.com\r\nSubject: s{number}\r\n"
            f"Message-ID: <fault-{number}@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHello\r\n')
    parts = "".join(
        f"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a{n}.bin\r\n"
        f"\r\n{n}{n}{n}\r\n" for n in range(attachments)
    )
    return (head + parts + "--B--\r\n").encode()


@pytest.mark.parametrize("failing", ["raw", "attachments/1", "attachments/4", "mail.json"])
def test_one_of_a_deliverys_objects_written_at_once_failing_is_503_and_commits_nothing(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any, monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    """The objects go to S3 at once: any one failing still means no transaction and no queued id."""
    monkeypatch.setattr(store_module, "INLINE_DOCUMENT_BYTES", 100)  # the document is one of the objects too
    written: list[str] = []

    def fail_one(params: dict[str, Any], **kwargs: Any) -> None:
        if params["Key"].endswith("/" + failing):
            down()
        written.append(params["Key"])

    inject("s3", "PutObject", fail_one)
    assert answer(post(client, eml_with(20, attachments=4))) == (
        503, {"Code": "StorageUnavailableError", "Message": "S3 PutObject failed (EndpointConnectionError)"}
    )
    assert len(written) == 5  # every other object was written (the pool waits for all before answering)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    assert queued() == []


def test_a_mailbox_register_storage_cannot_read_is_503_and_commits_nothing(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    """The register is read while the objects are written: its failure is the delivery's, before the commit."""
    inject("dynamodb", "BatchGetItem", down)
    assert answer(post(client, eml(21))) == (
        503, {"Code": "StorageUnavailableError", "Message": "DynamoDB BatchGetItem failed (EndpointConnectionError)"}
    )
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    assert queued() == []


def test_a_listing_whose_statuses_storage_cannot_read_is_503_naming_the_call(
    client: Client, inject: Callable[[str, str, Hook], None]
) -> None:
    assert post(client, eml(22)).status_code == 200
    inject("dynamodb", "BatchGetItem", down)
    response = client.http.get("/mails?to=box@example.com", headers=read_headers())
    assert answer(response) == (
        503, {"Code": "StorageUnavailableError", "Message": "DynamoDB BatchGetItem failed (EndpointConnectionError)"}
    )


def test_a_commit_refused_for_another_reason_than_the_mail_being_there_is_503_and_stores_nothing(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    def invalid(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "TransactWriteItems")

    inject("dynamodb", "TransactWriteItems", invalid)
    assert answer(post(client, eml(3))) == (
        503, {"Code": "StorageUnavailableError", "Message": "DynamoDB TransactWriteItems failed (ValidationException)"}
    )
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_a_commit_cancelled_by_a_conflict_on_a_mailbox_is_503_not_a_duplicate(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    def conflict(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                           "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
                          "TransactWriteItems")

    inject("dynamodb", "TransactWriteItems", conflict)
    status, body = answer(post(client, eml(4)))
    assert (status, body["Message"]) == (503, "DynamoDB TransactWriteItems failed (TransactionCanceledException)")
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_our_own_commit_whose_answer_was_lost_is_stored_once_and_not_a_duplicate(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    """botocore retries a commit whose answer never came: the retry finds the item, marked as this delivery's."""
    committed: list[str] = []
    other = boto3.client("dynamodb")

    def first_attempt_lands(params: dict[str, Any], **kwargs: Any) -> None:
        if not committed:
            other.transact_write_items(**params)  # what the first attempt did before its answer was lost
            committed.append("yes")

    inject("dynamodb", "TransactWriteItems", first_attempt_lands)
    status, body = answer(post(client, eml(5)))
    assert (status, body["duplicate"]) == (200, False)
    state = json.loads(client.http.get(f"/mails/{body['id']}", headers=read_headers()).body)["processing"]
    assert state == {"status": "pending", "attempts": 0, "error": None}
    assert sorted(i["sk"]["S"] for i in dynamodb.scan(TableName=TABLE)["Items"]) == [
        "mail", "mailbox", "to#box@example.com"]  # the mail, its mailbox entry, and the mailbox's register item
    assert queued() == [{"id": body["id"]}]  # and handed on: a pending mail no message names would wait forever


def queued() -> list[Any]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_a_duplicate_of_an_untracked_mail_is_a_duplicate(client: Client) -> None:
    """Without a handoff queue a mail has no status: its redelivery (other bytes) is still a plain duplicate."""
    mail, received = message.decode(eml(10), mode="raw"), datetime(2026, 11, 30, tzinfo=UTC)
    first = services.store().save(mail, b"first delivery", "message/rfc822", received, track=False)
    again = services.store().save(mail, b"second delivery", "message/rfc822", received, track=False)
    assert (first.duplicate, first.status) == (False, None)
    assert again == store_module.Saved(first.id, duplicate=True, status=None)


def test_every_object_goes_with_its_sha256_so_s3_refuses_bytes_changed_on_the_way(
    client: Client, inject: Callable[[str, str, Hook], None]
) -> None:
    sent: list[tuple[str, str, str]] = []

    def note(params: dict[str, Any], **kwargs: Any) -> None:
        body = params["Body"]
        sent.append((params["Key"].rsplit("/", 1)[1], params.get("ChecksumSHA256", ""),
                     base64.b64encode(hashlib.sha256(body).digest()).decode()))

    inject("s3", "PutObject", note)
    assert post(client, eml(11, attachment=b"\x00\x01\x02")).status_code == 200
    # Written at once, so in any order.
    assert sorted((name, given == computed) for name, given, computed in sent) == [("1", True), ("raw", True)]


def test_a_duplicate_whose_first_delivery_cannot_be_read_is_503(
    client: Client, inject: Callable[[str, str, Hook], None]
) -> None:
    assert post(client, eml(6)).status_code == 200
    inject("dynamodb", "GetItem", down)
    assert answer(post(client, eml(6))) == (
        503, {"Code": "StorageUnavailableError", "Message": "DynamoDB GetItem failed (EndpointConnectionError)"}
    )


def test_a_duplicate_under_other_bytes_leaves_only_the_first_deliverys_objects(client: Client, s3: Any) -> None:
    first = json.loads(post(client, eml(7, attachment=b"\x00\x01\x02")).body)
    again = json.loads(post(client, eml(7, attachment=b"\x00\x01\x02")).body)  # a new boundary: other bytes
    assert again == {"id": first["id"], "duplicate": True}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="mails/")["Contents"])
    assert len({key.rsplit("/", 2)[0] if "attachments" in key else key.rsplit("/", 1)[0] for key in keys}) == 1
    assert [key.rsplit("/", 1)[1] for key in keys] == ["1", "raw"]


def test_an_object_a_duplicate_could_not_remove_is_only_waste(
    client: Client, inject: Callable[[str, str, Hook], None], caplog: pytest.LogCaptureFixture
) -> None:
    first = json.loads(post(client, eml(8)).body)
    inject("s3", "DeleteObjects", down)
    assert json.loads(post(client, eml(8)).body) == {"id": first["id"], "duplicate": True}
    assert "could not remove a duplicate delivery's objects (EndpointConnectionError)" in caplog.text


def test_mailboxes_past_one_transaction_go_in_batches_dynamodb_accepts(
    client: Client, inject: Callable[[str, str, Hook], None], dynamodb: Any
) -> None:
    sizes: list[int] = []

    def count(params: dict[str, Any], **kwargs: Any) -> None:
        sizes.extend(len(requests) for requests in params["RequestItems"].values())

    inject("dynamodb", "BatchWriteItem", count)
    recipients = [f"r{n:03d}@example.com" for n in range(160)]
    body, content_type = build_body(eml(9), envelope_to=recipients)
    assert client.http.post(mail_path(), body=body, headers={"Content-Type": content_type}).status_code == 200
    # DynamoDB takes at most 25 writes a call; 99 went in the transaction. Then the 160 new register items.
    assert sizes == [25, 25, 11] + [25] * 6 + [10]
    entries = [i for i in dynamodb.scan(TableName=TABLE)["Items"] if i["sk"]["S"].startswith("to#")]
    assert len(entries) == 160


def test_mailbox_entries_dynamodb_leaves_unprocessed_are_written_again(client: Client, dynamodb: Any) -> None:
    """BatchWriteItem may write part of a batch (throttling) and name the rest: those are sent again."""
    sent: list[list[Any]] = []

    def note(params: dict[str, Any], **kwargs: Any) -> None:
        sent.append(params["RequestItems"][TABLE])

    def throttle_first(parsed: dict[str, Any], **kwargs: Any) -> None:
        if len(sent) == 1:
            parsed["UnprocessedItems"] = {TABLE: sent[0][-3:]}

    ddb = services.dynamodb()
    ddb.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", note)
    ddb.meta.events.register("after-call.dynamodb.BatchWriteItem", throttle_first)
    try:
        body, content_type = build_body(eml(12), envelope_to=[f"r{n:03d}@example.com" for n in range(105)])
        assert client.http.post(mail_path(), body=body, headers={"Content-Type": content_type}).status_code == 200
    finally:
        ddb.meta.events.unregister("before-parameter-build.dynamodb.BatchWriteItem", note)
        ddb.meta.events.unregister("after-call.dynamodb.BatchWriteItem", throttle_first)
    # 99 went in the transaction; 3 of the 6 sent again; then the 105 new register items.
    assert [len(batch) for batch in sent] == [6, 3, 25, 25, 25, 25, 5]
    assert sent[1] == sent[0][-3:]


def test_a_batch_of_mailbox_entries_storage_cannot_take_is_503_naming_the_call(
    client: Client, inject: Callable[[str, str, Hook], None]
) -> None:
    inject("dynamodb", "BatchWriteItem", down)
    body, content_type = build_body(eml(13), envelope_to=[f"r{n:03d}@example.com" for n in range(100)])
    assert answer(client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})) == (
        503, {"Code": "StorageUnavailableError", "Message": "DynamoDB BatchWriteItem failed (EndpointConnectionError)"}
    )
