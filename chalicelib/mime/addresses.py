"""Address lists and Message-IDs from header values; total, as mail needs.

``parse_addresses`` is the one reader of address headers for every ingress
(raw messages, SendGrid's parsed fields, SES, and any later one): a
display name holding an ``@`` stays a name, group names and source routes are
dropped, and no address without a local part or a domain, or with a space in
it, is ever returned. What it drops stays in the mail's raw ``headers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from chalicelib.mime.text import clean, without_comments
from chalicelib.mime.words import decode_words

__all__ = ["Address", "first_address", "parse_addresses", "parse_message_id"]

Address = dict[str, str]

# ---------------------------------------------------------------------------------------------
# Tokens: RFC 5322's lexical pieces, read leniently (an unterminated quote or comment runs to
# the end) and in one linear pass.

_QUOTED, _COMMENT, _SPACE, _SPECIAL, _ATOM = "quoted", "comment", "space", "special", "atom"
_SPECIALS = "<>,:;@"
_ATOM_RUN = re.compile(r"[^\s\"()<>,:;@\[]+|\[[^\]]*\]?")
_WHITESPACE_RUN = re.compile(r"\s+")

Token = tuple[str, str]


def _delimited(value: str, start: int, close: str, nests: bool) -> tuple[str, int]:
    """The text inside a quoted string or comment opening at ``start``, backslash escapes resolved, and its end."""
    out: list[str] = []
    depth = 1
    position = start + 1
    while position < len(value):
        char = value[position]
        if char == "\\" and position + 1 < len(value):
            out.append(value[position + 1])
            position += 2
            continue
        if nests and char == "(":
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return "".join(out), position + 1
        out.append(char)
        position += 1
    return "".join(out), position


def _tokens(value: str) -> Iterator[Token]:
    position = 0
    while position < len(value):
        char = value[position]
        if char == '"':
            text, position = _delimited(value, position, '"', nests=False)
            yield _QUOTED, text
        elif char == "(":
            text, position = _delimited(value, position, ")", nests=True)
            yield _COMMENT, text
        elif char in _SPECIALS or char == ")":
            yield (_SPECIAL if char != ")" else _ATOM), char
            position += 1
        elif char.isspace():
            match = _WHITESPACE_RUN.match(value, position)
            assert match is not None
            yield _SPACE, " "
            position = match.end()
        else:
            match = _ATOM_RUN.match(value, position)
            if match is None or not match.group():  # an unmatched "[" with nothing after it
                yield _ATOM, char
                position += 1
            else:
                yield _ATOM, match.group()
                position = match.end()


# ---------------------------------------------------------------------------------------------
# Entries: the comma-separated mailboxes of the list, group names dropped


def _entries(tokens: Iterator[Token]) -> Iterator[list[Token]]:
    """Each mailbox's tokens. A group's name (``Team: a@x, b@x;``) is dropped, its members kept."""
    entry: list[Token] = []
    in_angle = False
    for token in tokens:
        kind, text = token
        if kind == _SPECIAL and not in_angle:
            if text in ",;":
                yield entry
                entry = []
                continue
            if text == ":":
                entry = []  # what came before was a group's name
                continue
            if text == "<":
                in_angle = True
        elif kind == _SPECIAL and text == ">":
            in_angle = False
        entry.append(token)
    yield entry


# ---------------------------------------------------------------------------------------------
# Addresses

_NEEDS_QUOTES = re.compile(r'[()<>@,:;\\"\[\]]')
# What a local part or a domain may hold unquoted: no whitespace, no control and no special.
_BARE = re.compile(r"[^\s\x00-\x1f\x7f\"(),:;<>@\[\\\]]+")
_DOMAIN_LITERAL = re.compile(r"\[[^\s\x00-\x1f\x7f\[\\\]]*\]")
_QUOTED_SAFE = re.compile(r"[^\s\x00-\x1f\x7f]*")
_AROUND_DOTS_AND_AT = re.compile(r"\s*([.@])\s*")


def _local_part(pieces: list[Token]) -> str | None:
    if any(kind == _QUOTED for kind, _ in pieces):
        text = "".join(text for _, text in pieces)
        if not text or not _QUOTED_SAFE.fullmatch(text):
            return None
        if not _NEEDS_QUOTES.search(text):
            return text  # quoted needlessly: the same mailbox as the bare form (the stdlib's rule too)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = "".join(text for _, text in pieces)
    return text if _BARE.fullmatch(text) else None


def _addr_spec(tokens: list[Token]) -> str | None:
    """``local@domain`` from an addr-spec's tokens, or None when it lacks either part or holds a space.

    Comments and the blanks around its dots and ``@`` are dropped (RFC 5322's
    obsolete syntax allows them); a source route before the last ``:`` too.
    """
    colons = [i for i, (kind, text) in enumerate(tokens) if kind == _SPECIAL and text == ":"]
    if colons:
        tokens = tokens[colons[-1] + 1 :]
    ats = [i for i, (kind, text) in enumerate(tokens) if kind == _SPECIAL and text == "@"]
    if not ats:
        return None
    # Blanks are allowed only next to a dot or the @ (obs-local-part, obs-domain); a quoted
    # string stands as one character here (_local_part judges what is inside it).
    shape = "".join(" " if kind in (_SPACE, _COMMENT) else ("q" if kind == _QUOTED else text) for kind, text in tokens)
    if " " in _AROUND_DOTS_AND_AT.sub(r"\1", shape).strip():
        return None
    split = ats[-1]
    local = _local_part([(k, t) for k, t in tokens[:split] if k not in (_SPACE, _COMMENT)])
    domain = "".join(t for k, t in tokens[split + 1 :] if k not in (_SPACE, _COMMENT))
    if local is None or not (_BARE.fullmatch(domain) or _DOMAIN_LITERAL.fullmatch(domain)):
        return None
    return f"{local}@{domain}"


def _phrase(tokens: list[Token]) -> str:
    """A display name: quoted strings unquoted, atoms and stray specials as written, comments dropped."""
    if not tokens:
        return ""
    words: list[str] = []
    for kind, text in tokens:
        if kind == _SPACE:
            words.append(" ")
        elif kind != _COMMENT:
            words.append(text)
    return decode_words("".join(words).strip())


def _comment_name(tokens: list[Token]) -> str:
    if all(kind != _COMMENT for kind, _ in tokens):
        return ""
    return decode_words(" ".join(text.strip() for kind, text in tokens if kind == _COMMENT and text.strip()))


def _words(tokens: list[Token]) -> list[list[Token]]:
    """The blank-separated words of an entry without angle brackets, rejoined around ``@`` and dots."""
    words: list[list[Token]] = [[]]
    for token in tokens:
        if token[0] in (_SPACE, _COMMENT):
            if words[-1]:
                words.append([])
        else:
            words[-1].append(token)
    words = [word for word in words if word]
    joined: list[list[Token]] = []
    for word in words:
        first_kind, first_text = word[0]
        if joined and (
            (first_kind == _SPECIAL and first_text == "@")
            or joined[-1][-1] == (_SPECIAL, "@")
            or (first_kind == _ATOM and first_text.startswith(".") and _has_at(joined[-1]))
            or (joined[-1][-1][0] == _ATOM and joined[-1][-1][1].endswith(".") and _has_at(joined[-1]))
        ):
            joined[-1] = joined[-1] + word
        else:
            joined.append(word)
    return joined


def _has_at(word: list[Token]) -> bool:
    return (_SPECIAL, "@") in word


def _mailboxes(entry: list[Token]) -> Iterator[Address]:
    angles = [i for i, token in enumerate(entry) if token == (_SPECIAL, "<")]
    if angles:
        name = _phrase(entry[: angles[0]])
        for number, start in enumerate(angles):
            end = next((i for i in range(start + 1, len(entry)) if entry[i] == (_SPECIAL, ">")), len(entry))
            address = _addr_spec(entry[start + 1 : end])
            if address is not None:
                yield {"name": name if number == 0 else "", "address": address}
        return
    addresses, rest = [], []
    for word in _words(entry):
        if _has_at(word):
            address = _addr_spec(word)
            if address is not None:
                addresses.append(address)
        else:
            rest.extend([*word, (_SPACE, " ")])
    if len(addresses) == 1:
        # `a@b (Alice)`: the comment stands in for the name; `Big Bug bb@bug.com`: the words are the name.
        name = _phrase(rest) or _comment_name(entry)
        yield {"name": name, "address": addresses[0]}
        return
    for address in addresses:  # `a@x b@x`: a list that lost its commas
        yield {"name": "", "address": address}


# The shape nearly every address list has: `Name <a@b>` or a bare `a@b`, comma
# separated, read with one regular expression; anything else goes through the
# tokenizer. A property test pins that both agree.
_NAME_ATOM = r"[A-Za-z0-9_'-]+"
_LOCAL = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS = re.compile(
    rf"\s*(?:({_NAME_ATOM}(?: {_NAME_ATOM})*) <({_LOCAL}@{_DOMAIN})>|<({_LOCAL}@{_DOMAIN})>|({_LOCAL}@{_DOMAIN}))\s*"
)


def _simple(value: str) -> list[Address] | None:
    found: list[Address] = []
    for part in value.split(","):
        if not part or part.isspace():
            continue  # an empty entry, which the tokenizer skips too
        match = _SIMPLE_ADDRESS.fullmatch(part)
        if match is None:
            return None
        found.append({"name": match[1] or "", "address": match[2] or match[3] or match[4]})
    return found


def parse_slowly(value: str) -> list[Address]:
    """What ``parse_addresses`` returns, always through the tokenizer (for the tests of its fast path)."""
    return [mailbox for entry in _entries(_tokens(clean(value))) for mailbox in _mailboxes(entry)]


def parse_addresses(value: str | None) -> list[Address]:
    """``[{"name": ..., "address": ...}]`` from an address-list header value (From, To, Cc, Reply-To …).

    The one address parser of every ingress. ``value`` is the header's value with
    its RFC 2047 words still encoded (a decoded name may hold a comma or an
    ``@``); raw 8-bit text is fine. Total: never raises, None or junk gives ``[]``.

    - Display names are RFC 2047-decoded, quotes removed; a name holding an ``@``
      (``Mikel@Lindsaar <r@x.com>``) stays a name. A comment stands in for a
      missing name (``a@b (Alice)``); words before a bare address are its name
      (``Big Bug bb@bug.com``); bare addresses that lost their commas
      (``tim@x.com c@x.com``) are each an address.
    - Groups are flattened to their members and their names dropped
      (``Undisclosed-Recipient:;`` yields nothing); source routes
      (``<@relay.example:mary@example.net>``) are dropped.
    - An entry is returned only with an address that has a local part and a
      domain and no whitespace (RFC 5322's obsolete blanks and comments around its
      dots and ``@`` are removed); a name alone is never an entry.
    """
    if not isinstance(value, str):
        return []
    try:
        return _simple(value) or parse_slowly(value)
    except Exception:  # total by contract (a RecursionError, a hostile string)
        return []


def first_address(value: str | None) -> Address | None:
    found = parse_addresses(value)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# Message-ID

_ANGLE_ID = re.compile(r"<([^<>]*)>")


def _parse_message_id(value: str) -> str | None:
    text = without_comments(clean(value))
    for match in _ANGLE_ID.finditer(text):
        # Broken mailers fold inside the brackets, and RFC 5322's obsolete syntax allows
        # blanks around the "@" and dots; an id never contains whitespace.
        inner = "".join(match.group(1).split())
        if inner:
            return f"<{inner}>"
    tokens = text.replace("<", " ").replace(">", " ").split()
    return f"<{tokens[0]}>" if tokens else None


def parse_message_id(value: str | None) -> str | None:
    """The first ``<id>`` of the value, comments and whitespace removed; a bare id gets its brackets; empty: None.

    ``<1234 @ local(blah) .machine.example>`` is ``<1234@local.machine.example>``.
    """
    if not isinstance(value, str):
        return None
    try:
        return _parse_message_id(value)
    except Exception:  # total by contract
        return None

