"""Which DynamoDB partitions a stored mail writes: the figures docs/design/scale.md takes its ceiling from.

Each delivery's transaction is recorded as the app sends it (botocore's own
event), and every write is counted under the partition key it lands on: the
table's ``pk``, and each index whose key the item carries (``by_box``'s
``box``, ``by_status``'s ``status_box``; both sparse).
"""

from __future__ import annotations

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


def test_every_mail_writes_the_all_partitions_and_its_mailboxes_once_each(client: Client) -> None:
    writes: dict[str, Counter[str]] = {"table": Counter(), schema.INDEX: Counter(), schema.STATUS_INDEX: Counter()}

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
            body, content_type = build_body(eml(number, MAILBOXES[number % 3]))
            assert client.http.post(mail_path(), body=body, headers={"Content-Type": content_type}).status_code == 200
    finally:
        dynamodb.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", record)

    # The table spreads: a mail's item and its entries share the mail's own key.
    assert set(writes["table"].values()) == {2} and len(writes["table"]) == 30
    # The indexes do not: one key takes a write from every mail, another from every mail to one mailbox.
    assert writes[schema.INDEX] == {"all": 30, **{f"to#{box}": 10 for box in MAILBOXES}}
    assert writes[schema.STATUS_INDEX] == {"pending#all": 30, **{f"pending#to#{box}": 10 for box in MAILBOXES}}
