"""A mail's HTML as plain lines, with what its quote containers hold marked as ``>`` lines.

The containers the common clients wrap an earlier message in:

- Gmail: ``<div class="gmail_quote">`` (its attribution inside, in ``gmail_attr``)
  and ``<blockquote class="gmail_quote">``;
- Apple Mail and Thunderbird: ``<blockquote type="cite">``, Thunderbird's
  attribution in ``<div class="moz-cite-prefix">``; Yahoo: ``yahoo_quoted``;
- Outlook: the quoted message is not wrapped, it follows a header block in
  ``<div id="divRplyFwdMsg">`` (Outlook on the web), after ``<hr id="stopSpelling">``
  (Hotmail), in ``<div class="OutlookMessageHeader">``, or in Outlook for
  Windows' bordered ``<div style="border:none;border-top:solid #E1E1E1 1.0pt…">``:
  everything from there on is quoted.

A ``<blockquote>`` of no client's kind quotes too, unless it is Gmail's indent
(``border:none``) or wraps all the mail's text.

The standard library's ``html.parser`` reads the markup: it accepts any input,
runs in linear time, and loads only when a mail has HTML to read.
"""

from __future__ import annotations

from html.parser import HTMLParser

from chalicelib.mailboxes.quoting import forward_marker

# Elements whose start and end break the line, as a browser lays them out.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})
_HIDDEN = frozenset({"head", "script", "style", "title", "template"})
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote"})
_REST_IDS = frozenset({"divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend", "stopspelling",
                       "mail-editor-reference-message-container"})
_REST_CLASSES = frozenset({"outlookmessageheader", "x_outlookmessageheader"})
# Outlook for Windows draws the quoted header block's top border in one of these colours.
_OUTLOOK_BORDERS = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")  # as compared, without spaces


def _starts_quote(tag: str, attributes: dict[str, str]) -> bool:
    classes = set(attributes.get("class", "").split())
    if classes & _QUOTE_CLASSES:
        return True
    return tag == "blockquote" and attributes.get("type", "").lower() == "cite"


def _plain_quote(tag: str, attributes: dict[str, str]) -> bool:
    """A ``<blockquote>`` of no client's kind: a quote, unless Gmail's indent (no border) or the whole mail."""
    style = attributes.get("style", "").lower().replace(" ", "")
    return tag == "blockquote" and "border:none" not in style


def _starts_rest(attributes: dict[str, str]) -> bool:
    """Does this element start Outlook's quoted part, which runs to the end of the mail?"""
    if attributes.get("id", "").lower() in _REST_IDS:
        return True
    if set(attributes.get("class", "").lower().split()) & _REST_CLASSES:
        return True
    style = attributes.get("style", "").lower().replace(" ", "").replace("\n", "")
    return any(border in style for border in _OUTLOOK_BORDERS)


class _Renderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[bool, str]] = []
        self.found_quote = False
        self.found_plain = False  # a <blockquote> of no client's kind
        self._line: list[str] = []
        self._open: list[tuple[str, bool, bool]] = []  # (tag, opened a quote, a paragraph with margins)
        self._open_count: dict[str, int] = {}  # how many of each tag are open: a stray end tag costs no scan
        self._quotes = 0
        self._hidden = 0
        self._pre = 0
        self._rest = False
        self._paragraph = False  # a paragraph ended: a blank line before whatever comes next

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in _BLOCKS:
            self._break(soft=True)
        if tag == "p" and "msonormal" not in attributes.get("class", "").lower():
            self._paragraph = True  # Outlook's MsoNormal paragraphs are lines, without margins
        if tag == "br":
            self._break(soft=False)
        if not self._rest and _starts_rest(attributes):
            self._break(soft=True)
            self._rest = self.found_quote = True
        if tag in _VOID:
            return
        quote = _starts_quote(tag, attributes)
        self.found_quote = self.found_quote or quote
        plain = not quote and _plain_quote(tag, attributes)
        self.found_plain = self.found_plain or plain
        quote = quote or plain
        self._quotes += quote
        self._hidden += tag in _HIDDEN
        self._pre += tag == "pre"
        self._open.append((tag, quote, tag == "p" and self._paragraph))
        self._open_count[tag] = self._open_count.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self._break(soft=True)
        if tag == "p" and self._open and self._open[-1][0] == "p" and self._open[-1][2]:
            self._paragraph = True
        if not self._open_count.get(tag):
            return  # a stray end tag closes nothing
        while self._open:
            name, quote, _ = self._open.pop()
            self._open_count[name] -= 1
            self._quotes -= quote
            self._hidden -= name in _HIDDEN
            self._pre -= name == "pre"
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            self._line.append(data)
            return
        first, *rest = data.split("\n")
        self._line.append(first)
        for piece in rest:  # in <pre>, a newline breaks the line
            self._break(soft=False)
            self._line.append(piece)

    def _break(self, *, soft: bool) -> None:
        raw = "".join(self._line)
        text = " ".join(raw.split())  # HTML's white space: any run is one space
        self._line = []
        if soft and not text and "\xa0" not in raw:
            return  # an empty block takes no line; one holding only &nbsp; is a blank line, as a browser shows it
        quoted = self._rest or self._quotes > 0
        if self._paragraph and text and self.lines and self.lines[-1][1]:
            self.lines.append((quoted, ""))
        self._paragraph = self._paragraph and not text
        self.lines.append((quoted, text))

    def close(self) -> None:
        super().close()
        self._break(soft=True)


def _unquote_forwards(lines: list[tuple[bool, str]]) -> None:
    """Gmail and Apple Mail wrap a forwarded message in the same containers as a quote: one that opens
    with "---------- Forwarded message ---------" or "Begin forwarded message:" is content, not a quote."""
    number = 0
    while number < len(lines):
        if not lines[number][0]:
            number += 1
            continue
        end = number
        while end < len(lines) and lines[end][0]:
            end += 1
        first = next((text for _, text in lines[number:end] if text), "")
        if forward_marker(first):
            lines[number:end] = [(False, text) for _, text in lines[number:end]]
        number = end


def render(html: str) -> tuple[str, bool]:
    """The HTML's text, quoted lines starting with ``>``; and whether it had a client's quote container."""
    renderer = _Renderer()
    renderer.feed(html)
    renderer.close()
    _unquote_forwards(renderer.lines)
    if renderer.found_plain and not any(text and not quoted for quoted, text in renderer.lines):
        # Plain blockquotes quote only beside text of the mail's own; around all of it, they indent.
        renderer.lines = [(False, text) for _, text in renderer.lines]
    lines = [(f"> {text}" if text else ">") if quoted else text for quoted, text in renderer.lines]
    # Only a client's container makes the HTML the better source than a text part; a plain blockquote does not.
    return "\n".join(lines), renderer.found_quote
