"""The benchmark's mails: generated, deterministic .eml messages and the SendGrid bodies built from them.

Generated rather than checked in, so that a 4 MB mail costs nothing in the
repository; seeded, so that every run measures the same bytes. The SendGrid
bodies are built with ``scripts/send_mail.py``'s ``build_body``, the same
code the tests and ``make dev`` post with.
"""

from __future__ import annotations

import base64
import random
import sys
from dataclasses import dataclass
from email.header import Header
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.send_mail import build_body  # noqa: E402

KB = 1024
MB = 1024 * KB

_WORDS = (
    "the", "mail", "service", "stores", "every", "message", "byte", "for", "byte", "and", "answers", "only",
    "after", "the", "commit", "support", "desk", "reply", "invoice", "order", "shipment", "account",
    "password", "meeting", "agenda", "quarterly", "report",
)

# Japanese text that ISO-2022-JP can encode (JIS X 0208 only: no half-width kana, no emoji).
_JAPANESE = (
    "お世話になっております。先日ご依頼いただいた件につきまして、下記のとおりご報告いたします。"
    "請求書を添付いたしましたので、ご確認のほどよろしくお願い申し上げます。"
    "なお、ご不明な点がございましたら、担当者までお気軽にお問い合わせください。"
)


@dataclass(frozen=True)
class BenchMail:
    name: str
    mode: str  # "parsed" or "raw", SendGrid's two modes
    eml: bytes
    body: bytes
    content_type: str


def _words(rng: random.Random, size: int, line: int = 72) -> str:
    """ASCII prose of about ``size`` bytes in lines of at most ``line`` characters."""
    lines: list[str] = []
    current: list[str] = []
    total = 0
    width = 0
    while total < size:
        word = rng.choice(_WORDS)
        if width + len(word) + 1 > line:
            lines.append(" ".join(current))
            total += width + 2
            current, width = [], 0
        current.append(word)
        width += len(word) + 1
    lines.append(" ".join(current))
    return "\r\n".join(lines) + "\r\n"


def _headers(message_id: str, subject: str, content_type: str, extra: str = "") -> str:
    return (
        "Received: from mx.example.net (mx.example.net [192.0.2.10]) by mx.sendgrid.net; "
        "Wed, 25 Sep 2013 18:16:53 +0900\r\n"
        "From: Sender Name <sender@example.com>\r\n"
        "To: Info <info@example.com>, support@example.com\r\n"
        "Cc: archive@example.com\r\n"
        f"Subject: {subject}\r\n"
        "Date: Wed, 25 Sep 2013 18:16:53 +0900\r\n"
        f"Message-ID: <{message_id}@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f"{extra}"
        f"Content-Type: {content_type}\r\n"
    )


def plain(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    head = _headers(f"plain.{size}", "Plain text mail", "text/plain; charset=us-ascii",
                    "Content-Transfer-Encoding: 7bit\r\n")
    return (head + "\r\n" + _words(rng, size - len(head) - 2)).encode("ascii")


def html(size: int, seed: int = 2) -> bytes:
    """multipart/alternative: a short text part and a quoted-printable UTF-8 HTML part of about ``size`` bytes."""
    rng = random.Random(seed)
    boundary = "alt-0123456789"
    head = _headers(f"html.{size}", "HTML newsletter", f'multipart/alternative; boundary="{boundary}"')
    parts = [head, "\r\n", f"--{boundary}\r\n",
             "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
             "This mail is best read as HTML.\r\n", f"--{boundary}\r\n",
             "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"]
    used = sum(len(p) for p in parts) + len(boundary) + 8
    rows: list[str] = []
    while used < size:
        # Real newsletters: table rows, inline styles, the odd non-ASCII character (=E2=80=94 in QP).
        row = (f'<tr><td style=3D"padding:8px;font-family:Arial">{_words(rng, 120, 200).strip()} =E2=80=94 '
               f'<a href=3D"https://example.com/{rng.randrange(10**6)}">more</a></td></tr>')
        # Quoted-printable lines stay under 76 characters with soft breaks.
        wrapped = "=\r\n".join(row[i : i + 72] for i in range(0, len(row), 72)) + "\r\n"
        rows.append(wrapped)
        used += len(wrapped)
    parts += ["<html><body><table>=\r\n", *rows, "</table></body></html>\r\n", f"--{boundary}--\r\n"]
    return "".join(parts).encode("ascii")


def with_attachments(size: int, count: int, seed: int = 3) -> bytes:
    """multipart/mixed: a text part and ``count`` base64 attachments, the whole .eml about ``size`` bytes."""
    rng = random.Random(seed)
    boundary = "mixed-9876543210"
    head = _headers(f"attach.{size}", "Documents attached", f'multipart/mixed; boundary="{boundary}"')
    text = _words(rng, 2 * KB)
    parts = [head, "\r\n", f"--{boundary}\r\n",
             "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", text]
    # base64 grows by 4/3 plus a CRLF per 76 characters.
    per_attachment = int((size - 4 * KB) / count * 3 / 4 * 76 / 78)
    kinds = [("application/pdf", "invoice-{}.pdf"), ("image/jpeg", "photo-{}.jpg")]
    for index in range(count):
        content_type, pattern = kinds[index % len(kinds)]
        data = rng.randbytes(per_attachment)
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n").decode("ascii")
        parts += [f"--{boundary}\r\n", f"Content-Type: {content_type}\r\n",
                  f'Content-Disposition: attachment; filename="{pattern.format(index + 1)}"\r\n',
                  "Content-Transfer-Encoding: base64\r\n\r\n", encoded]
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode("ascii")


def japanese(size: int, seed: int = 4) -> bytes:
    """A text/plain ISO-2022-JP mail, RFC 2047 subject and sender name, about ``size`` bytes."""
    rng = random.Random(seed)
    subject = Header("ご請求書送付のお知らせ", "iso-2022-jp").encode()
    sender = Header("大栗宗", "iso-2022-jp").encode()
    head = (
        "Received: from mx.example.jp (mx.example.jp [192.0.2.20]) by mx.sendgrid.net; "
        "Wed, 25 Sep 2013 18:16:53 +0900\r\n"
        f"From: {sender} <sender@example.jp>\r\n"
        "To: info@example.com\r\n"
        f"Subject: {subject}\r\n"
        "Date: Wed, 25 Sep 2013 18:16:53 +0900\r\n"
        f"Message-ID: <japanese.{size}@example.jp>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
    ).encode("ascii")
    lines: list[bytes] = []
    used = len(head)
    while used < size:
        start = rng.randrange(len(_JAPANESE) - 30)
        # Short lines: each one begins and ends in ASCII, as ISO-2022-JP requires.
        line = _JAPANESE[start : start + 30].encode("iso-2022-jp") + b"\r\n"
        lines.append(line)
        used += len(line)
    return head + b"".join(lines)


def corpus() -> list[BenchMail]:
    """Every mail in both SendGrid modes, smallest first."""
    messages = [
        ("plain-10k", plain(10 * KB)),
        ("iso2022jp-10k", japanese(10 * KB)),
        ("html-200k", html(200 * KB)),
        ("attach-1m", with_attachments(1 * MB, 1)),
        ("attach-4m", with_attachments(4 * MB, 2)),
    ]
    mails = []
    for name, eml in messages:
        for mode in ("parsed", "raw"):
            body, content_type = build_body(eml, raw=mode == "raw")
            mails.append(BenchMail(name, mode, eml, body, content_type))
    return mails
