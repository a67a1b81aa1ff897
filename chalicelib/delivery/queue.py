"""The SQS queue a stored mail's id travels on to its handlers."""

from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib.errors import StorageUnavailableError
from chalicelib.storage.boto import AWS_ERRORS

log = logging.getLogger(__name__)


class Queue:
    """One queue by name; its URL is looked up once."""

    def __init__(self, sqs: Any, name: str) -> None:
        self._sqs = sqs
        self._name = name
        self._url: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def url(self) -> str:
        if self._url is None:
            try:
                self._url = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
            except AWS_ERRORS as exc:
                raise StorageUnavailableError(f"SQS queue {self._name} not reachable") from exc
        assert self._url is not None
        return self._url

    def send(self, mail_id: str, round_id: str | None = None) -> None:
        """The mail's id, and the round of attempts the message is for when it is not the first (a retry's)."""
        message = {"id": mail_id} if round_id is None else {"id": mail_id, "round": round_id}
        try:
            self._sqs.send_message(QueueUrl=self.url(), MessageBody=json.dumps(message))
        except AWS_ERRORS as exc:
            raise StorageUnavailableError("SQS SendMessage failed") from exc

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Show a failed message again only after this long (0: at once)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url(), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except AWS_ERRORS as exc:
            # The queue's own visibility timeout still brings the message back.
            log.warning("could not delay a failed message (%s)", type(exc).__name__)
