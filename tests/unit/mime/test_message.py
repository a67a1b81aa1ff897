"""A whole MIME message → InboundMail: transfer encodings, charsets, attachments, forwarded messages, headers.

The decoder knows no provider: SendGrid's raw mode and SES both hand it the
message's bytes. Its totality is a property: no bytes make it raise, and
nothing it gives keeps a lone surrogate once scrubbed for the store.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import PayloadTooLargeError
from chalicelib.mime import addresses, charsets, dates, headers, params, transfer, words
from chalicelib.mime.message import decode as decode_message
from chalicelib.mime.scrub import scrubbed
from chalicelib.model import InboundMail
from tests.corpus.make_corpus import b_word, cp50220
from tests.support.examples import examples
from tests.support.headers import parse_header_block

CRLF = b"\r\n"


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


def raw(message: bytes) -> InboundMail:
    return decode_message(message, mode="raw")


def stored_json(mail: InboundMail) -> bytes:
    """What the store writes after commit() scrubs the mail: the document as UTF-8 JSON (raises on a surrogate)."""
    return json.dumps(scrubbed(mail).to_dict(), ensure_ascii=False).encode("utf-8")


def message(*header_lines: bytes, body: bytes = b"") -> bytes:
    return CRLF.join(header_lines) + CRLF + CRLF + body


def mixed(*parts: bytes, boundary: bytes = b"B") -> bytes:
    inner = b"".join(b"--" + boundary + CRLF + p + CRLF for p in parts) + b"--" + boundary + b"--" + CRLF
    return message(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"', body=inner)


def attachment(cte: bytes, body: bytes) -> bytes:
    return (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f.bin\r\n"
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body)


DATA = bytes(range(256))


@pytest.mark.parametrize(
    ("cte", "body", "expected"),
    [
        (b"base64", base64.encodebytes(DATA).replace(b"\n", CRLF), DATA),
        (b"BASE64  ", base64.encodebytes(DATA), DATA),
        (b"base64 (by Some Mailer 1.0)", base64.b64encode(DATA), DATA),
        (b'"base64"', base64.b64encode(DATA), DATA),
        (b"base64", base64.b64encode(b"abcd").rstrip(b"="), b"abcd"),  # padding lost
        (b"base64", base64.b64encode(b"abcd") + b"Q", b"abcd"),  # a dangling character
        (b"base64", base64.b64encode(b"ab") + base64.b64encode(b"cd"), b"abcd"),  # chunks padded one by one
        (b"base64", base64.encodebytes(b"payload") + b"\r\n-- \r\nlist footer: https://x.example/\r\n", b"payload"),
        (b"base64", b"this is not base64 at all!", b"this is not base64 at all!"),
        (b"Quoted-Printable", b"caf=E9 =\r\nsoft break=3D", b"caf\xe9 soft break="),
        (b"x-uuencode", b"begin 644 f\r\n" + binascii.b2a_uu(b"uu data") + b"`\r\nend\r\n", b"uu data"),
        (b"8bit", b"\xe9\x00\xff raw", b"\xe9\x00\xff raw"),
        (b"binary", b"\x00\x01\xfe\xff", b"\x00\x01\xfe\xff"),
        (b"x-unknown", b"as sent", b"as sent"),
    ],
)
def test_transfer_encodings_as_they_occur_in_the_wild(cte: bytes, body: bytes, expected: bytes) -> None:
    [found] = raw(mixed(b"Content-Type: text/plain\r\n\r\nbody", attachment(cte, body))).attachments
    assert bytes(found.data) == expected


@pytest.mark.parametrize("width", [76, 64, 72, 1000])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 48_000, 200_001])
def test_well_formed_base64_is_decoded_in_place_a_step_at_a_time(width: int, eol: bytes, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    encoded = base64.b64encode(data)
    text = eol.join(encoded[i : i + width] for i in range(0, len(encoded), width)) + eol
    decoded = transfer._base64_in_place(memoryview(text))
    assert isinstance(decoded, bytearray)
    assert decoded == data
    assert transfer._base64_careful(text) == data


_base64_text = st.builds(
    lambda data, width, eol, tail: eol.join(
        base64.b64encode(data)[i : i + width] for i in range(0, max(len(base64.b64encode(data)), 1), width)
    ) + tail,
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=80),
    st.sampled_from([b"\r\n", b"\n", b" ", b"\t\r\n"]),
    st.sampled_from([b"", b"\r\n", b"=", b"==", b"Q", b"QQ", b"QQ=", b"\r\n-- \r\nfooter\r\n", b"QUJD", b"\x00",
                     b"QQ==QUJD", b"\r\n\r\n  "]),
)


@settings(max_examples=examples(1500), deadline=None)
@given(st.one_of(_base64_text, st.binary(max_size=200)), st.integers(min_value=1, max_value=9))
def test_the_in_place_base64_path_decodes_exactly_what_the_careful_one_does(text: bytes, step: int) -> None:
    # Any step size: the carry between steps is what this pins.
    original = transfer._BASE64_STEP
    transfer._BASE64_STEP = step
    try:
        fast = transfer._base64_in_place(text)
    finally:
        transfer._BASE64_STEP = original
    careful = transfer._base64_careful(text)
    if fast is not None:
        assert bytes(fast) == careful
    assert bytes(transfer._base64(text)) == careful


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (b"text/plain", "utf-8 ✓".encode(), "utf-8 ✓"),
        (b"text/plain", "café".encode("cp1252"), "café"),
        (b"text/plain; charset=us-ascii", "naïve".encode(), "naïve"),
        (b"text/plain", cp50220("日本語①"), "日本語①"),
        (b'text/plain; charset="Shift_JIS"', "①㈱～髙".encode("cp932"), "①㈱～髙"),
        (b"text/plain; charset*=utf-8''koi8-r", "Привет".encode("koi8-r"), "Привет"),
        (b"text/plain; charset=x-bogus", "café".encode("cp1252"), "café"),
        (b"text/plain; charset=utf-8", b"bad \xff utf-8", "bad \ufffd utf-8"),
    ],
)
def test_a_text_part_is_decoded_in_its_own_charset(content_type: bytes, body: bytes, expected: str) -> None:
    assert raw(message(b"Content-Type: " + content_type, body=body)).text == expected


def test_several_text_and_html_parts_are_joined_in_order() -> None:
    mail = raw(mixed(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "first ✓".encode(),
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<p>caf\xe9</p>",
        b"Content-Type: image/png\r\nContent-ID: <i@x>\r\n\r\npng",
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n" + "второй\r\n".encode("koi8-r"),
        b"Content-Type: text/plain\r\n\r\nthird",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" + "<p>✓</p>".encode(),
    ))
    assert mail.text == "first ✓\nвторой\r\nthird"
    assert mail.html == "<p>café</p>\n<p>✓</p>"


@pytest.mark.parametrize(
    ("part_headers", "expected"),
    [
        (b"Content-Type: text/plain\r\nContent-Disposition: attachment", ("attachment", None, "text/plain")),
        (b"Content-Type: text/plain; name=notes.txt", ("attachment", "notes.txt", "text/plain")),
        (b"Content-Type: image/png\r\nContent-ID: <a@b>", ("inline", None, "image/png")),
        (b"Content-Type: image/png\r\nContent-Disposition: inline; filename=a.png\r\nContent-ID: <a@b>",
         ("inline", "a.png", "image/png")),
        (b"Content-Type: image/png\r\nContent-Disposition: attachment\r\nContent-ID: <a@b>",
         ("attachment", None, "image/png")),
        (b"Content-Type: image/gif\r\nContent-Disposition: inline", ("inline", None, "image/gif")),
        (b"Content-Type: image/gif\r\nContent-Disposition: bogus", ("attachment", None, "image/gif")),
        (b"Content-Type: text/calendar; method=REQUEST", ("attachment", None, "text/calendar")),
        (b"Content-Type: application/ms-tnef; name=winmail.dat", ("attachment", "winmail.dat", "application/ms-tnef")),
        (b"Content-Type: \xe9/\xe9", ("attachment", None, "application/octet-stream")),
    ],
)
def test_what_is_an_attachment_and_whether_it_is_inline(part_headers: bytes, expected: tuple[Any, ...]) -> None:
    mail = raw(mixed(b"Content-Type: text/plain\r\n\r\nbody", part_headers + b"\r\n\r\ndata"))
    assert mail.text == "body"
    [found] = mail.attachments
    assert (found.disposition, found.filename, found.content_type) == expected


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (b"attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf", "請求書.pdf"),
        (b"attachment; filename*0*=UTF-8''%E8%AB%8B; filename*1*=%E6%B1%82%E6%9B%B8.pdf", "請求書.pdf"),
        (b'attachment; filename="=?ISO-2022-JP?B?' + base64.b64encode(cp50220("見積①")) + b'?=.pdf"', "見積①.pdf"),
        (b'attachment; filename="' + "ソフト表.xls".encode("cp932") + b'"', "ソフト表.xls"),
        (b'attachment; filename="\\\\share\\mail\\x.msg"', "\\share\\mail\\x.msg"),
        (b'attachment; filename=".."', ".."),
        (b'attachment; filename=""', None),
    ],
)
def test_attachment_file_names(disposition: bytes, expected: str | None) -> None:
    body = mixed(
        b"Content-Type: text/plain; charset=shift_jis\r\n\r\n" + "本文".encode("cp932"),
        b"Content-Type: application/octet-stream\r\nContent-Disposition: " + disposition + b"\r\n\r\nx",
    )
    [found] = raw(body).attachments
    assert found.filename == expected


def test_raw_8bit_file_names_without_a_charset_hint_are_utf8_or_windows_1252() -> None:
    for name, expected in ((b"r\xe9sum\xe9.pdf", "résumé.pdf"), ("résumé ✓.pdf".encode(), "résumé ✓.pdf")):
        body = mixed(b"Content-Type: text/plain\r\n\r\nx",
                     b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="' + name
                     + b'"\r\n\r\nx')
        assert [a.filename for a in raw(body).attachments] == [expected]


FORWARDED = (
    b"From: a@example.org\r\nSubject: a subject long enough that compat32 folds it when it writes the message again\r\n"
    b"X-Folded: one\r\n\ttwo\r\n\r\nForwarded \xe2\x9c\x93 body\r\n\r\n"
)


@pytest.mark.parametrize("linesep", [b"\r\n", b"\n"])
def test_a_forwarded_message_is_one_attachment_holding_its_original_bytes(linesep: bytes) -> None:
    forwarded = FORWARDED.replace(b"\r\n", linesep)
    body = mixed(b"Content-Type: text/plain\r\n\r\nsee below",
                 b'Content-Type: message/rfc822; name="fwd.eml"\r\n\r\n' + forwarded).replace(b"\r\n", linesep)
    [found] = raw(body).attachments
    assert (found.content_type, found.filename) == ("message/rfc822", "fwd.eml")
    assert bytes(found.data) == forwarded
    # What it guards against: compat32 writes the parsed message back in another shape.
    parsed_again = BytesParser(policy=policy.compat32).parsebytes(body)
    inner = next(p for p in parsed_again.walk() if p.get_content_type() == "message/rfc822").get_payload(0)
    assert inner.as_bytes() != forwarded


def test_forwarded_messages_nested_deep_base64_encoded_or_global() -> None:
    inner = mixed(
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(FORWARDED),
        b"Content-Type: message/global\r\n\r\nFrom: b@example.org\r\nSubject: =?utf-8?q?\xe2\x9c\x93?=\r\n\r\nbody",
        boundary=b"inner",
    )
    body = mixed(b"Content-Type: text/plain\r\n\r\nouter", inner.replace(b"\r\n\r\n", b"\r\n\r\n", 1))
    mail = raw(body)
    assert [(a.content_type, bytes(a.data)) for a in mail.attachments] == [
        ("message/rfc822", FORWARDED),
        ("message/global", b"From: b@example.org\r\nSubject: =?utf-8?q?\xe2\x9c\x93?=\r\n\r\nbody"),
    ]


def test_a_delivery_status_report_keeps_its_bytes() -> None:
    status = b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\n"
    body = mixed(b"Content-Type: text/plain\r\n\r\nbounce", b"Content-Type: message/delivery-status\r\n\r\n" + status)
    [found] = raw(body).attachments
    assert bytes(found.data) == status


def test_raw_headers_8bit_latin1_utf8_and_the_messages_own_charset() -> None:
    # The colleague's note: _raw_header_text read surrogate-escaped Latin-1 as UTF-8, i.e. U+FFFD.
    assert raw(message(b"Subject: caf\xe9", body=b"x")).subject == "café"
    assert raw(message("Subject: 件名 ✓".encode(), body=b"x")).subject == "件名 ✓"  # RFC 6532
    sjis = message(b"Subject: " + "件名①".encode("cp932"), b"From: " + "大栗".encode("cp932") + b" <a@example.jp>",
                   b"Content-Type: text/plain; charset=shift_jis", body="本文".encode("cp932"))
    mail = raw(sjis)
    assert (mail.subject, mail.sender, mail.text) == ("件名①", {"name": "大栗", "address": "a@example.jp"}, "本文")
    assert raw(message(b"Subject: " + cp50220("件名①"), body=b"x")).subject == "件名①"


def test_raw_addresses_are_split_before_their_names_are_decoded() -> None:
    mail = raw(message(
        b"From: =?utf-8?q?M=C3=BCller=2C_Hans?= <hans@example.de>",
        b"To: a@example.com,",
        b" =?utf-8?b?" + base64.b64encode("山田, 太郎".encode()) + b"?= <yamada@example.jp>",
        b"To: second-to-line@example.com",
        b"Cc: team: x@example.com, y@example.com;",
        b"Reply-To: =?utf-8?q?Support_=40_Example?= <r@example.com>",
        b"Date: Tue, 3 Feb 2026 09:15:00 JST",
        b"Message-ID: <\r\n id@example.com >",
        body=b"x",
    ))
    assert mail.sender == {"name": "Müller, Hans", "address": "hans@example.de"}
    assert mail.to == [{"name": "", "address": "a@example.com"}, {"name": "山田, 太郎", "address": "yamada@example.jp"},
                       {"name": "", "address": "second-to-line@example.com"}]
    assert mail.cc == [{"name": "", "address": "x@example.com"}, {"name": "", "address": "y@example.com"}]
    assert mail.reply_to == [{"name": "Support @ Example", "address": "r@example.com"}]
    assert (mail.date, mail.message_id) == ("2026-02-03T09:15:00+09:00", "<id@example.com>")


def test_policy_default_would_lose_what_compat32_and_our_tables_keep() -> None:
    # Why raw mode parses with compat32 (see mime/message.py).
    source = message(b"Subject: " + b_word(cp50220("①㈱～"), "ISO-2022-JP"), b"From: caf\xe9 <a@b.example>", body=b"x")
    strict = BytesParser(policy=policy.default).parsebytes(source)
    assert "①" not in str(strict["subject"]) and "\ufffd" in str(strict["from"])
    mail = raw(source)
    assert (mail.subject, mail.sender) == ("①㈱～", {"name": "café", "address": "a@b.example"})


def test_raw_mail_decodes_a_message_without_sendgrids_fields() -> None:
    mail = decode_message(message(b"Subject: caf\xe9", body=b"body"), mode="ses")
    assert (mail.mode, mail.subject, mail.text) == ("ses", "café", "body")
    assert (mail.envelope, mail.spf, mail.dkim, mail.spam_score, mail.sender_ip) == (None,) * 5


# ---------------------------------------------------------------------------------------------
# Properties: no bytes anywhere make the decoder raise or emit a lone surrogate

LABELS = st.sampled_from([
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "shift_jis", "iso-2022-jp", "euc-jp", "euc-kr",
    "ks_c_5601-1987", "gb2312", "gbk", "big5", "koi8-r", "windows-1251", "cp850", "utf-7", "utf-16", "utf-32",
    "unknown-8bit", "x-user-defined", "replacement", "idna", "rot13", "bogus", "",
])
CTES = st.sampled_from(
    [b"base64", b"quoted-printable", b"8bit", b"7bit", b"binary", b"x-uuencode", b"bogus", b"BASE64 "]
)
SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_storable(mail: InboundMail) -> None:
    stored_json(mail)


@SETTINGS
@given(st.binary(max_size=300), LABELS | st.text(max_size=20))
def test_charsets_decode_is_total_and_surrogate_free(data: bytes, label: str) -> None:
    text = charsets.decode(data, label)
    text.encode("utf-8")
    assert charsets.html_meta_charset(data) is None or isinstance(charsets.html_meta_charset(data), str)


@SETTINGS
@given(st.binary(max_size=200), LABELS)
def test_header_functions_are_total_and_surrogate_free(data: bytes, label: str) -> None:
    text = headers.header_text(data, label)
    escaped = data.decode("ascii", "surrogateescape")
    results = [text, words.decode_words(escaped), words.decode_words(text)]
    results += [params.attachment_filename(escaped, escaped) or "", dates.parse_date(escaped) or ""]
    results += [addresses.parse_message_id(escaped) or ""]
    results += [a["name"] + a["address"] for a in addresses.parse_addresses(escaped)]
    results += [value for _, value in parse_header_block(data, label)]
    for result in results:
        result.encode("utf-8")


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(["Subject", "From", "To", "Cc", "Date", "Message-ID", "X-Any"]),
                       st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))), max_size=6),
    st.lists(st.tuples(st.sampled_from([b"text/plain", b"text/html", b"image/png", b"message/rfc822",
                                        b"application/pdf", b"multipart/mixed"]),
                       LABELS, CTES, st.sampled_from([b"", b"inline", b"attachment", b"attachment; filename*=x''%ff"]),
                       st.binary(max_size=80)), max_size=4),
)
def test_no_mime_structure_makes_the_raw_decoder_raise(
    top: list[tuple[str, bytes]], parts: list[tuple[bytes, str, bytes, bytes, bytes]]
) -> None:
    lines = [name.encode() + b": " + value for name, value in top]
    lines.append(b'Content-Type: multipart/mixed; boundary="zz"')
    body = b""
    for kind, label, cte, disposition, data in parts:
        body += (b"--zz\r\nContent-Type: " + kind + b"; charset=" + label.encode() + b"\r\nContent-Transfer-Encoding: "
                 + cte + b"\r\nContent-Disposition: " + disposition + b"\r\nContent-ID: <x>\r\n\r\n"
                 + data.replace(b"--zz", b"") + b"\r\n")
    source = message(*lines, body=body + b"--zz--\r\n")
    assert_storable(decode_message(source, mode="raw"))


@SETTINGS
@given(st.binary(max_size=500))
def test_no_bytes_make_raw_mail_raise(source: bytes) -> None:
    with contextlib.suppress(PayloadTooLargeError):
        assert_storable(decode_message(source, mode="raw"))




# st.text() leaves lone surrogates out: characters drawn one by one, some of them lone surrogates.
BODIES = st.none() | st.lists(st.sampled_from(["\ud800", "\udc80", "\udfff", "é", "—", "a", "😀"]) | st.characters(),
                              max_size=30).map("".join)


@SETTINGS
@given(BODIES, BODIES, BODIES)
def test_scrubbing_changes_a_mail_exactly_when_a_body_holds_a_lone_surrogate(
    text: str | None, html: str | None, spam_report: str | None
) -> None:
    # The probe checks a non-ASCII body by encoding it to UTF-16, not UTF-8: both refuse the same strings.
    mail = dataclasses.replace(raw(message(b"Subject: s")), text=text, html=html, spam_report=spam_report)
    lone = any(any("\ud800" <= ch <= "\udfff" for ch in body or "") for body in (text, html, spam_report))
    assert (scrubbed(mail) is not mail) == lone
    stored_json(mail)
