"""Prototype for raw mode: what splitting a MIME message on its boundaries would save over ``email.parser``.

Raw mode ("Send Raw") hands the whole message over in one field, and
``chalicelib/sendgrid.py`` reads it with ``email.parser.BytesParser``, which
goes through it line by line in Python and copies it several times: on the
4 MB mail of ``bench/corpus.py`` that is most of the handler's time and memory.
This prototype finds each part with ``bytes.find`` (the delimiter search of
``chalicelib/multipart.py``), parses only each part's header block with the
email package, and decodes bodies with ``binascii`` from ``memoryview`` slices.
It checks that both give the same leaves with the same decoded bytes, then
times both. It is a measurement for the proposal in the README (What it survives, and what it costs),
not production code: a real version falls back to ``BytesParser`` for anything
it does not recognise (``message/rfc822``, a missing boundary, uuencode, ...).

Usage: ``python bench/raw_split.py``.
"""

from __future__ import annotations

import binascii
import statistics
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import KB, MB, html, plain, with_attachments  # noqa: E402
from chalicelib.multipart import _delimiter_at, _header_end, _line_end  # noqa: E402

Leaf = tuple[Message, bytes | memoryview]


def _split(source: bytes, view: memoryview, start: int, end: int, leaves: list[Leaf]) -> None:
    if source[start : start + 2] == b"\r\n":
        header_end, content = start, start + 2
    elif source[start : start + 1] == b"\n":
        header_end, content = start, start + 1
    else:
        header_end, content = _header_end(source, start, end)
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(source[start:header_end])
    boundary = headers.get_param("boundary")
    if headers.get_content_maintype() == "multipart" and isinstance(boundary, str):
        delimiter = b"--" + boundary.encode("ascii")
        index = _delimiter_at(source, delimiter, content)
        while 0 <= index < end:
            after = index + len(delimiter)
            if source[after : after + 2] == b"--":
                return
            part_start = _line_end(source, after)
            following = _delimiter_at(source, delimiter, part_start)
            part_end = following - 1
            if part_end > part_start and source[part_end - 1] == 0x0D:
                part_end -= 1
            _split(source, view, part_start, max(part_end, part_start), leaves)
            index = following
        return
    encoding = str(headers.get("Content-Transfer-Encoding") or "").strip().lower()
    body = view[content:end]
    if encoding == "base64":
        leaves.append((headers, binascii.a2b_base64(body)))
    elif encoding == "quoted-printable":
        leaves.append((headers, binascii.a2b_qp(body)))
    else:
        leaves.append((headers, body))


def boundary_split(source: bytes) -> list[Leaf]:
    leaves: list[Leaf] = []
    _split(source, memoryview(source), 0, len(source), leaves)
    return leaves


def email_parser(source: bytes) -> list[Leaf]:
    message = BytesParser(policy=policy.compat32).parsebytes(source)
    leaves: list[Leaf] = []
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            leaves.append((part, payload if isinstance(payload, bytes) else b""))
    return leaves


def _median_ms(function: Callable[[], object], runs: int = 9) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> int:
    messages = [
        ("plain-10k", plain(10 * KB)),
        ("html-200k", html(200 * KB)),
        ("attach-1m", with_attachments(1 * MB, 1)),
        ("attach-4m", with_attachments(4 * MB, 2)),
    ]
    for name, source in messages:
        fast, slow = boundary_split(source), email_parser(source)
        assert [bytes(data) for _, data in fast] == [data for _, data in slow], name
        assert [h.get_content_type() for h, _ in fast] == [m.get_content_type() for m, _ in slow], name
        before = _median_ms(partial(email_parser, source))
        after = _median_ms(partial(boundary_split, source))
        print(f"{name:10} email.parser + get_payload {before:8.2f} ms   boundary split + binascii {after:7.2f} ms"
              f"   {before / after:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
