"""What Lambda's SQS event source does, for `make dev` and the tests: receive, invoke, delete on success.

A message whose invocation raises is left alone, so SQS shows it again after
its visibility timeout (or the backoff the handler set) and, past the queue's
maxReceiveCount, moves it to the dead-letter queue — the same life a message
has when deployed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    function_name = "hand_off"
    memory_limit_in_mb = 512
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def event_for(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda event for one received message, as the SQS event source builds it."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        ]
    }


class Poller:
    def __init__(self, sqs: Any, queue_name: str, handler: Handler) -> None:
        self._sqs = sqs
        self._url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self._arn = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._handler = handler

    def poll(self, wait_seconds: int = 0, stop: threading.Event | None = None) -> tuple[int, int]:
        """One receive of up to ten messages, each invoked alone (batch size 1); returns (handled, failed).

        Once ``stop`` is set, the messages not yet begun are handed back to the queue at once.
        """
        messages = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
        ).get("Messages", [])
        handled = failed = 0
        for index, message in enumerate(messages):
            if stop is not None and stop.is_set():
                self._release(messages[index:])
                break
            try:
                self._handler(event_for(message, self._arn, self._sqs.meta.region_name), LambdaContext())
            except Exception as exc:
                failed += 1
                # Only for debugging: the handler logs its own failure, and make dev prints a line for people.
                log.debug("attempt failed (%s); SQS will show the message again", type(exc).__name__)
                continue
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
        return handled, failed

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
