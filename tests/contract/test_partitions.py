"""Which DynamoDB partitions stored mail writes, and that no key takes more than DynamoDB gives one.

Each delivery's transaction is recorded as the app sends it (botocore's own
event), and every write is counted under the partition key it lands on: the
table's ``pk``, and each index whose key the item carries (``by_box``'s
``box``, ``by_status``'s ``status_box``; both sparse). That pins the keys to
``schema``'s functions; the model below then counts them for a second of
10,000 mails, and of 3,000 mails to one mailbox (docs/design/scale.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from typing import Any

from chalice.test import Client

from chalicelib.storage import schema
from chalicelib.wiring import services
from scripts.send_mail import build_body
from tests.conftest import mail_path

MAILBOXES = ("a@example.com", "b@example.com", "c@example.com")


def eml(number: int, to: str) -> bytes:
    return (f"From: S <s{number}@example.org>\r\nTo: {to}\r\nSubject: partitions {number}\r\n"
            f"Message-ID: <partitions-{number}@example.org>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
            "Content-Type: text/plain\r\n\r\nHello\r\n").encode()


def test_each_mail_writes_its_own_shard_of_every_index_key(client: Client) -> None:
    writes: dict[str, Counter[str]] = {"table": Counter(), schema.INDEX: Counter(), schema.STATUS_INDEX: Counter()}
    expected: dict[str, Counter[str]] = {"table": Counter(), schema.INDEX: Counter(), schema.STATUS_INDEX: Counter()}

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        for action in params["TransactItems"]:
            item = action["Put"]["Item"]
            writes["table"][item[schema.PK]["S"]] += 1
            writes[schema.INDEX][item[schema.BOX]["S"]] += 1
            if schema.STATUS_BOX in item:
                writes[schema.STATUS_INDEX][item[schema.STATUS_BOX]["S"]] += 1

    dynamodb = services.dynamodb()
    dynamodb.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", record)
    try:
        for number in range(30):
            to = MAILBOXES[number % 3]
            body, content_type = build_body(eml(number, to))
            response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
            assert response.status_code == 200
            mail_id = json.loads(response.body)["id"]
            expected["table"][f"mail#{mail_id}"] += 2  # its item and its mailbox entry: the mail's own key
            for box in ("all", f"to#{to}"):
                expected[schema.INDEX][schema.box_key(box, mail_id)] += 1
                expected[schema.STATUS_INDEX][schema.status_box("pending", box, mail_id)] += 1
    finally:
        dynamodb.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", record)
    assert writes == expected
    assert len(writes[schema.INDEX]) > 4  # spread over shards, not one key per box


# DynamoDB's write throughput for one partition key, per second (1 KB writes; an index entry is under 1 KB).
PARTITION_WRITES = 1000


def mail_ids(count: int, seed: str) -> list[str]:
    """Ids as schema.mail_id makes them (base32 of a SHA-256), for ``count`` different mails."""
    return [base64.b32encode(hashlib.sha256(f"{seed}{n}".encode()).digest()[:20])[:26].decode().lower()
            for n in range(count)]


def busiest(mails: list[tuple[str, str]]) -> dict[str, int]:
    """The most writes any one key of the table and of each index takes for these (id, mailbox) mails.

    A mail's status key takes two writes (in when stored, out when the handoff
    claims it), its processing key two more; every other key one.
    """
    table: Counter[str] = Counter()
    boxes: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for mail_id, to in mails:
        table[mail_id] += 2
        for box in ("all", f"to#{to}"):
            boxes[schema.box_key(box, mail_id)] += 1
            for status in ("pending", "processing"):
                statuses[schema.status_box(status, box, mail_id)] += 2
    return {"table": max(table.values()), schema.INDEX: max(boxes.values()),
            schema.STATUS_INDEX: max(statuses.values())}


def test_a_second_of_10000_mails_over_many_mailboxes_fits_every_partition() -> None:
    mails = [(mail_id, f"box{n % 500}@example.com") for n, mail_id in enumerate(mail_ids(10_000, "many"))]
    worst = busiest(mails)
    assert all(writes <= PARTITION_WRITES for writes in worst.values()), worst


def test_a_second_of_3000_mails_to_one_mailbox_fits_every_partition() -> None:
    worst = busiest([(mail_id, "busy@example.com") for mail_id in mail_ids(3_000, "one")])
    assert all(writes <= PARTITION_WRITES for writes in worst.values()), worst


def test_past_about_15000_mails_a_second_the_busiest_shards_are_the_ceiling() -> None:
    """The model can fail: 16,000 mails a second overrun a shard of each index (docs/design/scale.md)."""
    worst = busiest([(mail_id, f"box{n % 500}@example.com") for n, mail_id in enumerate(mail_ids(16_000, "many"))])
    assert min(worst[schema.INDEX], worst[schema.STATUS_INDEX]) > PARTITION_WRITES
