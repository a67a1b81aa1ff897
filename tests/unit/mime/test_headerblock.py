"""parse_block gives the Message BytesHeaderParser(policy=compat32) gives, or None for a block of another shape."""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.mime.headerblock import parse_block
from tests.conftest import CORPUS, FIXTURES, ROOT
from tests.support.examples import examples

MAILS = [*sorted(CORPUS.glob("*.eml")), ROOT / "scripts" / "sample.eml"]
SENDGRID = FIXTURES
STDLIB = BytesHeaderParser(policy=policy.compat32)


def agrees(block: bytes) -> Message | None:
    """parse_block(block), after checking it is None or the stdlib's Message to the last attribute."""
    ours = parse_block(block)
    if ours is None:
        return None
    theirs = STDLIB.parsebytes(block)
    assert theirs.defects == [], block
    assert theirs.get_payload() == "", block
    assert list(ours.raw_items()) == list(theirs.raw_items()), block
    assert ours.get_unixfrom() == theirs.get_unixfrom(), block
    assert ours.defects == [] and ours.get_payload() == "", block
    assert type(ours) is type(theirs) and ours.policy is theirs.policy is policy.compat32
    assert vars(ours) == vars(theirs), block  # nothing else differs either
    return ours


def fast(block: bytes) -> Message:
    """The stdlib's Message, and parse_block really gives it (the fast path is taken)."""
    ours = agrees(block)
    assert ours is not None, block
    return ours


def has_lone_cr(block: bytes) -> bool:
    return block.count(b"\r") != block.count(b"\r\n")


def is_plain(block: bytes) -> bool:
    """The stdlib reads the whole block as headers: no defect, no line left over as payload."""
    message = STDLIB.parsebytes(block)
    return not message.defects and message.get_payload() == ""


# --- hand-written blocks -------------------------------------------------------------------------------------------

PLAIN = {
    "crlf": b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\n",
    "lf": b"From: a@example.com\nTo: b@example.com\nSubject: hello\n\n",
    "mixed line ends": b"From: a@example.com\r\nTo: b@example.com\nSubject: hello\r\n\n",
    "folded with a space": b"Subject: a long\r\n subject\r\nTo: x\r\n\r\n",
    "folded with a tab": b"Subject: a long\n\tsubject\nTo: x\n\n",
    "folded on many lines": (
        b"Received: from a (a [192.0.2.1])\r\n\tby b with ESMTPS id 123\r\n"
        b"        for <c@example.com>;\r\n \t Wed, 1 May 2024 10:00:00 +0000\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256;\r\n b=abc\r\n  def==\r\n\r\n"
    ),
    "folded last header": b"A: 1\r\nB: 2\r\n 3\r\n\r\n",
    "folded lf then crlf": b"Subject: a\n b\r\n\tc\n\r\n",
    "only blanks before a fold": b"Subject: \t \r\n\tvalue\r\n\r\n",
    "nothing before a fold": b"Subject:\r\n value\r\n\r\n",
    "a fold of blanks only": b"Subject: a\r\n \r\n\t\r\nTo: b\r\n\r\n",
    "utf-8 value": "Subject: こんにちは\r\nFrom: Zoë <z@example.com>\r\n\r\n".encode(),
    "latin-1 value": "Subject: café\r\nX-Name: Jürgen\n\n".encode("latin-1"),
    "8-bit folded": b"Subject: \xe3\x81\x82\r\n \xff\xfe\r\n\r\n",
    "empty value": b"X-Empty:\r\nTo: b\r\n\r\n",
    "blank value": b"X-Empty: \r\nX-Tabs:\t\t\r\n\r\n",
    "blanks inside and after a value": b"Subject:  a  b  \r\nX:\tc\t\n\n",
    "colons in the value": b"X-Time: 10:20:30\r\nX-Url: http://example.com:80/\r\n\r\n",
    "no blank after the colon": b"Subject:hello\r\n\r\n",
    "unix from": b"From sender@example.com Wed May  1 10:00:00 2024\r\nSubject: x\r\n\r\n",
    "unix from alone": b"From x\n\n",
    "unix from with a colon": b"From a: b\r\nTo: c\r\n\r\n",
    "empty block lf": b"\n",
    "empty block crlf": b"\r\n",
    "duplicate headers": b"Received: a\r\nReceived: b\r\nreceived: c\r\nRECEIVED: d\r\n\r\n",
    "odd name characters": b"X-!#$%&'*+-.^_`{|}~0123456789;<=>?@[]\\\"/(),: v\r\n\r\n",
    "one-character name": b"X: y\r\n\r\n",
    "control characters in a value": b"X: a\x00b\x0bc\x0cd\x1ce\x7f\r\n\r\n",
    "very long line": b"X-Long: " + b"a" * 100_000 + b"\r\nTo: b\r\n\r\n",
    "very long folded": b"X-Long: " + b"a b\r\n " * 5000 + b"end\r\n\r\n",
    "many headers": b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(2000)) + b"\r\n",
}


@pytest.mark.parametrize("block", PLAIN.values(), ids=PLAIN.keys())
def test_plain_blocks_take_the_fast_path_and_agree(block: bytes) -> None:
    fast(block)


def test_what_the_values_look_like() -> None:
    message = fast(
        b"Subject: \t caf\xe9\r\n  au lait \r\nX-Empty:\r\nX-Blank:  \r\nX-Fold:\r\n\tnext\r\nX-Utf8: \xc3\xa9\r\n\r\n"
    )
    assert list(message.raw_items()) == [
        ("Subject", "caf\udce9\r\n  au lait "),
        ("X-Empty", ""),
        ("X-Blank", ""),
        ("X-Fold", "\r\n\tnext"),
        ("X-Utf8", "\udcc3\udca9"),
    ]
    assert fast(b"From a@b  Wed\r\nX: y\r\n\r\n").get_unixfrom() == "From a@b  Wed"
    assert fast(b"X: y\r\n\r\n").get_unixfrom() is None


@pytest.mark.parametrize("offset", range(8180, 8200))
def test_line_ends_across_the_stdlibs_8192_character_reads(offset: int) -> None:
    # Parser.parse feeds the feedparser 8192 characters at a time; a CRLF cut
    # in two is still one line end to it.
    head = b"X-Pad: " + b"p" * (offset - len(b"X-Pad: ")) + b"\r\n"
    fast(head + b"X-Fold: a\r\n b\r\n\r\n")
    fast(head.replace(b"\r\n", b"\n") + b"X: a\n\tb\n\n")


NOT_PLAIN = {
    "a continuation first": b" Subject: x\r\nTo: y\r\n\r\n",
    "a tab continuation first": b"\tx\nTo: y\n\n",
    "a continuation after the unix from": b"From x\r\n y\r\nTo: z\r\n\r\n",
    "a line with no colon": b"Subject: x\r\nnot a header\r\n\r\n",
    "a name with no colon": b"Subject\r\n\r\n",
    "a line starting with a colon": b":x\r\nSubject: y\r\n\r\n",
    "a colon alone": b"Subject: y\r\n:\r\n\r\n",
    "a blank before the colon": b"X-Name : v\r\n\r\n",
    "a tab before the colon": b"Subject: s\nX-Name\t: v\n\n",
    "a blank in the name": b"X Name: v\r\n\r\n",
    "8-bit name": b"X-N\xe9: v\r\n\r\n",
    "a control character in the name": b"X-\x7fName: v\r\n\r\n",
    "a form feed starting a line": b"A: 1\r\n\x0cB: 2\r\n\r\n",
    "a unix from in the middle": b"A: 1\r\nFrom x\r\nB: 2\r\n\r\n",
    "a unix from last": b"A: 1\r\nFrom x\r\n\r\n",
    "junk": b"\x00\x01\x02\r\n\r\n",
    "body text": b"Hello,\r\n\r\nthis is no header.\r\n\r\n",
    "a lone CR in a value": b"Subject: a\rb\r\n\r\n",
    "a lone CR ending a line": b"Subject: a\rTo: b\r\n\r\n",
    "CR CR LF": b"Subject: a\r\r\n\r\n",
    "no empty line": b"Subject: a\r\n",
    "no line end": b"Subject: a",
    "nothing": b"",
    "text after the empty line": b"Subject: a\r\n\r\nbody\r\n",
    "two empty lines": b"Subject: a\n\n\n",
}


@pytest.mark.parametrize("block", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_other_shapes_are_left_to_the_stdlib(block: bytes) -> None:
    assert parse_block(block) is None


def test_the_not_plain_cases_are_not_plain_to_the_stdlib_either() -> None:
    # All but these, which the stdlib reads as headers without a defect, but
    # which we refuse: a lone CR is a line end to the stdlib and none to
    # mimetree, and a block mimetree cuts ends in an empty line.
    ours_only = {"a lone CR ending a line", "no empty line", "no line end", "nothing"}
    for name, block in NOT_PLAIN.items():
        assert is_plain(block) == (name in ours_only), name


# --- every header block of the real messages ----------------------------------------------------------------------

_BLANK_LINE = re.compile(rb"\n\r?\n")


def _header_block(source: bytes, start: int) -> bytes:
    """The entity's header block at ``start``, cut as mimetree cuts it: through the first empty line."""
    if source.startswith(b"\n", start):
        return source[start : start + 1]
    if source.startswith(b"\r\n", start):
        return source[start : start + 2]
    blank = _BLANK_LINE.search(source, start)
    assert blank is not None
    return source[start : blank.end()]


def header_blocks(source: bytes) -> list[bytes]:
    """The header block of every MIME entity in ``source``, cut where the stdlib starts reading each entity.

    The message's at 0, each part's after its delimiter line, and a forwarded
    message's (``message/*``) right after its part's header block.
    """
    tree = BytesParser(policy=policy.compat32).parsebytes(source)
    starts = [0]
    for boundary in {part.get_boundary() for part in tree.walk()} - {None}:
        assert boundary is not None
        delimiter = re.compile(rb"^--" + re.escape(boundary.encode()) + rb"[ \t]*\r?\n", re.MULTILINE)
        starts += [match.end() for match in delimiter.finditer(source)]
    blocks = []
    for start in starts:  # grows as forwarded messages are found
        block = _header_block(source, start)
        blocks.append(block)
        if STDLIB.parsebytes(block).get_content_maintype() == "message":
            starts.append(start + len(block))
    assert len(blocks) == len(list(tree.walk()))  # one block per entity, no more, no less
    return blocks


def _both_line_ends(block: bytes) -> list[bytes]:
    lf = block.replace(b"\r\n", b"\n")
    return [block, lf, lf.replace(b"\n", b"\r\n")]


def _sendgrid_field(body: bytes, name: str) -> bytes:
    head = b'Content-Disposition: form-data; name="' + name.encode() + b'"\n\n'
    start = body.index(head) + len(head)
    return body[start : body.index(b"\n--xYzZY", start)]


def _sendgrid_blocks(filename: str) -> list[bytes]:
    body = (SENDGRID / filename).read_bytes()
    # The form's own parts' header blocks, and the mail's in raw mode or the
    # mail's headers field in parsed (default) mode.
    blocks = header_blocks(b"Content-Type: multipart/form-data; boundary=xYzZY\n\n" + body)[1:]
    if filename == "default_data.txt":
        return [*blocks, _sendgrid_field(body, "headers").rstrip(b"\n") + b"\n\n"]
    return [*blocks, *header_blocks(_sendgrid_field(body, "email"))]


@pytest.mark.parametrize("path", MAILS, ids=lambda path: path.name)
def test_every_header_block_of_the_corpus_takes_the_fast_path(path: Path) -> None:
    blocks = header_blocks(path.read_bytes())
    assert blocks
    for block in blocks:
        for variant in _both_line_ends(block):
            fast(variant)


@pytest.mark.parametrize("filename", ["default_data.txt", "raw_data.txt", "raw_data_with_attachments.txt"])
def test_every_header_block_of_the_sendgrid_samples_takes_the_fast_path(filename: str) -> None:
    blocks = _sendgrid_blocks(filename)
    assert len(blocks) >= 10
    for block in blocks:
        for variant in _both_line_ends(block):
            fast(variant)


# --- generated blocks ----------------------------------------------------------------------------------------------

_NAME_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if c != ord(":"))
_names = st.text(_NAME_CHARS, min_size=1, max_size=12).map(str.encode)
_PIECES = b" |\t|:|: |From |a|Z|0|=?utf-8?b?w6k=?=|\x80|\xe9|\xff|\xc3\xa9|\xe3\x81\x82|\x00|\x0b|\x0c|\x1c|\x7f"
_value_pieces = st.one_of(
    st.sampled_from(_PIECES.split(b"|")),
    st.binary(max_size=6).map(lambda data: data.replace(b"\r", b"").replace(b"\n", b"")),
)
_values = st.lists(_value_pieces, max_size=8).map(b"".join)
_blanks = st.lists(st.sampled_from([b" ", b"\t"]), min_size=1, max_size=3).map(b"".join)
_line_ends = st.sampled_from([[b"\r\n"], [b"\n"], [b"\r\n", b"\n"]])


@st.composite
def plain_blocks(draw: st.DrawFn) -> bytes:
    """Blocks of the plain shape: an optional unix from, header lines, each with its folds, the empty line."""
    ends = draw(_line_ends)
    lines = []
    if draw(st.booleans()):
        lines.append(b"From " + draw(_values))
    for _ in range(draw(st.integers(0, 8))):
        lines.append(draw(_names) + b":" + draw(_values))
        lines += [draw(_blanks) + draw(_values) for _ in range(draw(st.integers(0, 3)))]
    return b"".join(line + draw(st.sampled_from(ends)) for line in [*lines, b""])


_any_line = st.one_of(
    st.builds(lambda name, value: name + b":" + value, _names, _values),  # a header
    st.builds(lambda blanks, value: blanks + value, _blanks, _values),  # a continuation
    st.builds(lambda value: b"From " + value, _values),  # a unix from
    st.builds(lambda name, blanks, value: name + blanks + b":" + value, _names, _blanks, _values),  # blank, colon
    st.builds(lambda value: b":" + value, _values),  # no name
    _values,  # anything
    st.builds(lambda a, b: a + b"\r" + b, _values, _values),  # a lone CR
)


@st.composite
def any_blocks(draw: st.DrawFn) -> bytes:
    ends = draw(_line_ends)
    lines = draw(st.lists(_any_line, max_size=8))
    return b"".join(line + draw(st.sampled_from(ends)) for line in [*lines, b""])


@settings(max_examples=examples(500), deadline=None)
@given(plain_blocks())
def test_generated_plain_blocks_take_the_fast_path_and_agree(block: bytes) -> None:
    fast(block)


@settings(max_examples=examples(1000), deadline=None)
@given(any_blocks())
def test_generated_blocks_agree_and_only_odd_ones_are_refused(block: bytes) -> None:
    ours = agrees(block)
    if has_lone_cr(block):
        assert ours is None
    else:
        # None exactly when the stdlib itself finds a defect or a line it leaves as payload.
        assert (ours is not None) == is_plain(block), block
