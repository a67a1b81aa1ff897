"""A whole message as an ingress received it → InboundMail, or a refusal that can be kept aside.

The relay, Mailgun's ``body-mime`` and Postmark's ``RawEmail`` all carry the
message itself; so does SES. Each adds what only it knows after this.
"""

from __future__ import annotations

from chalicelib.errors import MalformedMailError
from chalicelib.mime import message
from chalicelib.model import InboundMail


def decode(source: bytes, mode: str) -> InboundMail:
    """The mail; MalformedMailError for bytes that are no message (empty, or not one header)."""
    if not source.strip():
        raise MalformedMailError("the message is empty")
    mail = message.decode(source, mode=mode)
    if not mail.headers:
        raise MalformedMailError("the message has no headers")
    return mail
