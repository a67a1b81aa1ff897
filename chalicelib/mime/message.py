"""A whole MIME message → InboundMail, knowing no provider.

Every ingress that has the message itself calls ``decode``: SendGrid's raw
mode, SES, and any later one. The fields only a provider knows (envelope,
SPF, DKIM, spam score, sender IP, verdicts) are None; the ingress adds them.

The tree is read with ``policy.compat32``, not ``policy.default``, on
purpose: compat32 keeps every header value raw (8-bit bytes as surrogate
escapes), so that ``headers`` decodes them with our charset table (WHATWG
labels, CP932 for Shift_JIS and ISO-2022-JP, a hint for unlabelled 8-bit
bytes). policy.default decodes headers with Python's strict codecs (① and ㈱
in an ISO-2022-JP subject are lost), turns 8-bit bytes into U+FFFD, and its
header parser has raised on malformed headers in several Python releases.
What it does better for bodies is done by ``transfer`` and ``charsets``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from chalicelib.errors import PayloadTooLargeError
from chalicelib.mime import addresses, charsets, dates, headers, params, parts, tree
from chalicelib.mime.forwarded import forwarded_bytes
from chalicelib.mime.parts import Path
from chalicelib.mime.text import joined
from chalicelib.mime.words import LINEAR_WHITESPACE, decode_words
from chalicelib.model import Attachment, InboundMail

__all__ = ["decode"]


@dataclass
class _Contents:
    """The bodies and attachments of a message's leaves, in order."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def decode(source: bytes, start: int = 0, end: int | None = None, *, mode: str) -> InboundMail:
    """The message at ``source[start:end]``, read in place (the source may be a whole request body).

    Raises PayloadTooLargeError for a hostile nesting, nothing else. Strings may
    still hold lone surrogates from hostile bytes: ``scrub.scrubbed`` takes them
    out before the store sees them.
    """
    end = len(source) if end is None else end
    message = _tree(source, start, end)
    leaves = parts.leaves(message)
    labels = _charset_labels(message, leaves)
    # Raw 8-bit header bytes are read in the charset the sender wrote the message in.
    hint = charsets.charset_hint(*labels.values())
    raw_pairs = [(name, headers.header_text(value, hint)) for name, value in message.raw_items()]
    contents = _contents(leaves, labels, hint, lambda: source[start:end])
    return _mail(mode, raw_pairs, contents)


def _tree(source: bytes, start: int, end: int) -> Message:
    try:
        return tree.parse(source, start, end)
    except RecursionError:
        # The stdlib parser recurses once per nesting level; about a thousand
        # levels exhaust the stack, and nothing legitimate nests so deep.
        raise PayloadTooLargeError("the message nests too deep") from None


def _charset_labels(message: Message, leaves: list[tuple[Message, Path, str]]) -> dict[int, str | None]:
    """The charset label of the message and of each text part, by ``id``, the message's first.

    Read once each: the email package parses the whole Content-Type for every
    get_content_charset().
    """
    labels: dict[int, str | None] = {id(message): parts.charset(message)}
    for part, _, content_type in leaves:
        if content_type.startswith("text/") and id(part) not in labels:  # a one-part message is its own text part
            labels[id(part)] = parts.charset(part)
    return labels


def _contents(
    leaves: list[tuple[Message, Path, str]], labels: dict[int, str | None], hint: str | None,
    whole: Callable[[], bytes],
) -> _Contents:
    """Inline text and HTML parts become the bodies; every other leaf an attachment."""
    found = _Contents()
    for part, path, content_type in leaves:
        disposition = parts.safe(part.get_content_disposition, None)
        filename = params.attachment_filename(
            parts.header(part, "Content-Disposition", hint), parts.header(part, "Content-Type", hint)
        )
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and filename is None:
            body = bytes(parts.payload(part))
            if content_type == "text/plain":
                found.texts.append(charsets.decode(body, labels[id(part)]))
            else:
                found.htmls.append(charsets.decode_html(body, labels[id(part)]))
            continue
        content_id = parts.content_id(parts.header(part, "Content-ID", hint))
        inline = disposition == "inline" or (disposition is None and content_id is not None)
        data = forwarded_bytes(part, path, whole) if content_type.startswith("message/") else parts.payload(part)
        found.attachments.append(
            Attachment(
                index=len(found.attachments) + 1,
                filename=filename,
                content_type=parts.media_type(content_type),
                content_id=content_id,
                disposition="inline" if inline else "attachment",
                data=data,
            )
        )
    return found


def _mail(mode: str, raw_pairs: list[tuple[str, str]], contents: _Contents) -> InboundMail:
    """The mail from its headers and contents.

    Addresses are parsed from the raw values, before their words are decoded:
    a decoded display name may hold a comma, a quote or an "@".
    """
    pairs = [(name, decode_words(value).strip(LINEAR_WHITESPACE)) for name, value in raw_pairs]
    # Each name lower-cased once: a mail has dozens of headers (Received, DKIM, ARC …).
    where: dict[str, list[int]] = {}
    for position, (name, _) in enumerate(raw_pairs):
        where.setdefault(name.lower(), []).append(position)

    def first(found: list[tuple[str, str]], name: str) -> str | None:
        positions = where.get(name)
        return found[positions[0]][1] if positions else None

    def every(name: str) -> list[dict[str, str]]:  # two To: lines are one list of recipients
        value = ", ".join(raw_pairs[i][1] for i in where.get(name, ()))
        return addresses.parse_addresses(value) if value else []

    reply_to = first(raw_pairs, "reply-to")
    return InboundMail(
        mode=mode,
        message_id=addresses.parse_message_id(first(pairs, "message-id")),
        date=dates.parse_date(first(pairs, "date")),
        subject=first(pairs, "subject"),
        sender=addresses.first_address(first(raw_pairs, "from")),
        to=every("to"),
        cc=every("cc"),
        reply_to=addresses.parse_addresses(reply_to) if reply_to else [],
        text=joined(contents.texts),
        html=joined(contents.htmls),
        headers=pairs,
        attachments=contents.attachments,
        envelope=None, spf=None, dkim=None, spam_score=None, spam_report=None, sender_ip=None,
    )
