"""The last line of defence for the store: no lone surrogate in any string of a mail.

Hostile bytes (UTF-7, CESU-8, surrogate escapes in JSON) can make one;
``json.dumps(...).encode("utf-8")`` would then raise, and the provider would
retry a mail no retry can store. Every ingress's ``commit()`` passes its mail
through ``scrubbed`` once.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chalicelib.mime.parts import media_type
from chalicelib.mime.text import no_surrogates
from chalicelib.model import Attachment, Envelope, InboundMail

__all__ = ["scrubbed"]


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return no_surrogates(value)
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub(item) for item in value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    return value


def _scrubbed_attachment(attachment: Attachment) -> Attachment:
    texts = (attachment.filename, attachment.content_type, attachment.content_id)
    if all(text is None or no_surrogates(text) == text for text in texts):
        return attachment
    return Attachment(
        index=attachment.index,
        filename=_scrub(attachment.filename),
        content_type=media_type(attachment.content_type),
        content_id=_scrub(attachment.content_id),
        disposition=attachment.disposition,
        data=attachment.data,
    )


# Built once (json.dumps builds an encoder per call for any non-default argument); a document has no cycles.
_JSON_PROBE = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _storable(mail: InboundMail) -> bool:
    """True when every string of the mail's document encodes as UTF-8, that is, holds no lone surrogate.

    The document is every string the store keeps, and nearly every mail
    passes: one C-level encoding of it costs far less than walking it string by
    string. The bodies, the largest strings, are checked alone, as the JSON
    encoder is slow on them: an ASCII one cannot hold a surrogate, and any other
    is encoded to UTF-16, which refuses a lone surrogate as UTF-8 does and is
    written several times faster from CPython's two-byte strings.
    """
    document = mail.to_dict()
    bodies = (document.pop("text"), document.pop("html"), document.pop("spam_report"))
    try:
        _JSON_PROBE.encode(document).encode("utf-8")
        for body in bodies:
            if body is not None and not body.isascii():
                body.encode("utf-16-le")
    except UnicodeEncodeError:
        return False
    return True


def scrubbed(mail: InboundMail) -> InboundMail:
    """Every string of the mail without lone surrogates, whichever path it came by."""
    if _storable(mail):
        return mail
    changes: dict[str, Any] = {
        item.name: _scrub(getattr(mail, item.name))
        for item in dataclasses.fields(mail)
        if item.name not in ("envelope", "attachments")
    }
    if mail.envelope is not None:
        changes["envelope"] = Envelope(_scrub(mail.envelope.sender), _scrub(mail.envelope.recipients))
    changes["attachments"] = [_scrubbed_attachment(a) for a in mail.attachments]
    return dataclasses.replace(mail, **changes)
