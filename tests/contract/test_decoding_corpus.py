"""The decoding corpus: real mails as real bytes in their real charsets, in both SendGrid modes.

Each file under tests/corpus/ (written by tests/corpus/make_corpus.py, committed) is
posted as SendGrid would post it (parsed mode through scripts/send_mail.py, and
"Send Raw"), and every decoded text is compared with the exact string its sender
wrote. The ``*.form`` files are parsed-mode bodies in SendGrid's own shape
(subject/from/to already UTF-8, text in the mail's charset). A few go through
the whole route and back out of the read API, attachments byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from chalice.test import Client

from chalicelib.ingress import form
from chalicelib.ingress.sendgrid import payload
from chalicelib.mime.scrub import scrubbed
from chalicelib.model import InboundMail
from scripts.send_mail import build_body
from tests.conftest import CORPUS, mail_path, read_headers
from tests.corpus import make_corpus

PDF, PNG, XLSX = make_corpus.PDF, make_corpus.PNG, make_corpus.XLSX
INFO = {"name": "", "address": "info@example.com"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attachment(filename: str | None, content_type: str, data: bytes, disposition: str = "attachment",
               content_id: str | None = None) -> tuple[Any, ...]:
    return (filename, content_type, disposition, content_id, len(data), sha(data))


def attachments_of(mail: InboundMail) -> list[tuple[Any, ...]]:
    return [(a.filename, a.content_type, a.disposition, a.content_id, a.size, a.sha256) for a in mail.attachments]


# What each sender wrote, as text. Keys are InboundMail fields; "attachments" holds
# (filename, content type, disposition, content id, size, sha256).
EXPECTED: dict[str, dict[str, Any]] = {
    "ja_iso2022jp.eml": {
        "subject": "【重要】①㈱のお見積り～ご確認ください",
        "sender": {"name": "大栗 宗", "address": "sender@example.jp"},
        "to": [{"name": "株式会社テスト", "address": "info@example.com"}],
        "date": "2013-09-25T18:16:53+09:00",
        "message_id": "<20130925181653.0001@example.jp>",
        "text": "お世話になっております。\r\n㈱サンプルの大栗です。\r\n①見積書　②請求書　Ⅲ納品書\r\n"
                "金額：１０，０００円～２０，０００円\r\n№１２３\r\n",
        "html": None,
        "attachments": [attachment("見積書①.pdf", "application/pdf", PDF)],
    },
    "ja_iso2022jp_raw_headers.eml": {
        "subject": "会議室①の予約～明日",
        "sender": {"name": "鈴木 一郎", "address": "suzuki@example.jp"},
        "to": [INFO],
        "date": "2002-04-01T09:00:00+09:00",
        "text": "明日の会議室①を予約しました。\r\n時間は１０時～１２時です。\r\n",
        "attachments": [],
    },
    "ja_shiftjis.eml": {
        "subject": "①髙橋様 お見積り～",
        "sender": {"name": "大栗 宗", "address": "sender@example.jp"},
        "text": "髙橋様\r\n①ご請求書（㈱サンプル）～ご確認ください。\r\n﨑\r\n",
        "html": "<html><body><p>髙橋様</p><p>①ご請求書（㈱サンプル）～</p><p>﨑</p></body></html>",
        "attachments": [
            attachment("ソフト表①.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", XLSX)
        ],
    },
    "ja_eucjp.eml": {"subject": "①テスト㈱", "text": "①テスト㈱～Ⅱ\r\n"},
    "html_meta_sjis.eml": {
        "text": None,
        "html": '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head>'
                "<body>①見積書～</body></html>",
    },
    "ko_euckr.eml": {
        "subject": "회의 자료 (똠방각하)",
        "sender": {"name": "홍길동", "address": "hong@example.kr"},
        "text": "안녕하세요.\r\n똠방각하 회의 자료를 보내드립니다.\r\n감사합니다.\r\n",
        "html": "<p>똠방각하 회의</p>",
    },
    "zh_gb2312.eml": {
        "subject": "朱镕基 报价单",
        "sender": {"name": "王小明", "address": "wang@example.cn"},
        "date": "2013-09-28T12:00:00+08:00",
        "text": "您好：\r\n附件是朱镕基先生的报价单，请查收。\r\n谢谢！\r\n",
        "html": "<div>朱镕基先生，您好！</div>",
        "attachments": [attachment("报价单.xls", "application/vnd.ms-excel", b"\xd0\xcf\x11\xe0fake-xls")],
    },
    "zh_big5.eml": {
        "subject": "繁體中文測試",
        "sender": {"name": "陳大文", "address": "chan@example.tw"},
        "text": "您好，請查收附件。\r\n",
    },
    "ru_koi8r.eml": {
        "subject": "Счёт на оплату",
        "sender": {"name": "Иван Петров", "address": "ivan@example.ru"},
        "date": "2013-09-29T13:00:00+04:00",
        "text": "Здравствуйте!\r\nСъешь же ещё этих мягких французских булок, да выпей чаю.\r\n",
    },
    "ru_cp1251.eml": {
        "subject": "Счёт №15",
        "to": [{"name": "Бухгалтерия", "address": "info@example.com"}],
        "text": None,
        "html": "<html><body><p>Здравствуйте!</p><p>Счёт № 15 — оплачен «вовремя».</p></body></html>",
    },
    "western_cp1252.eml": {
        "subject": "Réunion €",
        "sender": {"name": "François Müller", "address": "fm@example.fr"},
        "text": "Réunion à 10 h — coût : 50 €, « d’accord » et “merci”.\r\n",
        "attachments": [attachment("résumé.pdf", "application/pdf", PDF)],
    },
    "western_latin1.eml": {
        "subject": "Grüße aus Köln",
        "sender": {"name": "José Núñez", "address": "jose@example.es"},
        "text": "Ñandú, señor: ¿qué tal?\r\nGrüße aus Köln, ½ Preis, 5 °C.\r\n",
    },
    "western_cp850.eml": {"subject": "Ärger", "text": "Ärger über Öl: ½ Preis, 10 £, 3 m².\r\n"},
    "utf8_rfc2047.eml": {
        "subject": "日本語の件名 — ✓ 😀 café plain tail",
        "sender": {"name": "Müller, Hans", "address": "hans@example.de"},
        "to": [
            {"name": "Doe, Jane", "address": "jane@example.com"},
            {"name": "山田", "address": "yamada@example.jp"},
            {"name": "", "address": "plain@example.org"},
        ],
        "cc": [{"name": "", "address": "a@example.com"}, {"name": "André", "address": "andre@example.fr"}],
        "reply_to": [{"name": "Support, Team @ Example", "address": "reply@example.com"}],
        "date": "2026-02-03T09:15:00+01:00",
        "message_id": "<CAF+abc.123@mail.example.com>",
        "text": "Grüße 😀 — ünïcödé " + "x" * 80 + "\r\n",
        "html": "<p>Grüße 😀</p>",
    },
    "mixed_attachments.eml": {
        "text": "First part ✓.\nSecond part, café.",
        "html": None,
    },
}

# Attachments of every kind, as "Send Raw" delivers them: decoded from their own transfer
# encodings (a broken base64 body, a comment after "Base64", uuencode), the forwarded message
# as the very bytes it had in the mail.
MIXED_RAW = [
    attachment("logo.png", "image/png", PNG, "inline", "logo@example.com"),
    attachment("notes.txt", "text/plain", "Заметки".encode("cp1251")),
    attachment("請求書①.pdf", "application/pdf", PDF),
    attachment(None, "message/rfc822", make_corpus.NESTED),
    attachment("invite.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR"),
    attachment("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22tnef"),
    attachment("hello.txt", "application/octet-stream", b"hello, uuencode\n"),
    attachment("..", "application/octet-stream", b"\x00\x01binary\xff\xfe data!"),
    attachment("\\share\\mail\\x.msg", "application/octet-stream", PDF),
    attachment(None, "application/octet-stream", make_corpus.BINARY),
    attachment(None, "image/gif", b"GIF89a\x01\x00\x01\x00", "inline"),
]


def decode(body: bytes, content_type: str) -> InboundMail:
    return scrubbed(payload.parse(form.parse(body, content_type)))


def test_the_committed_corpus_is_what_the_generator_writes() -> None:
    written = {**make_corpus.MAILS, **make_corpus.FORMS}
    on_disk = {p.name: p.read_bytes() for p in CORPUS.iterdir() if p.suffix in (".eml", ".form")}
    assert on_disk == written
    assert set(EXPECTED) == set(make_corpus.MAILS)


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_mail_is_decoded_as_its_sender_wrote_it(name: str, raw: bool) -> None:
    mail = decode(*build_body((CORPUS / name).read_bytes(), raw=raw))
    expected = EXPECTED[name]
    found = {key: getattr(mail, key) for key in expected if key != "attachments"}
    assert found == {key: value for key, value in expected.items() if key != "attachments"}
    if "attachments" in expected:
        assert attachments_of(mail) == expected["attachments"]
    assert mail.mode == ("raw" if raw else "parsed")
    json.dumps(mail.to_dict(), ensure_ascii=False).encode("utf-8")


def test_attachments_of_every_kind_in_raw_mode() -> None:
    mail = decode(*build_body((CORPUS / "mixed_attachments.eml").read_bytes(), raw=True))
    assert attachments_of(mail) == MIXED_RAW
    assert [a.index for a in mail.attachments] == list(range(1, len(MIXED_RAW) + 1))
    nested = next(a for a in mail.attachments if a.content_type == "message/rfc822")
    assert bytes(nested.data) == make_corpus.NESTED


def test_attachments_of_every_kind_in_parsed_mode() -> None:
    # What send_mail.py posts as SendGrid would: the same files, named in attachment-info.
    mail = decode(*build_body((CORPUS / "mixed_attachments.eml").read_bytes()))
    found = attachments_of(mail)
    for expected in (MIXED_RAW[0], MIXED_RAW[1], MIXED_RAW[2], MIXED_RAW[4], MIXED_RAW[5], MIXED_RAW[6]):
        assert expected in found
    assert [a.filename for a in mail.attachments][7:9] == ["..", "\\share\\mail\\x.msg"]


def test_sendgrids_own_parsed_shape_iso_2022_jp() -> None:
    mail = decode((CORPUS / "parsed_ja_iso2022jp.form").read_bytes(), "multipart/form-data; boundary=xYzZY")
    expected = EXPECTED["ja_iso2022jp.eml"]
    assert (mail.subject, mail.sender, mail.to, mail.text, mail.date) == (
        expected["subject"], expected["sender"], expected["to"], expected["text"], expected["date"]
    )
    assert attachments_of(mail) == expected["attachments"]  # the RFC 2047 name in attachment-info, decoded
    assert (mail.spf, mail.dkim, mail.sender_ip) == ("pass", [{"domain": "example.jp", "result": "pass"}], "192.0.2.1")


def test_sendgrids_own_parsed_shape_western_with_numbered_attachments() -> None:
    mail = decode((CORPUS / "parsed_western.form").read_bytes(), "multipart/form-data; boundary=xYzZY")
    assert mail.subject == "Réunion €"
    assert mail.sender == {"name": "François Müller", "address": "fm@example.fr"}
    assert mail.text == "Réunion à 10 h — coût : 50 €, « d’accord » et “merci”.\r\n"
    assert mail.html == "<p>Réunion — 50 €</p>"
    assert attachments_of(mail) == [
        attachment("résumé.pdf", "application/pdf", PDF),
        attachment("logo.png", "image/png", PNG, "inline", "logo@example.fr"),
        attachment("..", "application/octet-stream", b"dots"),
    ]
    assert mail.envelope is not None
    assert mail.envelope.to_dict() == {"from": "fm@example.fr", "to": ["info@example.com", "second@example.com"]}
    assert (mail.spf, mail.spam_score, mail.sender_ip) == ("softfail", 1.25, "2001:db8::1")
    assert mail.dkim == [{"domain": "example.fr", "result": "pass"}, {"domain": "mailer.example.net", "result": "fail"}]


def test_sendgrids_parsed_shape_with_fields_still_encoded_and_junk_beside() -> None:
    mail = decode((CORPUS / "parsed_encoded_fields.form").read_bytes(), "multipart/form-data; boundary=xYzZY")
    assert (mail.subject, mail.sender) == ("Счёт", {"name": "Иван", "address": "ivan@example.ru"})
    assert mail.text == "Здравствуйте!\r\nСъешь же ещё этих мягких французских булок, да выпей чаю.\r\n"
    assert (mail.dkim, mail.spf, mail.spam_score, mail.sender_ip, mail.envelope) == (None,) * 5


# ---------------------------------------------------------------------------------------------
# Through the route: stored, read back, downloaded


def post_and_read(client: Client, body: bytes, content_type: str) -> dict[str, Any]:
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.body
    mail_id = json.loads(response.body)["id"]
    document: dict[str, Any] = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)
    return document


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
def test_japanese_mail_is_stored_and_read_back_exactly(client: Client, raw: bool) -> None:
    document = post_and_read(client, *build_body((CORPUS / "ja_iso2022jp.eml").read_bytes(), raw=raw))
    expected = EXPECTED["ja_iso2022jp.eml"]
    assert (document["subject"], document["from"], document["text"]) == (
        expected["subject"], expected["sender"], expected["text"]
    )
    download = client.http.get(f"/mails/{document['id']}/attachments/1", headers=read_headers())
    assert download.body == PDF
    assert download.headers["Content-Disposition"] == (
        "attachment; filename=\"____.pdf\"; filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8%E2%91%A0.pdf"
    )


def test_every_attachment_downloads_byte_exact_and_no_name_is_used_as_a_path(client: Client) -> None:
    document = post_and_read(client, *build_body((CORPUS / "mixed_attachments.eml").read_bytes(), raw=True))
    assert [(a["filename"], a["size"], a["sha256"]) for a in document["attachments"]] == [
        (filename, size, digest) for filename, _, _, _, size, digest in MIXED_RAW
    ]
    for entry in document["attachments"]:
        download = client.http.get(f"/mails/{document['id']}/attachments/{entry['index']}", headers=read_headers())
        if download.status_code == 302:  # types API Gateway cannot carry as bytes come from S3 itself
            location = download.headers["Location"]
            # The object's key is the attachment's index, never its name.
            assert urlparse(location).path.endswith(f"/attachments/{entry['index']}")
            fetched = requests.get(location, timeout=30)
            body, disposition = fetched.content, fetched.headers["Content-Disposition"]
        else:
            body, disposition = download.body, download.headers["Content-Disposition"]
        assert sha(body) == entry["sha256"]
        fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert "/" not in fallback and "\\" not in fallback


def test_a_western_parsed_post_is_stored_with_its_fields(client: Client) -> None:
    body = (CORPUS / "parsed_western.form").read_bytes()
    document = post_and_read(client, body, "multipart/form-data; boundary=xYzZY")
    assert document["text"] == "Réunion à 10 h — coût : 50 €, « d’accord » et “merci”.\r\n"
    assert document["spf"] == "softfail"
    assert [a["content_type"] for a in document["attachments"]] == ["application/pdf", "image/png",
                                                                    "application/octet-stream"]
