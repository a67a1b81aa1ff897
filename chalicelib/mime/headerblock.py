"""One MIME entity's header block → the Message ``BytesHeaderParser(policy=compat32)`` would build, faster.

The stdlib reads every line through a generator-driven state machine; for a
block that is only headers, two regular expressions over the decoded text give
exactly its ``_headers``: the name up to the first colon, unmodified, and the
value as compat32's ``header_source_parse`` makes it (blanks after the colon
dropped, folded lines kept with their line ends, the last line end dropped).
That plain shape is an optional ``From `` line, then header lines as
``email.feedparser.headerRE`` reads them, each optionally folded onto lines
starting with a space or tab, then the empty line, all lines ending in CRLF or
LF. Anything else (a lone CR, a continuation line before the first header, a
line with no name or no colon, no empty line) is ``None``, and the caller asks
the stdlib, which records those as defects or payload. The tests pin the
agreement; docs/design/performance.md has the figures.
"""

from __future__ import annotations

import re
from email.message import Message

from chalicelib.mime.stdlib import headers_only

# A header field's name: headerRE's ``[\041-\071\073-\176]*:`` with at least
# one character (a line starting with a colon is an InvalidHeaderDefect).
_NAME = r"[\x21-\x39\x3b-\x7e]+"


def _compile(char: str, eol: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The whole block's shape, and one header (name, value) in it.

    ``char`` is any character of a line but its line end, ``eol`` a line end.
    Possessive quantifiers: a block has at most one parse, and a refused
    block is refused without backtracking.
    """
    folded = rf"{char}*+(?:{eol}[ \t]{char}*+)*+"  # the rest of a line, then its continuation lines
    block = re.compile(rf"(?:(From {char}*+){eol})?+((?:{_NAME}:{folded}{eol})*+){eol}")
    header = re.compile(rf"({_NAME}):[ \t]*+({folded}){eol}")
    return block, header


# The general form takes CRLF or LF line ends, and a lone CR — a line end to
# the stdlib — matches nothing. The other two are the same language for a
# block with only LF line ends, or with no lone LF (a lone CR still matches
# nothing in _CRLF, as a line's characters stop at any CR and a CR must start
# a CRLF), and faster: the regex engine scans for a single character much
# faster than for a set.
_ANY_EOL = _compile(r"[^\r\n]", r"\r?\n")
_LF = _compile(r"[^\n]", r"\n")
_CRLF = _compile(r"[^\r]", r"\r\n")
# An LF not after a CR; the engine finds the literal LF first, much faster
# than it would find ``(?<!\r)\n``.
_LONE_LF = re.compile(r"\n(?<!\r\n)")


def parse_block(block: bytes) -> Message | None:
    """The Message ``BytesHeaderParser(policy=compat32).parsebytes(block)`` returns, or None.

    ``block`` is a header block up to and including the empty line that ends
    it. None unless the block is the plain shape: then the stdlib's answer has
    no defects and an empty payload, and ours has the same headers and
    unix-from.
    """
    text = block.decode("ascii", "surrogateescape")
    if "\r" not in text:
        shape_re, header_re = _LF
    elif _LONE_LF.search(text) is None:
        shape_re, header_re = _CRLF
    else:
        shape_re, header_re = _ANY_EOL
    shape = shape_re.fullmatch(text)
    if shape is None:
        return None
    # Each match is (name, value): the blanks after the colon are outside the
    # value group and the last line end after it, as header_source_parse's
    # ``value.lstrip(' \t') ... .rstrip('\r\n')`` leaves them.
    return headers_only(header_re.findall(text, shape.start(2), shape.end(2)), shape[1])


# ---------------------------------------------------------------------------------------------
# A message's own header block, as RFC 5322 section 4.5 and real mail write it.
#
# The stdlib parser ends the header block at the first line that is not a
# ``name: value`` header. RFC 5322's obsolete syntax allows blanks before the
# colon (``Subject     : Hi``), and mailers write stray lines among the
# headers (``quite Delivered-To: …``); either would turn every header after it
# into body text. ``readable_headers`` rewrites such a block into the one the
# stdlib reads as the sender meant.

_LINE = re.compile(rb"[^\r\n]*+(?:\r\n|\r|\n)?+")
_OBSOLETE_HEADER = re.compile(rb"([\x21-\x39\x3b-\x7e]++)([ \t]*+):")


# A block every line of which is a header, a continuation line or the unix-from, ended by an
# empty line: the stdlib reads it whole, and one C-speed match says so.
_READABLE = re.compile(
    rb"(?:From (?![ \t]*+:)[^\r\n]*+\r?\n)?+(?:[\x21-\x39\x3b-\x7e]++:[^\r\n]*+\r?\n(?:[ \t][^\r\n]*+\r?\n)*+)*+\r?\n"
)


def _continued(source: bytes, position: int, end: int) -> int:
    """Past the continuation lines (starting with a blank) from ``position``."""
    while position < end and source[position] in (0x20, 0x09):
        line = _LINE.match(source, position, end)
        assert line is not None  # the pattern matches the empty string
        position = line.end()
    return position


def readable_headers(source: bytes, start: int, end: int) -> bytes | None:
    """The message at ``source[start:end]`` with its header block made readable, or None when it is already.

    - ``Name<blanks>:`` (obsolete syntax) becomes ``Name:``.
    - A line that is no header (and its continuation lines) is dropped when a
      header follows it; otherwise it is where the body starts, as for the stdlib.
    Only the message's own header block is read; the rest is kept byte for byte.
    """
    if _READABLE.match(source, start, end) is not None:
        return None
    kept: list[bytes] = []
    changed = False
    position = start
    if source.startswith(b"From ", start, end) and _OBSOLETE_HEADER.match(source, start, end) is None:
        # An mbox separator, the stdlib's unix-from; ``From  : a@b`` is a header.
        line = _LINE.match(source, position, end)
        assert line is not None
        kept.append(line.group())
        position = line.end()
    while position < end:
        line = _LINE.match(source, position, end)
        assert line is not None
        text = line.group()
        if not text.strip(b"\r\n") or text[0] in (0x20, 0x09):
            if not text.strip(b"\r\n"):
                break  # the empty line that ends the block
            kept.append(text)  # a continuation line
            position = line.end()
            continue
        header = _OBSOLETE_HEADER.match(text)
        if header is not None:
            if header.group(2):
                text = header.group(1) + text[header.end() - 1 :]
                changed = True
            kept.append(text)
            position = line.end()
            continue
        after = _continued(source, line.end(), end)
        if _OBSOLETE_HEADER.match(source, after, end) is None:
            break  # the body starts here, with no empty line before it
        changed = True  # a stray line among the headers
        position = after
    if not changed:
        return None
    return b"".join(kept) + source[position:end]
