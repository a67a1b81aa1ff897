"""Writes the decoding corpus: mails as real bytes in their real charsets.

Run ``python tests/corpus/make_corpus.py`` from the repository root; the files it
writes are committed, so that the tests read fixed bytes and a change here shows
up as a change of bytes. Every text is encoded here with Python's own codecs (or,
for what Python cannot encode, by the rules Windows follows), never with the
decoder under test.

- ``*.eml``: whole messages, posted by the tests in both SendGrid modes (parsed
  through ``scripts/send_mail.py``, and raw).
- ``*.form``: parsed-mode bodies as SendGrid itself writes them: ``subject``,
  ``from`` and ``to`` already decoded to UTF-8, ``text`` and ``html`` in the
  mail's own charset, each named in ``charsets``.
"""

from __future__ import annotations

import base64
import binascii
import json
import quopri
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRLF = b"\r\n"

# ---------------------------------------------------------------------------------------------
# Encoders


def cp50220(text: str) -> bytes:
    """ISO-2022-JP as Windows writes it (CP50220): JIS X 0208 plus the NEC rows, via CP932.

    Python's iso2022_jp cannot encode ①, ㈱ or Ⅰ (NEC row 13), which Windows users type
    every day; this maps each CP932 double-byte code back to its JIS row and cell.
    """
    out = bytearray()
    double = False
    for char in text:
        if ord(char) < 0x80:
            if double:
                out += b"\x1b(B"
                double = False
            out += char.encode("ascii")
            continue
        sjis = char.encode("cp932")
        if len(sjis) != 2:
            raise ValueError(f"{char!r} is not a double-byte character")
        lead, trail = sjis
        lead -= 0x40 if lead >= 0xE0 else 0
        row = (lead - 0x81) * 2 + 0x21
        if trail >= 0x9F:
            row, cell = row + 1, trail - 0x7E
        else:
            cell = trail - 0x1F - (1 if trail >= 0x80 else 0)
        if not (0x21 <= row <= 0x7E and 0x21 <= cell <= 0x7E):
            raise ValueError(f"{char!r} has no JIS code")
        if not double:
            out += b"\x1b$B"
            double = True
        out += bytes((row, cell))
    if double:
        out += b"\x1b(B"
    return bytes(out)


def eucjp_ms(text: str) -> bytes:
    """EUC-JP with the NEC rows (eucJP-ms / CP51932): the JIS codes of cp50220 with bit 7 set."""
    out = bytearray()
    for char in text:
        if ord(char) < 0x80:
            out += char.encode("ascii")
            continue
        jis = cp50220(char)[3:-3]
        out += bytes(b | 0x80 for b in jis)
    return bytes(out)


def b_word(data: bytes, label: str) -> bytes:
    return b"=?" + label.encode() + b"?B?" + base64.b64encode(data) + b"?="


def q_word(data: bytes, label: str) -> bytes:
    return b"=?" + label.encode() + b"?Q?" + binascii.b2a_qp(data, header=True).replace(b"?", b"=3F") + b"?="


def b64_body(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def qp_body(data: bytes) -> bytes:
    return quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def headers(*lines: bytes) -> bytes:
    return CRLF.join(lines) + CRLF + CRLF


def part(head: list[bytes], body: bytes) -> bytes:
    return headers(*head) + body


def multipart(boundary: bytes, parts: list[bytes], epilogue: bytes = b"") -> bytes:
    out = b""
    for item in parts:
        out += b"--" + boundary + CRLF + item + CRLF
    return out + b"--" + boundary + b"--" + CRLF + epilogue


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00fake-xlsx\x00\xff"

# ---------------------------------------------------------------------------------------------
# The mails

MAILS: dict[str, bytes] = {}

# Japanese, ISO-2022-JP as Outlook on Windows writes it: NEC characters in the subject, the
# body and an RFC 2047 file name.
JA_TEXT = (
    "お世話になっております。\r\n㈱サンプルの大栗です。\r\n①見積書　②請求書　Ⅲ納品書\r\n"
    "金額：１０，０００円～２０，０００円\r\n№１２３\r\n"
)
MAILS["ja_iso2022jp.eml"] = headers(
    b"From: " + b_word(cp50220("大栗 宗"), "ISO-2022-JP") + b" <sender@example.jp>",
    b"To: " + b_word(cp50220("株式会社テスト"), "ISO-2022-JP") + b" <info@example.com>",
    b"Subject: " + b_word(cp50220("【重要】①㈱のお見積り"), "ISO-2022-JP")
    + CRLF + b" " + b_word(cp50220("～ご確認ください"), "ISO-2022-JP"),
    b"Date: Wed, 25 Sep 2013 18:16:53 +0900 (JST)",
    b"Message-ID: <20130925181653.0001@example.jp>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0001"',
) + multipart(
    b"----=_NextPart_000_0001",
    [
        part(
            [b'Content-Type: text/plain; charset="ISO-2022-JP"', b"Content-Transfer-Encoding: 7bit"],
            cp50220(JA_TEXT),
        ),
        part(
            [
                b'Content-Type: application/pdf; name="' + b_word(cp50220("見積書①.pdf"), "ISO-2022-JP") + b'"',
                b"Content-Transfer-Encoding: base64",
                b'Content-Disposition: attachment; filename="' + b_word(cp50220("見積書①.pdf"), "ISO-2022-JP") + b'"',
            ],
            b64_body(PDF),
        ),
    ],
)

# Japanese from an old mailer: raw ISO-2022-JP in the headers, no RFC 2047, ESC ( J.
MAILS["ja_iso2022jp_raw_headers.eml"] = headers(
    b"From: " + cp50220("鈴木 一郎") + b" <suzuki@example.jp>",
    b"To: info@example.com",
    b"Subject: " + cp50220("会議室①の予約～明日").replace(b"\x1b(B", b"\x1b(J"),
    b"Date: Mon, 1 Apr 2002 09:00:00 +0900",
    b"Message-ID: <old.mailer.1@example.jp>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=iso-2022-jp",
) + cp50220("明日の会議室①を予約しました。\r\n時間は１０時～１２時です。\r\n").replace(b"\x1b(B", b"\x1b(J")

# Japanese in Shift_JIS as Windows writes it: IBM (FBFC) and NEC-selected IBM (ED95)
# extensions, a display name and a file name in raw 8-bit Shift_JIS, whose trail bytes
# include 0x5C (a backslash) inside a quoted string.
SJIS_TEXT = "髙橋様\r\n①ご請求書（㈱サンプル）～ご確認ください。\r\n﨑\r\n".encode("cp932").replace(
    "髙".encode("cp932"), b"\xfb\xfc"
)
SJIS_HTML = "<html><body><p>髙橋様</p><p>①ご請求書（㈱サンプル）～</p><p>﨑</p></body></html>".encode(
    "cp932"
).replace("髙".encode("cp932"), b"\xfb\xfc")
MAILS["ja_shiftjis.eml"] = headers(
    b"From: " + "大栗 宗".encode("cp932") + b" <sender@example.jp>",
    b"To: info@example.com",
    b"Subject: " + b_word("①髙橋様 お見積り～".encode("cp932").replace("髙".encode("cp932"), b"\xfb\xfc"), "Shift_JIS"),
    b"Date: Thu, 26 Sep 2013 10:00:00 +0900",
    b"Message-ID: <sjis.1@example.jp>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="mixed-sjis"',
) + multipart(
    b"mixed-sjis",
    [
        part(
            [b'Content-Type: multipart/alternative; boundary="alt-sjis"'],
            multipart(
                b"alt-sjis",
                [
                    part(
                        [b"Content-Type: text/plain; charset=Shift_JIS", b"Content-Transfer-Encoding: 8bit"],
                        SJIS_TEXT,
                    ),
                    part(
                        [b"Content-Type: text/html; charset=shift_jis", b"Content-Transfer-Encoding: quoted-printable"],
                        qp_body(SJIS_HTML),
                    ),
                ],
            ),
        ),
        part(
            [
                b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                b'Content-Disposition: attachment; filename="' + "ソフト表①.xlsx".encode("cp932") + b'"',
                b"Content-Transfer-Encoding: base64",
            ],
            b64_body(XLSX),
        ),
    ],
)

# EUC-JP with the NEC rows.
MAILS["ja_eucjp.eml"] = headers(
    b"From: sender@example.jp",
    b"To: info@example.com",
    b"Subject: " + b_word(eucjp_ms("①テスト㈱"), "EUC-JP"),
    b"Message-ID: <eucjp.1@example.jp>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=EUC-JP",
    b"Content-Transfer-Encoding: 8bit",
) + eucjp_ms("①テスト㈱～Ⅱ\r\n")

# An HTML part without a MIME charset that declares Shift_JIS in a <meta> tag.
MAILS["html_meta_sjis.eml"] = headers(
    b"From: sender@example.jp",
    b"To: info@example.com",
    b"Subject: meta charset",
    b"Message-ID: <meta.1@example.jp>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/html",
    b"Content-Transfer-Encoding: 8bit",
) + (
    b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head>'
    + "<body>①見積書～</body></html>".encode("cp932")
)

# Korean as Outlook labels it (ks_c_5601-1987), with a Unified Hangul Code syllable (똠)
# that plain EUC-KR lacks.
KO_TEXT = "안녕하세요.\r\n똠방각하 회의 자료를 보내드립니다.\r\n감사합니다.\r\n"
MAILS["ko_euckr.eml"] = headers(
    b"From: " + b_word("홍길동".encode("cp949"), "ks_c_5601-1987") + b" <hong@example.kr>",
    b"To: info@example.com",
    b"Subject: " + b_word("회의 자료 (똠방각하)".encode("cp949"), "ks_c_5601-1987"),
    b"Date: Fri, 27 Sep 2013 11:00:00 +0900",
    b"Message-ID: <ko.1@example.kr>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/alternative; boundary="ko"',
) + multipart(
    b"ko",
    [
        part(
            [b'Content-Type: text/plain; charset="ks_c_5601-1987"', b"Content-Transfer-Encoding: base64"],
            b64_body(KO_TEXT.encode("cp949")),
        ),
        part(
            [b"Content-Type: text/html; charset=EUC-KR", b"Content-Transfer-Encoding: quoted-printable"],
            qp_body("<p>똠방각하 회의</p>".encode("cp949")),
        ),
    ],
)

# Simplified Chinese labelled gb2312 with a GBK-only character (镕), an html part in GBK
# and an RFC 2231 file name in gb2312.
ZH_TEXT = "您好：\r\n附件是朱镕基先生的报价单，请查收。\r\n谢谢！\r\n"
MAILS["zh_gb2312.eml"] = headers(
    b"From: " + b_word("王小明".encode("gbk"), "GBK") + b" <wang@example.cn>",
    b"To: info@example.com",
    b"Subject: " + b_word("朱镕基 报价单".encode("gbk"), "gb2312"),
    b"Date: Sat, 28 Sep 2013 12:00:00 +0800",
    b"Message-ID: <zh.1@example.cn>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="zh"',
) + multipart(
    b"zh",
    [
        part(
            [b"Content-Type: text/plain; charset=gb2312", b"Content-Transfer-Encoding: base64"],
            b64_body(ZH_TEXT.encode("gbk")),
        ),
        part(
            [b'Content-Type: text/html; charset="GBK"', b"Content-Transfer-Encoding: 8bit"],
            "<div>朱镕基先生，您好！</div>".encode("gbk"),
        ),
        part(
            [
                b"Content-Type: application/vnd.ms-excel",
                b"Content-Disposition: attachment; filename*=gb2312''%B1%A8%BC%DB%B5%A5.xls",
                b"Content-Transfer-Encoding: base64",
            ],
            b64_body(b"\xd0\xcf\x11\xe0fake-xls"),
        ),
    ],
)

# Traditional Chinese in Big5.
MAILS["zh_big5.eml"] = headers(
    b"From: " + b_word("陳大文".encode("big5"), "big5") + b" <chan@example.tw>",
    b"To: info@example.com",
    b"Subject: " + b_word("繁體中文測試".encode("big5"), "Big5"),
    b"Message-ID: <big5.1@example.tw>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=big5",
    b"Content-Transfer-Encoding: 8bit",
) + "您好，請查收附件。\r\n".encode("big5")

# Russian in KOI8-R, quoted-printable.
RU_KOI8 = "Здравствуйте!\r\nСъешь же ещё этих мягких французских булок, да выпей чаю.\r\n"
MAILS["ru_koi8r.eml"] = headers(
    b"From: " + b_word("Иван Петров".encode("koi8-r"), "koi8-r") + b" <ivan@example.ru>",
    b"To: info@example.com",
    b"Subject: " + q_word("Счёт на оплату".encode("koi8-r"), "KOI8-R"),
    b"Date: Sun, 29 Sep 2013 13:00:00 +0400 (MSK)",
    b"Message-ID: <koi8.1@example.ru>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=koi8-r",
    b"Content-Transfer-Encoding: quoted-printable",
) + qp_body(RU_KOI8.encode("koi8-r"))

# Russian in windows-1251: an HTML-only mail.
RU_HTML = "<html><body><p>Здравствуйте!</p><p>Счёт № 15 — оплачен «вовремя».</p></body></html>"
MAILS["ru_cp1251.eml"] = headers(
    b"From: buh@example.ru",
    b"To: " + q_word("Бухгалтерия".encode("cp1251"), "windows-1251") + b" <info@example.com>",
    b"Subject: " + b_word("Счёт №15".encode("cp1251"), "windows-1251"),
    b"Message-ID: <cp1251.1@example.ru>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/html; charset=windows-1251",
    b"Content-Transfer-Encoding: base64",
) + b64_body(RU_HTML.encode("cp1251"))

# Western European labelled iso-8859-1 but written in windows-1252 (€, curly quotes, em
# dash), as Outlook does; an RFC 2231 file name in iso-8859-1.
WEST_TEXT = "Réunion à 10 h — coût : 50 €, « d’accord » et “merci”.\r\n"
MAILS["western_cp1252.eml"] = headers(
    b"From: " + q_word("François Müller".encode("cp1252"), "windows-1252") + b" <fm@example.fr>",
    b"To: info@example.com",
    b"Subject: " + q_word("Réunion €".encode("cp1252"), "iso-8859-1"),
    b"Date: Mon, 30 Sep 2013 14:00:00 +0200",
    b"Message-ID: <cp1252.1@example.fr>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="west"',
) + multipart(
    b"west",
    [
        part(
            [b"Content-Type: text/plain; charset=iso-8859-1", b"Content-Transfer-Encoding: quoted-printable"],
            qp_body(WEST_TEXT.encode("cp1252")),
        ),
        part(
            [
                b"Content-Type: application/pdf",
                b"Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf",
                b"Content-Transfer-Encoding: base64",
            ],
            b64_body(PDF),
        ),
    ],
)

# Proper ISO-8859-1, 8bit.
LATIN1_TEXT = "Ñandú, señor: ¿qué tal?\r\nGrüße aus Köln, ½ Preis, 5 °C.\r\n"
MAILS["western_latin1.eml"] = headers(
    b"From: " + q_word("José Núñez".encode("latin-1"), "ISO-8859-1") + b" <jose@example.es>",
    b"To: info@example.com",
    b"Subject: " + q_word("Grüße aus Köln".encode("latin-1"), "ISO-8859-1"),
    b"Message-ID: <latin1.1@example.de>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=ISO-8859-1",
    b"Content-Transfer-Encoding: 8bit",
) + LATIN1_TEXT.encode("latin-1")

# A DOS mailer in code page 850.
CP850_TEXT = "Ärger über Öl: ½ Preis, 10 £, 3 m².\r\n"
MAILS["western_cp850.eml"] = headers(
    b"From: dos@example.ch",
    b"To: info@example.com",
    b"Subject: " + q_word("Ärger".encode("cp850"), "IBM850"),
    b"Message-ID: <cp850.1@example.ch>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=cp850",
    b"Content-Transfer-Encoding: 8bit",
) + CP850_TEXT.encode("cp850")

# UTF-8 with RFC 2047 at its hardest: a character split across two B words, a Q word in
# another charset, display names that decode to commas and "@", groups, a folded Message-ID.
SUBJECT = "日本語の件名 — ✓ 😀".encode()
MAILS["utf8_rfc2047.eml"] = headers(
    b"From: =?UTF-8?Q?M=C3=BCller=2C_Hans?= <hans@example.de>",
    b'To: "Doe, Jane" <jane@example.com>, ' + b_word("山田".encode(), "UTF-8") + b" <yamada@example.jp>,",
    b" plain@example.org",
    b"Cc: team: a@example.com, =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>;, undisclosed-recipients:;",
    b"Reply-To: =?UTF-8?Q?Support=2C_Team_=40_Example?= <reply@example.com>",
    b"Subject: " + b_word(SUBJECT[:8], "UTF-8") + CRLF + b" " + b_word(SUBJECT[8:], "utf-8")
    + b" =?ISO-8859-1?Q?_caf=E9?= plain tail",
    b"Date: Tue, 3 Feb 2026 09:15:00 +0100",
    b"Message-ID:",
    b" <CAF+abc.123@mail.example.com>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/alternative; boundary="utf8"',
) + multipart(
    b"utf8",
    [
        part(
            [b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: quoted-printable"],
            qp_body(("Grüße 😀 — ünïcödé " + "x" * 80 + "\r\n").encode()),
        ),
        part(
            [b'Content-Type: text/html; charset="UTF-8"', b"Content-Transfer-Encoding: base64"],
            b64_body("<p>Grüße 😀</p>".encode()),
        ),
    ],
)

# Every kind of part a body and its attachments come in.
NESTED = CRLF.join(
    [
        b"From: Original Sender <orig@example.org>",
        b"To: someone@example.com",
        b"Subject: the forwarded message, with a header long enough that a re-serialization would fold it again",
        b"X-Folded: first line",
        b"\tsecond line",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
        b"",
        "Forwarded body — ünïcödé.".encode(),
        b"From the start of a line.",
        b"",
    ]
)
UU = b"begin 644 hello.txt\r\n" + binascii.b2a_uu(b"hello, uuencode\n").replace(b"\n", CRLF) + b"`\r\nend\r\n"
BROKEN = base64.b64encode(b"\x00\x01binary\xff\xfe data!").rstrip(b"=")  # padding lost
BINARY = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"")
MAILS["mixed_attachments.eml"] = headers(
    b"From: sender@example.com",
    b"To: info@example.com",
    b"Subject: attachments of every kind",
    b"Message-ID: <mixed.1@example.com>",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="mixed"',
) + multipart(
    b"mixed",
    [
        part(
            [b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit"],
            "First part ✓.".encode(),
        ),
        part(
            [
                b"Content-Type: image/png",
                b"Content-ID: <logo@example.com>",
                b'Content-Disposition: inline; filename="logo.png"',
                b"Content-Transfer-Encoding: base64",
            ],
            b64_body(PNG),
        ),
        part(
            [b"Content-Type: text/plain; charset=iso-8859-1", b"Content-Transfer-Encoding: quoted-printable"],
            b"Second part, caf=E9.",
        ),
        part(
            [
                b"Content-Type: text/plain; charset=windows-1251",
                b'Content-Disposition: attachment; filename="notes.txt"',
                b"Content-Transfer-Encoding: 8bit",
            ],
            "Заметки".encode("cp1251"),
        ),
        part(
            [
                b"Content-Type: application/pdf",
                b"Content-Disposition: attachment;",
                b" filename*0*=UTF-8''%E8%AB%8B%E6%B1%82;",
                b" filename*1*=%E6%9B%B8%E2%91%A0.pdf",
                b"Content-Transfer-Encoding: base64",
            ],
            b64_body(PDF),
        ),
        part([b"Content-Type: message/rfc822", b"Content-Disposition: attachment"], NESTED),
        part(
            [b"Content-Type: text/calendar; method=REQUEST; charset=UTF-8; name=invite.ics"],
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR",
        ),
        part(
            [b'Content-Type: application/ms-tnef; name="winmail.dat"', b"Content-Transfer-Encoding: base64"],
            b64_body(b"\x78\x9f\x3e\x22tnef"),
        ),
        part(
            [b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: x-uuencode",
             b'Content-Disposition: attachment; filename="hello.txt"'],
            UU,
        ),
        part(
            [b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: base64",
             b'Content-Disposition: attachment; filename=".."'],
            BROKEN + b"\r\n\r\n-- \r\nmailing list footer: https://lists.example.org/",
        ),
        part(
            [b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: Base64 (by a mailer) ",
             b'Content-Disposition: attachment; filename="\\share\\mail\\x.msg"'],
            b64_body(PDF),
        ),
        part(
            [b"Content-Type: application/octet-stream", b"Content-Transfer-Encoding: binary",
             b'Content-Disposition: attachment; filename=""'],
            BINARY,
        ),
        part([b"Content-Type: image/gif", b"Content-Disposition: inline", b"Content-Transfer-Encoding: base64"],
             b64_body(b"GIF89a\x01\x00\x01\x00")),
    ],
    epilogue=b"epilogue text\r\n",
)

# ---------------------------------------------------------------------------------------------
# Parsed-mode bodies as SendGrid writes them


def form(fields: list[tuple[str, bytes]], files: list[tuple[str, str, str, bytes]] | None = None) -> bytes:
    out = b""
    for name, value in fields:
        out += b"--xYzZY\r\nContent-Disposition: form-data; name=\"" + name.encode() + b'"\r\n\r\n' + value + CRLF
    for name, filename, content_type, data in files or []:
        out += (
            b'--xYzZY\r\nContent-Disposition: form-data; name="' + name.encode() + b'"; filename="'
            + filename.encode() + b'"\r\nContent-Type: ' + content_type.encode() + b"\r\n\r\n" + data + CRLF
        )
    return out + b"--xYzZY--\r\n"


def header_block(eml: bytes) -> bytes:
    return eml.split(CRLF + CRLF, 1)[0]


JA = MAILS["ja_iso2022jp.eml"]
FORMS: dict[str, bytes] = {}
FORMS["parsed_ja_iso2022jp.form"] = form(
    [
        ("headers", header_block(JA)),
        ("dkim", b"{@example.jp : pass}"),
        ("to", "株式会社テスト <info@example.com>".encode()),
        ("from", "大栗 宗 <sender@example.jp>".encode()),
        ("subject", "【重要】①㈱のお見積り～ご確認ください".encode()),
        ("text", cp50220(JA_TEXT)),
        ("sender_ip", b"192.0.2.1"),
        ("envelope", b'{"to":["info@example.com"],"from":"sender@example.jp"}'),
        ("attachments", b"1"),
        ("attachment-info", json.dumps({"attachment1": {
            "filename": "=?ISO-2022-JP?B?" + base64.b64encode(cp50220("見積書①.pdf")).decode() + "?=",
            "name": "=?ISO-2022-JP?B?" + base64.b64encode(cp50220("見積書①.pdf")).decode() + "?=",
            "type": "application/pdf"}}).encode()),
        ("charsets", b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"iso-2022-jp"}'),
        ("SPF", b"pass"),
    ],
    [("attachment1", "=?ISO-2022-JP?B?" + base64.b64encode(cp50220("見積書①.pdf")).decode() + "?=",
      "application/pdf", PDF)],
)

WEST = MAILS["western_cp1252.eml"]
FORMS["parsed_western.form"] = form(
    [
        ("headers", header_block(WEST)),
        ("dkim", b"{@example.fr : pass, @mailer.example.net : fail}"),
        ("to", b"info@example.com"),
        ("from", "François Müller <fm@example.fr>".encode()),
        ("subject", "Réunion €".encode()),
        ("text", WEST_TEXT.encode("cp1252")),
        ("html", "<p>Réunion — 50 €</p>".encode("cp1252")),
        ("sender_ip", b"2001:db8::1"),
        ("spam_score", b"1.25"),
        ("spam_report", b"Spam detection software, running on the system \"mx.example\", has NOT identified..."),
        ("envelope", b'{"to":["info@example.com","second@example.com"],"from":"fm@example.fr"}'),
        ("attachments", b"3"),
        ("attachment-info", json.dumps({
            "attachment1": {"filename": "résumé.pdf", "name": "résumé.pdf", "type": "application/pdf"},
            "attachment3": {"filename": "logo.png", "type": "image/png", "content-id": "logo@example.fr"},
            "attachment4": {"filename": "..", "type": "text/plain\r\nX-Injected: yes"},
        }, ensure_ascii=False).encode()),
        ("content-ids", b'{"logo@example.fr":"attachment3"}'),
        ("charsets", b'{"to":"UTF-8","html":"windows-1252","subject":"UTF-8","from":"UTF-8","text":"iso-8859-1"}'),
        ("SPF", b"softfail"),
    ],
    [
        ("attachment3", "logo.png", "image/png", PNG),
        ("attachment1", "résumé.pdf", "application/pdf", PDF),
        ("attachment4", "..", "text/plain", b"dots"),
    ],
)

# Subject and from still RFC 2047-encoded in their fields, text in KOI8-R, junk beside.
FORMS["parsed_encoded_fields.form"] = form(
    [
        ("headers", b"From: =?koi8-r?B?" + base64.b64encode("Иван".encode("koi8-r")) + b"?= <ivan@example.ru>\r\n"
         b"To: info@example.com\r\nSubject: =?KOI8-R?Q?=F3=DE=A3=D4?=\r\nMessage-ID: <enc.1@example.ru>"),
        ("from", b"=?koi8-r?B?" + base64.b64encode("Иван".encode("koi8-r")) + b"?= <ivan@example.ru>"),
        ("subject", b"=?KOI8-R?Q?=F3=DE=A3=D4?="),
        ("text", RU_KOI8.encode("koi8-r")),
        ("charsets", b'{"subject":"UTF-8","from":"UTF-8","text":"KOI8-R"}'),
        ("dkim", b"not a dkim field"),
        ("SPF", b"\xff\xfe"),
        ("spam_score", b"nan"),
        ("sender_ip", b"999.1.1.1"),
        ("envelope", b"[1, 2, 3]"),
    ],
)


def main() -> None:
    for name, data in {**MAILS, **FORMS}.items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
