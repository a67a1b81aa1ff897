"""Header values to Unicode and structure, total on any input."""

from __future__ import annotations

import base64
import email.utils
import unicodedata
import urllib.parse
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.message import Message
from email.utils import format_datetime, formataddr

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.mime import addresses, dates, headers, words
from chalicelib.mime.addresses import parse_addresses, parse_message_id
from chalicelib.mime.dates import parse_date
from chalicelib.mime.labels import WHATWG_LABELS
from chalicelib.mime.params import attachment_filename
from chalicelib.mime.text import clean, no_surrogates
from chalicelib.mime.words import decode_words
from tests.support.examples import examples
from tests.support.headers import parse_header_block


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests are pure and need no server."""
    return ""


PROPERTY = settings(
    max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


NEC_JIS = b"\x1b$B-!-j!A\x1b(B"  # ①㈱～ in ISO-2022-JP as Windows writes it
CP932_FORMS = str.maketrans("\u301c\u2016\u2212\u00a2\u00a3\u00ac", "\uff5e\u2225\uff0d\uffe0\uffe1\uffe2")


# --------------------------------------------------------------------------------------------
# decode_words


def test_plain_text_is_unchanged() -> None:
    assert decode_words("Hello, world =? not a word ?=") == "Hello, world =? not a word ?="
    assert decode_words("") == ""


def test_b_and_q_words_any_case() -> None:
    assert decode_words("=?UTF-8?B?5aSn5qCX5a6X?=") == "大栗宗"
    assert decode_words("=?utf-8?b?5aSn5qCX5a6X?=") == "大栗宗"
    assert decode_words("=?ISO-8859-1?Q?caf=E9_au_lait?=") == "café au lait"
    assert decode_words("=?iso-8859-1?q?caf=e9?=") == "café"


def test_underscore_is_space_in_q_only() -> None:
    assert decode_words("=?utf-8?Q?a_b=5Fc?= snake_case") == "a b_c snake_case"


def test_whitespace_between_adjacent_words_is_dropped() -> None:
    assert decode_words("=?utf-8?q?a?=   =?utf-8?q?b?=") == "ab"
    assert decode_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?=\n\t=?utf-8?q?c?=") == "abc"
    # ... but kept between a word and ordinary text.
    assert decode_words("Re: =?utf-8?q?a?= b =?utf-8?q?c?=") == "Re: a b c"


def test_mixed_charsets_in_one_header() -> None:
    korean = b64("한국어".encode("cp949"))
    value = f"=?iso-8859-1?q?caf=E9?= =?ks_c_5601-1987?B?{korean}?= and =?koi8-r?B?{b64('мир'.encode('koi8_r'))}?="
    assert decode_words(value) == "café한국어 and мир"


def test_multibyte_character_split_across_words() -> None:
    data = "大栗宗".encode()
    value = f"=?UTF-8?B?{b64(data[:4])}?= =?utf-8?b?{b64(data[4:])}?="
    assert decode_words(value) == "大栗宗"
    assert decode_words("=?utf-8?q?=E6=97?= =?UTF-8?Q?=A5=E6=9C=AC?=") == "日本"
    sjis = "見積書".encode("cp932")
    assert decode_words(f"=?shift_jis?B?{b64(sjis[:3])}?= =?Shift_JIS?B?{b64(sjis[3:])}?=") == "見積書"


def test_cjk_labels_go_through_the_charset_table() -> None:
    assert decode_words(f"=?ks_c_5601-1987?B?{b64('한국어 제목'.encode('cp949'))}?=") == "한국어 제목"
    assert decode_words(f"=?gb2312?B?{b64('镕堃'.encode('gbk'))}?=") == "镕堃"
    jis = "日本語".encode("iso2022_jp") + NEC_JIS
    assert decode_words(f"=?ISO-2022-JP?B?{b64(jis)}?=") == "日本語①㈱～"
    assert decode_words(f"=?utf-8*ja?B?{b64('日本'.encode())}?=") == "日本"  # RFC 2231 language


def test_malformed_words_degrade_without_raising() -> None:
    assert decode_words("=?utf-8?B?!!!?=") == "=?utf-8?B?!!!?="  # not base64: literal
    assert decode_words("=?utf-8?B?5aSn5?=") == "大\ufffd"  # truncated base64
    assert decode_words("=?utf-8?B?5aSn5qCX5a6X?=x") == "大栗宗x"
    assert decode_words("=?utf-8?q?a=zz?=") == "a=zz"  # bad escape stays literal
    assert decode_words("=?utf-8?q?unterminated") == "=?utf-8?q?unterminated"
    assert decode_words("=?utf-8?B?/w==?=") == "\ufffd"  # invalid UTF-8 inside
    assert decode_words("=?utf-8?x?abc?=") == "=?utf-8?x?abc?="  # unknown encoding


def test_unknown_charset_is_guessed() -> None:
    assert decode_words("=?x-unknown?Q?caf=E9?=") == "café"
    assert decode_words("=?unknown-8bit?B?Y2Fmw6k=?=") == "café"
    assert decode_words("=??Q?caf=C3=A9?=") == "café"


def test_unfolding() -> None:
    assert decode_words("a long\r\n subject\n\tline") == "a long subject\tline"
    assert decode_words("broken\nline") == "broken line"


def test_raw_eight_bit_arriving_as_surrogate_escapes() -> None:
    raw_utf8 = "件名 café".encode().decode("ascii", "surrogateescape")
    assert decode_words(raw_utf8) == "件名 café"
    raw_latin = b"caf\xe9".decode("ascii", "surrogateescape")
    assert decode_words(raw_latin) == "café"
    assert decode_words("lone \ud800 surrogate") == "lone \ufffd surrogate"


def test_raw_iso_2022_jp_header() -> None:
    assert decode_words("日本語".encode("iso2022_jp").decode("ascii")) == "日本語"


# --------------------------------------------------------------------------------------------
# parse_header_block


def test_header_block_lf_crlf_folding_and_order() -> None:
    block = (
        b"Received: from a\r\n\tby b; Wed, 25 Sep 2013 18:16:53 +0900\r\n"
        b"From: =?utf-8?B?5aSn5qCX5a6X?= <sender@example.com>\n"
        b"Subject: =?utf-8?B?5aSn5qCX?=\n =?utf-8?B?5a6X?=\n"
        b"X-Custom-Header:   padded value   \n"
        b"Received: second\n"
        b"Empty:\n"
    )
    assert parse_header_block(block) == [
        ("Received", "from a\tby b; Wed, 25 Sep 2013 18:16:53 +0900"),
        ("From", "大栗宗 <sender@example.com>"),
        ("Subject", "大栗宗"),
        ("X-Custom-Header", "padded value"),
        ("Received", "second"),
        ("Empty", ""),
    ]


def test_header_block_raw_eight_bit() -> None:
    block = b"Subject: " + "件名 café".encode() + b"\nX-Latin: caf\xe9\n"
    assert parse_header_block(block) == [("Subject", "件名 café"), ("X-Latin", "café")]
    sjis = b"Subject: " + "見積書①".encode("cp932") + b"\n"
    assert parse_header_block(sjis, "shift_jis") == [("Subject", "見積書①")]
    assert parse_header_block(b"Subject: " + "日本語".encode("iso2022_jp") + b"\n") == [("Subject", "日本語")]


def test_header_block_skips_lines_that_are_not_headers() -> None:
    block = (
        b"  orphan continuation\n"
        b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"
        b"  its continuation\n"
        b"no colon here\n"
        b": no name\n"
        b"Subject : spaced\n"
        b"To: a@example.com\n"
    )
    assert parse_header_block(block) == [("Subject", "spaced"), ("To", "a@example.com")]


def test_header_block_stops_at_the_empty_line() -> None:
    block = b"\r\nSubject: x\r\n\r\nNot-A-Header: body text\r\n"
    assert parse_header_block(block) == [("Subject", "x")]
    assert parse_header_block(b"") == []


# --------------------------------------------------------------------------------------------
# parse_addresses


def test_addresses_with_encoded_names_quotes_and_groups() -> None:
    value = (
        '=?utf-8?B?5aSn5qCX5a6X?= <sender@example.com>, "Doe, John" <john@example.com>, '
        'Team: a@example.com, "B, b" <b@example.com>;, undisclosed-recipients:;, '
        "plain@example.com (Plain Person)"
    )
    assert parse_addresses(value) == [
        {"name": "大栗宗", "address": "sender@example.com"},
        {"name": "Doe, John", "address": "john@example.com"},
        {"name": "", "address": "a@example.com"},
        {"name": "B, b", "address": "b@example.com"},
        {"name": "Plain Person", "address": "plain@example.com"},
    ]


def test_addresses_quoted_encoded_word_and_nec_characters() -> None:
    jis = b64("株式会社".encode("iso2022_jp") + NEC_JIS)
    value = f'"=?utf-8?B?5aSn5qCX5a6X?=" <a@example.com>, =?ISO-2022-JP?B?{jis}?= <b@example.jp>'
    assert parse_addresses(value) == [
        {"name": "大栗宗", "address": "a@example.com"},
        {"name": "株式会社①㈱～", "address": "b@example.jp"},
    ]


def test_addresses_raw_unicode_and_folded() -> None:
    assert parse_addresses("Ünïcode Náme <u@example.com>,\r\n v@example.com") == [
        {"name": "Ünïcode Náme", "address": "u@example.com"},
        {"name": "", "address": "v@example.com"},
    ]


@pytest.mark.parametrize("value", ["", "   ", ",,,", "undisclosed-recipients:;", "<>", ")(", '"'])
def test_addresses_of_nothing(value: str) -> None:
    assert parse_addresses(value) == []


def test_addresses_deeply_nested_groups_do_not_lose_the_rest() -> None:
    assert parse_addresses("a:" * 3000 + ', b@example.com, "X" <x@example.com>') == [
        {"name": "", "address": "b@example.com"},
        {"name": "X", "address": "x@example.com"},
    ]


# --------------------------------------------------------------------------------------------
# parse_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 25 Sep 2013 18:16:53 +0900", "2013-09-25T18:16:53+09:00"),
        ("Wed, 25 Sep 2013 18:16:53 -0000", "2013-09-25T18:16:53+00:00"),
        ("Wed, 25 Sep 2013 18:16:53", "2013-09-25T18:16:53+00:00"),
        ("Wed, 25 Sep 2013 18:16:53 +0900 (JST)", "2013-09-25T18:16:53+09:00"),
        ("Wed, 25 Sep 2013 18:16:53 JST", "2013-09-25T18:16:53+09:00"),
        ("Wed, 25 Sep 2013 18:16:53 EST", "2013-09-25T18:16:53-05:00"),
        ("Wed, 25 Sep 2013 18:16:53 GMT", "2013-09-25T18:16:53+00:00"),
        ("25 Sep 13 18:16:53 -0530", "2013-09-25T18:16:53-05:30"),
        ("Wed, 25 Sep 2013 18:16 +0100", "2013-09-25T18:16:00+01:00"),
        ("Wed, 25 Sep 2013 18.16.53 +0100", "2013-09-25T18:16:53+01:00"),
        ("Wed,\r\n 25 Sep 2013 18:16:53 +0900", "2013-09-25T18:16:53+09:00"),
        ("Sat, 31 Dec 2016 23:59:60 +0000", "2016-12-31T23:59:59+00:00"),
        ("2013-09-25T18:16:53+09:00", "2013-09-25T18:16:53+09:00"),
        ("2013-09-25 18:16:53", "2013-09-25T18:16:53+00:00"),
        ("Wed Sep 25 18:16:53 2013", "2013-09-25T18:16:53+00:00"),
        ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", "1997-11-21T09:55:06-06:00"),
    ],
)
def test_dates(value: str, expected: str) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "garbage", "Mon, 32 Foo 2013 99:99:99 +0000", "Wed, 31 Feb 2013 10:00:00 +0000",
     "Thu, 01 Jan 1970 00:00:00 +9999", "Wed, 25 Sep 2013 25:00:00 +0000"],
)
def test_unparseable_dates(value: str | None) -> None:
    assert parse_date(value) is None


# --------------------------------------------------------------------------------------------
# parse_message_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.com>", "<abc@example.com>"),
        ("  <abc@example.com>  ", "<abc@example.com>"),
        ("<abc@example.com> <def@example.com>", "<abc@example.com>"),
        ("<> <def@example.com>", "<def@example.com>"),
        ("<abc@exa\r\n mple.com>", "<abc@example.com>"),
        ("abc@example.com", "<abc@example.com>"),
        ("abc@example.com (comment)", "<abc@example.com>"),
        ("<unterminated@example.com", "<unterminated@example.com>"),
        ("", None),
        ("   ", None),
        ("<>", None),
        (None, None),
    ],
)
def test_message_id(value: str | None, expected: str | None) -> None:
    assert parse_message_id(value) == expected


# --------------------------------------------------------------------------------------------
# attachment_filename


def pct(data: bytes) -> str:
    return urllib.parse.quote(data, safe="")


def test_rfc2231_utf8() -> None:
    assert attachment_filename("attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf", None) == "日本語.pdf"
    assert attachment_filename("attachment; filename*=\"utf-8'ja'%E6%97%A5.txt\"", None) == "日.txt"


def test_rfc2231_continuations_any_order() -> None:
    value = "attachment; filename*1*=%E6%9C%AC; filename*0*=UTF-8''%E6%97%A5; filename*2=\".pdf\""
    assert attachment_filename(value, None) == "日本.pdf"


def test_rfc2231_iso_2022_jp_in_first_segment() -> None:
    jis = "請求書".encode("iso2022_jp") + NEC_JIS
    value = f"attachment;\r\n filename*0*=ISO-2022-JP''{pct(jis[:7])};\r\n filename*1*={pct(jis[7:])}; filename*2=.txt"
    assert attachment_filename(value, None) == "請求書①㈱～.txt"


def test_rfc2231_shift_jis_split_inside_a_character() -> None:
    sjis = "見積書①.xlsx".encode("cp932")
    value = f"attachment; filename*0*=Shift_JIS''{pct(sjis[:3])}; filename*1*={pct(sjis[3:])}"
    assert attachment_filename(value, None) == "見積書①.xlsx"


def test_rfc2231_unknown_or_missing_charset_is_guessed() -> None:
    assert attachment_filename("attachment; filename*=''caf%C3%A9.txt", None) == "café.txt"
    assert attachment_filename("attachment; filename*=x-bogus''caf%E9.txt", None) == "café.txt"


def test_extended_filename_wins_over_plain() -> None:
    value = "attachment; filename=\"fallback.pdf\"; filename*=UTF-8''%E2%82%AC.pdf"
    assert attachment_filename(value, None) == "€.pdf"


def test_outlook_rfc2047_filename_and_content_type_fallback() -> None:
    word = f"=?utf-8?B?{b64('大栗宗の見積書.pdf'.encode())}?="
    assert attachment_filename(f'attachment; filename="{word}"', None) == "大栗宗の見積書.pdf"
    assert attachment_filename(None, f'application/pdf; name="{word}"') == "大栗宗の見積書.pdf"
    assert attachment_filename("attachment", "application/pdf; NAME=report.pdf") == "report.pdf"
    assert attachment_filename('attachment; filename=""', "text/plain; name*=utf-8''a%20b.txt") == "a b.txt"


def test_rfc2047_word_split_across_plain_continuations() -> None:
    word = f"=?utf-8?B?{b64('日本語.txt'.encode())}?="
    value = f'attachment; filename*0="{word[:10]}"; filename*1="{word[10:]}"'
    assert attachment_filename(value, None) == "日本語.txt"


def test_filename_quoting_and_tolerance() -> None:
    assert attachment_filename('attachment; filename="a;b.txt"; size=3', None) == "a;b.txt"
    assert attachment_filename('attachment; filename="say \\"hi\\".txt"', None) == 'say "hi".txt'
    assert attachment_filename('attachment; FileName="C:\\Users\\me\\report.pdf"', None) == "C:\\Users\\me\\report.pdf"
    assert attachment_filename("attachment; filename=my report.pdf", None) == "my report.pdf"
    assert attachment_filename('attachment; filename="unterminated.pdf', None) == "unterminated.pdf"
    assert attachment_filename('attachment; filename="../../etc/passwd"', None) == "../../etc/passwd"


def test_filename_control_characters_are_stripped() -> None:
    assert attachment_filename('attachment; filename="re\x00po\x07rt\x85.pdf"', None) == "report.pdf"
    assert attachment_filename('attachment; filename="invoice\u202efdp.exe"', None) == "invoicefdp.exe"
    assert attachment_filename("attachment; filename*=UTF-8''a%0D%0Ab.txt", None) == "ab.txt"


@pytest.mark.parametrize(
    ("disposition", "content_type"),
    [(None, None), ("attachment", "application/pdf"), ("", ""), ('attachment; filename="\x00"', None),
     ("inline; filename=", "text/plain; charset=utf-8")],
)
def test_no_filename(disposition: str | None, content_type: str | None) -> None:
    assert attachment_filename(disposition, content_type) is None


# --------------------------------------------------------------------------------------------
# Round trips through the standard library's encoders

def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
)


@PROPERTY
@given(header_text, st.sampled_from(["utf-8", "iso-2022-jp", "shift_jis", "euc-kr", "gb2312", "iso-8859-1"]))
def test_decode_words_inverts_email_header_encoding(text: str, charset: str) -> None:
    try:
        data = text.encode(charset)
        encoded = Header(text, charset, maxlinelen=76).encode()
    except UnicodeError:
        return
    if charset == "euc-kr":
        # Python's euc_kr spells UHC-only syllables as KS X 1001 make-up sequences, which
        # mailers (and WHATWG) do not compose: real mail carries cp949 bytes for them.
        assume(data == text.encode("cp949"))
    if charset == "iso-8859-1" and not data.isascii():
        # Latin-1 labels are tried as UTF-8 first (documented); "Â\xa0" would come out as "\xa0".
        assume(not _is_utf8(data))
    decoded = decode_words(encoded)
    if charset in ("iso-2022-jp", "shift_jis"):
        # cp932's forms of these JIS X 0208 characters, and JIS-Roman read as ASCII like cp932 does.
        text = text.translate(CP932_FORMS).replace("¥", "\\").replace("‾", "~")
    assert decoded == text


address_name = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), min_size=1, max_size=30
)
local_part = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True)


@PROPERTY
@given(st.lists(st.tuples(address_name, local_part), min_size=1, max_size=4))
def test_parse_addresses_inverts_formataddr(entries: list[tuple[str, str]]) -> None:
    assume(all(not name.startswith("=?") for name, _ in entries))
    value = ", ".join(formataddr((name, f"{local}@example.com"), charset="utf-8") for name, local in entries)
    assert parse_addresses(value) == [{"name": name, "address": f"{local}@example.com"} for name, local in entries]


@PROPERTY
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_parse_date_inverts_format_datetime(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset_minutes)))
    assert parse_date(format_datetime(aware)) == aware.isoformat()


filename = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@PROPERTY
@given(filename)
def test_attachment_filename_inverts_rfc2231_encoding(name: str) -> None:
    message = Message()
    message.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    expected = name.translate(dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])).strip()
    assume(expected)
    assert attachment_filename(message["Content-Disposition"], None) == expected


# --------------------------------------------------------------------------------------------
# Totality

any_label = st.sampled_from(sorted(label for labels in WHATWG_LABELS.values() for label in labels))
word_soup = st.lists(
    st.one_of(
        st.text(max_size=8),
        st.builds(
            "=?{}?{}?{}?=".format,
            st.one_of(any_label, st.text(max_size=6)),
            st.sampled_from("bBqQx"),
            st.text(max_size=12) | st.binary(max_size=9).map(lambda b: base64.b64encode(b).decode()),
        ),
        st.sampled_from(["\r\n ", "\n", " ", "\udce9", "\ud800", "\x1b$B", "=?", "?="]),
    ),
    max_size=12,
).map("".join)


def _assert_clean(value: str) -> None:
    assert isinstance(value, str)
    value.encode("utf-8")  # no lone surrogates


@PROPERTY
@given(st.one_of(st.text(max_size=200), word_soup))
def test_decode_words_never_raises(value: str) -> None:
    _assert_clean(decode_words(value))


@PROPERTY
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from([b"Subject: ", b"From:", b" ", b"\t", b"\r\n", b"\n", b"\r", b":", b"=?utf-8?B?", b"?="])
            | st.binary(max_size=10),
            max_size=30,
        ).map(b"".join),
    ),
    st.one_of(st.none(), any_label, st.text(max_size=10)),
)
def test_parse_header_block_never_raises(block: bytes, charset: str | None) -> None:
    for name, value in parse_header_block(block, charset):
        _assert_clean(name)
        _assert_clean(value)
        assert name and ":" not in name and value == value.strip(" \t\r\n")


@PROPERTY
@given(st.one_of(st.text(max_size=200), word_soup, st.text(alphabet='<>@,;:"()\\ a=?', max_size=60)))
def test_parse_addresses_never_raises(value: str) -> None:
    for entry in parse_addresses(value):
        assert set(entry) == {"name", "address"}
        assert entry["name"] or entry["address"]
        _assert_clean(entry["name"])
        _assert_clean(entry["address"])


DATE_LIKE = r"([A-Za-z]{3}, )?\d{1,2} [A-Za-z]{3} \d{1,4} [\d:. ]{1,12}([+-]\d{4}|[A-Z]{1,4})?"


@PROPERTY
@given(st.one_of(st.none(), st.text(max_size=80), st.from_regex(DATE_LIKE, fullmatch=True)))
def test_parse_date_never_raises(value: str | None) -> None:
    result = parse_date(value)
    if result is not None:
        assert datetime.fromisoformat(result).tzinfo is not None


@PROPERTY
@given(st.one_of(st.none(), st.text(max_size=80)))
def test_parse_message_id_never_raises(value: str | None) -> None:
    result = parse_message_id(value)
    if result is not None:
        _assert_clean(result)
        assert result.startswith("<") and result.endswith(">") and len(result) > 2
        assert not any(ch.isspace() for ch in result[1:-1])


param_soup = st.lists(
    st.one_of(
        st.text(max_size=10),
        st.sampled_from(
            ["attachment", ";", "filename", "filename*", "filename*0*", "filename*1", "name", "=", '"', "\\", "'",
             "%E6%97", "%", "utf-8''", "ISO-2022-JP''%1B%24B", "=?utf-8?B?", "?=", "\r\n "]
        ),
    ),
    max_size=20,
).map("".join)


@PROPERTY
@given(st.one_of(st.none(), st.text(max_size=100), param_soup), st.one_of(st.none(), st.text(max_size=100), param_soup))
def test_attachment_filename_never_raises(disposition: str | None, content_type: str | None) -> None:
    result = attachment_filename(disposition, content_type)
    if result is not None:
        _assert_clean(result)
        assert result == result.strip()
        assert not any(unicodedata.category(ch) == "Cc" for ch in result)


_simple_name = st.lists(st.text(alphabet="abcXYZ019_'-", min_size=1, max_size=6), min_size=1, max_size=3).map(" ".join)
_simple_address = st.tuples(
    st.text(alphabet="abc019_%+-", min_size=1, max_size=6), st.sampled_from(["example.com", "a-b.example.org", "x"])
).map("@".join)
_simple_entry = st.one_of(
    _simple_address,
    _simple_address.map(lambda address: f"<{address}>"),
    st.tuples(_simple_name, _simple_address).map(lambda pair: f"{pair[0]} <{pair[1]}>"),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_simple_entry, min_size=1, max_size=4), st.sampled_from([",", ", ", " , "]))
def test_the_fast_address_path_agrees_with_the_tokenizer_and_the_email_package(
    entries: list[str], separator: str
) -> None:
    value = separator.join(entries)
    fast = addresses._simple(value)
    assert fast is not None
    assert fast == addresses.parse_slowly(value)
    assert [(entry["name"], entry["address"]) for entry in fast] == email.utils.getaddresses([value])


_ASCII_PIECES = [*'ab =?QqBb_:;"<>@,.\t\r\n\x1b$()', "=?utf-8?q?caf=C3=A9?=", "=?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=",
                 '\x1b$B$"\x1b(B', "\r\n "]
_ascii_value = st.lists(st.sampled_from(_ASCII_PIECES), max_size=12).map("".join)


@settings(max_examples=examples(1000), deadline=None)
@given(_ascii_value, st.sampled_from([None, "utf-8", "iso-2022-jp", "shift_jis", "windows-1252"]))
def test_the_plain_value_shortcuts_give_what_the_careful_paths_give(value: str, hint: str | None) -> None:
    # A 7-bit str without ESC is returned as it is; the careful paths must agree on every such value.
    assert decode_words(value) == words._decode_words(clean(value))
    careful = no_surrogates(headers._decode_raw(value.encode("ascii"), hint))
    assert headers.header_text(value, hint) == careful
    assert headers.header_text(value.encode("ascii"), hint) == careful


_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@settings(max_examples=examples(1000), deadline=None)
@given(
    st.sampled_from(["", *(f"{day}, " for day in _DAYS)]), st.integers(0, 39), st.sampled_from(_MONTH_NAMES),
    st.integers(0, 9999), st.integers(0, 29), st.integers(0, 69), st.integers(0, 69), st.sampled_from("+-"),
    st.integers(0, 99), st.integers(0, 99), st.booleans(),
)
def test_the_rfc5322_date_shortcut_reads_a_date_as_email_utils_does(
    day_name: str, day: int, month: str, year: int, hour: int, minute: int, second: int, sign: str,
    zone_hours: int, zone_minutes: int, two_digit_day: bool,
) -> None:
    day_text = f"{day:02d}" if two_digit_day else str(day)
    time = f"{hour:02d}:{minute:02d}:{second:02d}"
    value = f"{day_name}{day_text} {month} {year:04d} {time} {sign}{zone_hours:02d}{zone_minutes:02d}"
    assert bool(dates._RFC5322_DATE.fullmatch(value)) == (year >= 1000)  # the shortcut is taken
    try:
        careful: str | None = dates._parse_date_carefully(value)
    except Exception:
        careful = None  # what parse_date answers for a field out of range
    assert parse_date(value) == careful
