"""A stored mail's bytes, read when a handler or the read API asks: its attachments, and its message in RFC 5322 form.

An original stored as ``message/rfc822`` (SES) is the message. Anything else
is a provider's request, and the ingress that took it knows the way back: its
``Rebuild``, found by the document's ``mode`` (the composition root hands them
in, so that storage knows no ingress).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.errors import NotFoundError
from chalicelib.storage.reads import MESSAGE_TYPE, MailReads

# (stored request, its media type, the stored document) -> the message, RFC 5322 bytes.
Rebuild = Callable[[bytes, str, dict[str, Any]], bytes]


class MailContent:
    def __init__(self, reads: MailReads, rebuilds: Mapping[str, Rebuild]) -> None:
        self._reads = reads
        self._rebuilds = rebuilds

    def attachment_bytes(self, mail_id: str, index: int) -> bytes:
        ref, _ = self._reads.attachment(mail_id, index)
        return self._reads.read(ref)

    def raw_message(self, document: dict[str, Any]) -> bytes:
        ref = self._reads.raw(document["id"])
        original = self._reads.read(ref)
        if ref.content_type.split(";", 1)[0].strip().lower() == MESSAGE_TYPE:
            return original
        rebuild = self._rebuilds.get(document["mode"])
        if rebuild is None:
            raise NotFoundError(f"no message can be made from a mail of mode {document['mode']!r}")
        return rebuild(original, ref.content_type, document)
