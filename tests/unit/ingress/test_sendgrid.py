"""SendGrid's form in both modes → InboundMail, field by field (ingress/sendgrid and the mime decoder under it).

Decoder-level (no HTTP, no storage): each test builds a form, parses it with our
multipart parser and decodes it. The corpus of real mails in real charsets is in
test_decoding_corpus.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests_toolbelt import MultipartEncoder

from chalicelib.errors import MalformedMailError
from chalicelib.ingress import form as multipart
from chalicelib.ingress.sendgrid import extras, payload
from chalicelib.mime.scrub import scrubbed
from chalicelib.model import InboundMail
from tests.corpus.make_corpus import b_word, cp50220
from tests.support.examples import examples

CRLF = b"\r\n"


def form(*fields: tuple[str, Any]) -> InboundMail:
    encoder = MultipartEncoder(fields=list(fields))
    return payload.parse(multipart.parse(encoder.to_string(), encoder.content_type))


def parsed(**fields: Any) -> InboundMail:
    """A parsed-mode post: keyword arguments are fields (``charsets`` and ``attachment_info`` as dicts)."""
    items: list[tuple[str, Any]] = []
    for name, value in fields.items():
        name = name.replace("_", "-") if name in ("attachment_info", "content_ids") else name
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False).encode()
        items.append((name, value))
    if not any(name in fields for name in ("headers", "text", "html")):
        items.append(("text", b""))
    return form(*items)


def raw(message: bytes, *extra: tuple[str, Any]) -> InboundMail:
    return form(("email", message), *extra)


def stored_json(mail: InboundMail) -> bytes:
    """What the store writes after commit() scrubs the mail: the document as UTF-8 JSON (raises on a surrogate)."""
    return json.dumps(scrubbed(mail).to_dict(), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The fields SendGrid computes: parsed when well formed, null when not


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"{@example.com : pass}", [{"domain": "example.com", "result": "pass"}]),
        (
            b"{@example.com : pass, @mailer.example.net : fail}",
            [{"domain": "example.com", "result": "pass"}, {"domain": "mailer.example.net", "result": "fail"}],
        ),
        (b"{@a.example : PASS,@b.example : temperror}\r\n",
         [{"domain": "a.example", "result": "pass"}, {"domain": "b.example", "result": "temperror"}]),
        (b"none", []),
        (b"{}", []),
        (b"pass", None),
        (b"{@example.com}", None),
        (b"{@example.com : pass, junk}", None),
        (b"", None),
        (b"\xff\xfe{", None),
    ],
)
def test_dkim_entries_or_null(value: bytes, expected: Any) -> None:
    assert parsed(dkim=value).dkim == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"pass", "pass"), (b"SoftFail", "softfail"), (b"neutral (guess)", "neutral"), (b"none", "none"),
     (b"maybe", None), (b"", None), (b"\x00\xff", None)],
)
def test_spf_result_or_null(value: bytes, expected: str | None) -> None:
    assert parsed(SPF=value).spf == expected


@pytest.mark.parametrize(
    ("score", "ip", "expected"),
    [
        (b"1.25", b"192.0.2.1", (1.25, "192.0.2.1")),
        (b"-0.5", b"2001:DB8::1", (-0.5, "2001:db8::1")),
        (b" 3 ", b"[192.0.2.7]", (3.0, "192.0.2.7")),
        (b"nan", b"999.1.1.1", (None, None)),
        (b"inf", b"localhost", (None, None)),
        (b"", b"", (None, None)),
    ],
)
def test_spam_score_and_sender_ip_or_null(score: bytes, ip: bytes, expected: tuple[Any, Any]) -> None:
    mail = parsed(spam_score=score, sender_ip=ip)
    assert (mail.spam_score, mail.sender_ip) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"to":["a@example.com","b@example.com"],"from":"s@example.org"}',
         {"from": "s@example.org", "to": ["a@example.com", "b@example.com"]}),
        (b'{"to":"a@example.com","from":null}', {"from": None, "to": ["a@example.com"]}),
        (b'{"to":[1, "a@example.com", null],"from":""}', {"from": "", "to": ["a@example.com"]}),
        (b'{"x": 1}', None),
        (b"[1, 2]", None),
        (b"{not json", None),
        (b'{"to":["\\ud800@example.com"],"from":"\\udcff"}', {"from": "\ufffd", "to": ["\ufffd@example.com"]}),
    ],
)
def test_envelope_or_null(value: bytes, expected: Any) -> None:
    mail = parsed(envelope=value)
    assert (mail.envelope.to_dict() if mail.envelope else None) == expected


def test_spam_report_is_kept_as_text() -> None:
    report = "Spam detection software has NOT identified this incoming email as spam.\n\n pts rule\n 0.0 X"
    assert parsed(spam_report=report.encode()).spam_report == report


# ---------------------------------------------------------------------------------------------
# Parsed mode: the charset SendGrid names for each field


def test_text_and_html_are_decoded_in_the_charsets_they_are_named_in() -> None:
    mail = parsed(
        text="Привет, мир".encode("koi8-r"),
        html="<p>Grüße €</p>".encode("cp1252"),
        charsets={"text": "KOI8-R", "html": "iso-8859-1", "subject": "UTF-8"},
    )
    assert (mail.text, mail.html) == ("Привет, мир", "<p>Grüße €</p>")


def test_a_subject_already_decoded_by_sendgrid_is_taken_as_it_is() -> None:
    headers_block = b"Subject: " + b_word(cp50220("①㈱"), "ISO-2022-JP") + b"\r\n"
    mail = parsed(headers=headers_block, subject="見積書①㈱～".encode(), charsets={"subject": "UTF-8"})
    assert mail.subject == "見積書①㈱～"


def test_a_subject_field_that_differs_from_the_header_only_in_blanks_gives_way_to_the_header() -> None:
    block = b"Subject: Re: TEST\r\n \r\n\t" + b_word(cp50220("テスト"), "ISO-2022-JP") + b"\r\n"
    mail = parsed(headers=block, subject="Re: TESTテスト ".encode(), charsets={"subject": "UTF-8"})
    assert mail.subject == "Re: TEST \tテスト"
    mail = parsed(headers=b"Subject: Hello\r\n", subject=b"Hello  ", charsets={"subject": "UTF-8"})
    assert mail.subject == "Hello"


def test_a_subject_in_its_own_charset_is_decoded_in_it() -> None:
    mail = parsed(subject=cp50220("見積書①㈱～"), charsets={"subject": "ISO-2022-JP"})
    assert mail.subject == "見積書①㈱～"
    mail = parsed(subject="Счёт".encode("cp1251"), charsets={"subject": "windows-1251"})
    assert mail.subject == "Счёт"


def test_a_subject_still_in_rfc_2047_words_is_decoded() -> None:
    mail = parsed(subject=b"=?ISO-2022-JP?B?" + base64.b64encode(cp50220("①㈱")) + b"?= =?utf-8?q?_caf=C3=A9?=",
                  charsets={"subject": "UTF-8"})
    assert mail.subject == "①㈱ café"


def test_without_a_subject_field_the_header_is_used() -> None:
    mail = parsed(headers=b"Subject: =?utf-8?b?" + base64.b64encode("件名".encode()) + b"?=\r\n")
    assert mail.subject == "件名"


def test_a_subject_field_sendgrid_could_not_decode_gives_way_to_the_header() -> None:
    headers_block = b"Subject: " + b_word(cp50220("①㈱のお見積り"), "ISO-2022-JP") + b"\r\n"
    mail = parsed(headers=headers_block, subject="\ufffd\ufffdのお見積り".encode(), charsets={"subject": "UTF-8"})
    assert mail.subject == "①㈱のお見積り"


def test_a_field_labelled_unknown_8bit_is_read_in_the_mails_own_charset() -> None:
    mail = parsed(
        subject="見積書①".encode("cp932"),
        text="本文".encode("cp932"),
        charsets={"subject": "UNKNOWN-8BIT", "text": "shift_jis"},
    )
    assert (mail.subject, mail.text) == ("見積書①", "本文")


def test_addresses_come_from_the_raw_header_where_sendgrid_lost_their_structure() -> None:
    # sendgrid/docs#6289: SendGrid decodes the display name before it splits the list.
    name = "<my-name-again@host.local>"
    mail = parsed(
        headers=b"From: =?UTF-8?B?" + base64.b64encode(name.encode()) + b"?= <my-name@host.local>\r\n"
        b"To: =?utf-8?q?Doe=2C_Jane?= <jane@example.com>, bob@example.com\r\n",
        **{"from": f"{name} <my-name@host.local>".encode(), "to": b"Doe, Jane <jane@example.com>, bob@example.com"},
        charsets={"from": "UTF-8", "to": "UTF-8"},
    )
    assert mail.sender == {"name": name, "address": "my-name@host.local"}
    assert mail.to == [{"name": "Doe, Jane", "address": "jane@example.com"}, {"name": "", "address": "bob@example.com"}]


def test_without_headers_the_address_fields_are_used_in_their_charsets() -> None:
    mail = parsed(
        text=b"x",
        **{"from": "Иван <ivan@example.ru>".encode("koi8-r"), "to": b"Doe, Jane <jane@example.com>",
           "cc": b"=?utf-8?q?M=C3=BCller?= <m@example.de>"},
        charsets={"from": "koi8-r", "to": "UTF-8", "cc": "UTF-8"},
    )
    assert mail.sender == {"name": "Иван", "address": "ivan@example.ru"}
    # SendGrid decoded the quotes away: "Doe" alone is no recipient.
    assert mail.to == [{"name": "Jane", "address": "jane@example.com"}]
    assert mail.cc == [{"name": "Müller", "address": "m@example.de"}]


def test_raw_8bit_headers_are_read_in_the_charset_the_form_names() -> None:
    block = b"From: " + "大栗".encode("cp932") + b" <a@example.jp>\r\nSubject: " + "件名①".encode("cp932") + b"\r\n"
    mail = parsed(headers=block, text="本文".encode("cp932"), charsets={"text": "Shift_JIS"})
    assert mail.sender == {"name": "大栗", "address": "a@example.jp"}
    assert mail.subject == "件名①"
    assert ("Subject", "件名①") in mail.headers


def test_an_html_part_without_a_charset_is_read_by_its_meta_tag_and_a_named_one_wins() -> None:
    page = b'<html><head><meta charset="shift_jis"></head><body>' + "①".encode("cp932") + b"</body></html>"
    assert parsed(html=page).html == '<html><head><meta charset="shift_jis"></head><body>①</body></html>'
    assert parsed(html=page, charsets={"html": "us-ascii"}).html == page.decode("cp932")
    assert parsed(html=page, charsets={"html": "windows-1252"}).html == page.decode("cp1252")
    assert parsed(html=page, charsets={"html": "windows-1252"}).html.endswith("<body>‡@</body></html>")


# -- parsed-mode attachments -------------------------------------------------------------------


def test_attachments_in_number_order_with_names_types_content_ids_and_gaps() -> None:
    info = {
        "attachment1": {"filename": "=?UTF-8?B?" + base64.b64encode("請求書.pdf".encode()).decode() + "?=",
                        "name": "x", "type": "application/PDF"},
        "attachment3": {"filename": "logo.png", "type": "image/png", "content-id": "<logo@example.com>"},
        "attachment10": {"name": "fallback-name.txt", "type": "text/plain", "charset": "utf-8"},
        "attachment11": {"filename": "", "type": "text/plain\r\nX-Injected: yes"},
        "attachment12": {"filename": "a\u202egnp.exe"},
    }
    mail = form(
        ("text", b"x"),
        ("attachment-info", json.dumps(info)),
        ("content-ids", json.dumps({"cid-from-map@example.com": "attachment12"})),
        ("attachment12", ("a\u202egnp.exe", b"exe", "application/x-msdownload")),
        ("attachment10", ("part-name.txt", b"ten", "text/plain")),
        ("attachment3", ("logo.png", b"png", "image/png")),
        ("attachment1", ("part.pdf", b"%PDF", "application/pdf")),
        ("attachment11", ("", b"", "application/octet-stream")),
    )
    assert [a.to_dict() | {"sha256": None} for a in mail.attachments] == [
        {"index": 1, "filename": "請求書.pdf", "content_type": "application/pdf", "size": 4, "sha256": None,
         "content_id": None, "disposition": "attachment"},
        {"index": 2, "filename": "logo.png", "content_type": "image/png", "size": 3, "sha256": None,
         "content_id": "logo@example.com", "disposition": "inline"},
        {"index": 3, "filename": "fallback-name.txt", "content_type": "text/plain", "size": 3, "sha256": None,
         "content_id": None, "disposition": "attachment"},
        {"index": 4, "filename": None, "content_type": "application/octet-stream", "size": 0, "sha256": None,
         "content_id": None, "disposition": "attachment"},
        {"index": 5, "filename": "agnp.exe", "content_type": "application/x-msdownload", "size": 3, "sha256": None,
         "content_id": "cid-from-map@example.com", "disposition": "inline"},
    ]


def test_an_attachment_part_without_a_filename_is_still_an_attachment() -> None:
    body = (b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\nx\r\n'
            b'--b\r\nContent-Disposition: form-data; name="attachment1"\r\n\r\nbytes\r\n--b--\r\n')
    mail = payload.parse(multipart.parse(body, "multipart/form-data; boundary=b"))
    assert [(a.index, a.filename, bytes(a.data)) for a in mail.attachments] == [(1, None, b"bytes")]


def test_a_form_with_neither_mode_is_malformed() -> None:
    with pytest.raises(MalformedMailError):
        form(("to", b"x@example.com"))


def message(*header_lines: bytes, body: bytes = b"") -> bytes:
    return CRLF.join(header_lines) + CRLF + CRLF + body


def mixed(*parts: bytes, boundary: bytes = b"B") -> bytes:
    inner = b"".join(b"--" + boundary + CRLF + p + CRLF for p in parts) + b"--" + boundary + b"--" + CRLF
    return message(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"', body=inner)


def attachment(cte: bytes, body: bytes) -> bytes:
    return (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f.bin\r\n"
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body)


# ---------------------------------------------------------------------------------------------
# No lone surrogate reaches the store


def test_no_field_can_carry_a_lone_surrogate_into_the_stored_json() -> None:
    surrogate_json = {
        "attachment1": {"filename": "\udc80\ud800.pdf", "type": "image/\udcff", "content-id": "\udfff@x"},
    }
    parsed_mail = form(
        ("headers", b"Subject: caf\xe9\r\nFrom: \xff <a@b.example>\r\nMessage-ID: <\xe9@x>\r\nDate: \xff\r\n"),
        ("text", b"+2D3cAA- utf-7 makes surrogates"),
        ("html", b"\xed\xa0\x80 CESU/surrogate bytes"),
        ("subject", b"\xed\xb2\x80"),
        ("from", b"\xff\xfe"),
        ("charsets", json.dumps({"text": "utf-7", "html": "utf-8", "subject": "\ud800", "from": "utf-16"})),
        ("envelope", json.dumps({"to": ["\ud800@example.com"], "from": "\udc80"})),
        ("attachment-info", json.dumps(surrogate_json)),
        ("content-ids", json.dumps({"\udc80": "attachment1"})),
        ("spam_report", b"\xed\xa0\x80"),
        ("dkim", "{@\udc80.example : pass}".encode("utf-8", "surrogatepass")),
        ("attachment1", ("x", b"data", "application/octet-stream")),
    )
    raw_mail = raw(
        message(b"Subject: \xe9\xff", b"From: \xe9 <\xe9@b.example>", b"Content-Type: multipart/mixed; boundary=b",
                body=b"--b\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n+2D3cAA-\r\n"
                     b'--b\r\nContent-Type: image/\xe9; name="\xe9.png"\r\nContent-ID: <\xe9@x>\r\n\r\n'
                     b"png\r\n--b--\r\n"),
        ("envelope", json.dumps({"to": ["\udcff"]})),
    )
    for mail in (parsed_mail, raw_mail):
        document = stored_json(mail).decode("utf-8")
        assert not any("\ud800" <= ch <= "\udfff" for ch in document)
    assert scrubbed(parsed_mail).attachments[0].content_type == "application/octet-stream"
    assert raw_mail.subject == "é\xff".encode("latin-1").decode("cp1252")


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


FIELD = st.binary(max_size=80) | st.sampled_from([b"", b"{}", b"none", b"=?utf-8?b?4pyT?=", b'{"to": ["\\ud800"]}'])


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["headers", "text", "html", "subject", "from", "to", "cc", "envelope", "dkim", "SPF",
                         "spam_score", "spam_report", "sender_ip", "attachment-info", "content-ids", "attachment2"]),
        FIELD, max_size=8),
    st.dictionaries(st.sampled_from(["text", "html", "subject", "from", "to", "cc", "headers"]), LABELS, max_size=5),
)
def test_no_fields_in_any_charset_make_the_parsed_decoder_raise(
    values: dict[str, bytes], labels: dict[str, str]
) -> None:
    items = [("text", values.pop("text", b"x")), *values.items(), ("charsets", json.dumps(labels).encode())]
    assert_storable(form(*items))


def test_raw_mode_decodes_a_large_attachment_without_copying_the_message() -> None:
    import tracemalloc

    data = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # 2 MB, 2.7 MB as base64
    source = mixed(b"Content-Type: text/plain\r\n\r\nsee attached",
                   attachment(b"base64", base64.encodebytes(data).replace(b"\n", CRLF)))
    encoder = MultipartEncoder(fields=[("to", "a@example.com"), ("email", source)])
    body = encoder.to_string()
    form_ = multipart.parse(body, encoder.content_type)
    tracemalloc.start()
    try:
        mail = payload.parse(form_)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [found] = mail.attachments
    assert found.data == data
    # The decoded attachment and small change. Copying the message, its part or the
    # whitespace-free base64 would each add 2.7 MB.
    assert peak < len(data) + 512 * 1024, peak


def _ipaddress_reading(value: str) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return None


_octet_text = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "255", "256", "", "a", " 1"]))


@settings(max_examples=examples(1000), deadline=None)
@given(st.lists(_octet_text, min_size=3, max_size=5).map(".".join), st.sampled_from(["", "[", "]"]))
def test_the_ipv4_shortcut_reads_a_sender_ip_as_the_ipaddress_module_does(dotted: str, bracket: str) -> None:
    value = bracket + dotted + bracket.translate(str.maketrans("[]", "]["))
    assert extras._sender_ip(value) == _ipaddress_reading(value)
