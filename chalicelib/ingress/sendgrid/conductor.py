"""The console's compose form into the webhook: a message posted as SendGrid's raw mode posts it (Action Mailbox's
conductor).

The form's fields are the ones ``poster.py`` gives for raw mode; the post goes
through ``SendGridIngestor.conduct``, the webhook's own steps after
authentication, so a composed mail is decoded, stored and handed off as any
other. The caller is authenticated by the console's route (a read token, and
the stage's CONSOLE_COMPOSE), never by SendGrid's credentials, which the
console does not hold.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.ingress import Outcome
from chalicelib.ingress.sendgrid.poster import sendgrid_fields
from chalicelib.ingress.sendgrid.webhook import Delivery, SendGridIngestor


@dataclass(frozen=True)
class Conductor:
    ingestor: SendGridIngestor

    def post(self, message: bytes, envelope_to: Sequence[str]) -> Outcome:
        body, content_type = form_data(sendgrid_fields(message, raw=True, envelope_to=list(envelope_to)))
        return self.ingestor.conduct(Delivery(body, content_type, {}, {}))


def form_data(fields: list[tuple[str, Any]]) -> tuple[bytes, str]:
    """``multipart/form-data`` of named text fields (raw mode has no file parts), as a browser would send it.

    requests-toolbelt, which ``poster.build_body`` uses, is not deployed; raw
    mode's fields are plain values, which need no more than this.
    """
    values = [(name, value if isinstance(value, bytes) else str(value).encode("utf-8")) for name, value in fields]
    boundary = "----console" + secrets.token_hex(16)
    while any(boundary.encode() in value for _, value in values):  # a message cannot end the part early
        boundary = "----console" + secrets.token_hex(16)
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in values
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
