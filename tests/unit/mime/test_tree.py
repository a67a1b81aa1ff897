"""The fast MIME splitter builds the stdlib parser's tree, or leaves the message to it."""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.mime import headerblock, tree
from chalicelib.mime.stdlib import original, raw_payload
from tests.conftest import CORPUS, FIXTURES, ROOT
from tests.support.examples import examples

CORPUS_MAILS = sorted(CORPUS.glob("*.eml"))


def stdlib(source: bytes) -> Message:
    return BytesParser(policy=policy.compat32).parsebytes(source)


def assert_same_tree(fast: Message, slow: Message, path: str = "message") -> None:
    assert list(fast.raw_items()) == list(slow.raw_items()), path
    assert fast.get_content_type() == slow.get_content_type(), path
    assert fast.is_multipart() == slow.is_multipart(), path
    if fast.is_multipart():
        ours, theirs = fast.get_payload(), slow.get_payload()
        assert isinstance(ours, list) and isinstance(theirs, list)
        assert len(ours) == len(theirs), path
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert isinstance(a, Message) and isinstance(b, Message)
            assert_same_tree(a, b, f"{path}/{index}")
    else:
        assert raw_payload(fast) == raw_payload(slow), path


def fast_tree(source: bytes) -> Message | None:
    return tree._message(source, 0, len(source), 0)


@pytest.mark.parametrize("path", [*CORPUS_MAILS, ROOT / "scripts" / "sample.eml"], ids=lambda p: p.name)
def test_every_corpus_message_gets_the_stdlib_tree(path: Path) -> None:
    source = path.read_bytes()
    assert_same_tree(tree.parse(source), stdlib(source))


def test_the_sendgrid_samples_take_the_fast_path_and_agree() -> None:
    from chalicelib.ingress.form import parse as parse_form

    for name in ("raw_data.txt", "raw_data_with_attachments.txt"):
        form = parse_form((FIXTURES / name).read_bytes(), "multipart/form-data; boundary=xYzZY")
        source = form.fields["email"]
        fast = fast_tree(source)
        assert fast is not None, name
        assert_same_tree(fast, stdlib(source))


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n", "no close delimiter"),
        (b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", "no boundary"),
        (b"Content-Type: message/rfc822\r\n\r\nSubject inner\r\n\r\nbody", "a forwarded message read differently"),
        (b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nAction: failed\r\n",
         "a delivery status"),
        (b"Subject: a\rb\r\n\r\nbody", "a lone CR"),
        (b"Subject: a\r\nnot a header\r\n\r\nbody", "a line that is no header"),
        (b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", "a digest"),
    ],
)
def test_odd_messages_are_left_to_the_stdlib_parser(source: bytes, why: str) -> None:
    assert fast_tree(source) is None, why
    assert_same_tree(tree.parse(source), stdlib(source))


_eol = st.sampled_from([b"\r\n", b"\n"])
_text = st.lists(
    st.sampled_from([b"hello", b"--", b"--b0", b"--b0--", b"--b1 ", b"=?utf-8?q?x?=", b"\xe3\x81\x82", b"", b" x",
                     b"Subject: no", b"\t", b"x\ry", b"\r--b0", b"\r--b1--", b"--b0\r", b"\r"]),
    max_size=6,
)


@st.composite
def _mime(draw: st.DrawFn, depth: int = 0) -> bytes:
    eol = draw(_eol)
    headers = [b"X-Part: " + str(depth).encode()]
    if draw(st.booleans()):
        headers.append(b"Subject: folded" + eol + b"\tcontinued")
    if depth < 3 and draw(st.booleans()):
        boundary = b"b" + str(depth).encode() + draw(st.sampled_from([b"", b"x", b"'()+_,-./:=?"]))
        quoted = draw(st.booleans())
        headers.append(b"Content-Type: multipart/mixed; boundary=" + (b'"' + boundary + b'"' if quoted else boundary))
        children = draw(st.lists(_mime(depth + 1), min_size=1, max_size=3))
        preamble = eol.join(draw(_text))
        epilogue = eol.join(draw(_text))
        body = preamble + eol if preamble else b""
        for child in children:
            body += b"--" + boundary + draw(st.sampled_from([b"", b"  ", b"\t"])) + eol + child + eol
        body += b"--" + boundary + b"--" + eol + epilogue
    elif depth < 3 and draw(st.integers(0, 3)) == 0:
        # A forwarded message: the stdlib parses the rest of the part as a whole message.
        headers.append(b"Content-Type: " + draw(st.sampled_from([b"message/rfc822", b"message/global"])))
        if draw(st.booleans()):
            headers.append(b"Content-Transfer-Encoding: " + draw(st.sampled_from([b"7bit", b"quoted-printable"])))
        body = draw(_mime(depth + 1))
    else:
        headers.append(b"Content-Type: " + draw(st.sampled_from([b"text/plain", b"application/octet-stream"])))
        body = eol.join(draw(_text))
    return eol.join(headers) + eol + eol + body


@settings(max_examples=examples(500), deadline=None)
@given(_mime())
def test_generated_messages_get_the_stdlib_tree(source: bytes) -> None:
    assert_same_tree(tree.parse(source), stdlib(source))


def test_a_message_inside_a_larger_body_is_read_in_place() -> None:
    source = (ROOT / "scripts" / "sample.eml").read_bytes()
    body = b"--xYzZY\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n" + source + b"\r\n--xYzZY--\r\n"
    start = body.index(source)
    parsed = tree.parse(body, start, start + len(source))
    assert_same_tree(parsed, stdlib(source))
    leaves = [part for part in parsed.walk() if not part.is_multipart()]
    assert leaves
    for leaf in leaves:
        payload = raw_payload(leaf)
        assert isinstance(payload, memoryview) and payload.obj is body  # a view of the body, not a copy


def test_a_message_the_stdlib_reads_is_cut_from_a_larger_body() -> None:
    source = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody"
    body = b"before" + source + b"after"
    assert_same_tree(tree.parse(body, 6, 6 + len(source)), stdlib(source))


def test_a_forwarded_message_is_parsed_in_place_and_keeps_its_original_bytes() -> None:
    inner = b"From: a@example.com\r\nSubject: inner\r\n  folded\r\n\r\nthe forwarded body\r\n"
    source = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--b--\r\n"
    )
    fast = fast_tree(source)
    assert fast is not None
    assert_same_tree(fast, stdlib(source))
    part = fast.get_payload(1)
    assert isinstance(part, Message)
    kept = original(part)
    assert isinstance(kept, memoryview) and kept.obj is source
    assert bytes(kept) == inner


WILD_MAILS = sorted((CORPUS / "wild").rglob("*.eml"))


@pytest.mark.parametrize("path", WILD_MAILS, ids=lambda p: p.name)
def test_real_mail_gets_the_stdlib_tree_of_its_readable_header_block(path: Path) -> None:
    source = path.read_bytes()
    readable = headerblock.readable_headers(source, 0, len(source))
    assert_same_tree(tree.parse(source), stdlib(source if readable is None else readable))


def test_only_header_blocks_the_stdlib_would_cut_short_are_rewritten() -> None:
    rewritten = {
        path.name for path in WILD_MAILS if headerblock.readable_headers(path.read_bytes(), 0, path.stat().st_size)
    }
    assert rewritten == {"rfc2822__example13.eml", "plain_emails__raw_email_incorrect_header.eml"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (b"Subject     : Hi\r\nFrom  : a@b.c\r\n\r\nbody", b"Subject: Hi\r\nFrom: a@b.c\r\n\r\nbody"),
        (b"From  : a@b.c\nTo: x@y.z\n\nbody", b"From: a@b.c\nTo: x@y.z\n\nbody"),  # a header, not a unix-from
        (b"quite Delivered-To: x\nReceived: y\n z\nSubject: s\n\nbody\n", b"Received: y\n z\nSubject: s\n\nbody\n"),
        (b"To: m\n__\n   <m@x>\nSubject: s\n\nb", b"To: m\nSubject: s\n\nb"),  # the stray line's own continuation
        (b"From joe Fri Feb 19\nSubject : s\n\nb", b"From joe Fri Feb 19\nSubject: s\n\nb"),
    ],
)
def test_obsolete_names_are_mended_and_stray_lines_dropped(source: bytes, expected: bytes) -> None:
    assert headerblock.readable_headers(source, 0, len(source)) == expected


@pytest.mark.parametrize(
    "source",
    [
        b"Subject: x\r\nHello world\r\n\r\nbody",  # no header follows: the body starts there, no empty line
        b"Subject: x\r\n\r\nnot: a header but body\r\n",
        b"Hello, no headers at all\r\nand a second line\r\n",
        b"From joe Fri Feb 19\nSubject: s\n\nb",
    ],
)
def test_blocks_the_stdlib_reads_as_meant_are_left_alone(source: bytes) -> None:
    assert headerblock.readable_headers(source, 0, len(source)) is None
