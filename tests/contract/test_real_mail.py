"""Real mail from other projects' public test corpora (tests/corpus/wild/, sources in tests/corpus/README.md).

Every message of the corpus is posted as SendGrid posts it in both modes
(parsed mode built by the poster from the message, and "Send Raw"), and read
as SES hands it over; the header fields must come out the same every way. Each
defect of issue 16 is then shown fixed on the real message that showed it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.ingress import form
from chalicelib.ingress.sendgrid import payload
from chalicelib.ingress.sendgrid.poster import build_body
from chalicelib.mime import message
from chalicelib.mime.scrub import scrubbed
from chalicelib.model import InboundMail
from tests.conftest import CORPUS, mail_path, read_headers

WILD = CORPUS / "wild"
EVERY_MESSAGE = sorted(path.relative_to(CORPUS).as_posix() for path in CORPUS.rglob("*.eml"))
HEADER_FIELDS = ("subject", "sender", "to", "cc", "reply_to", "date", "message_id")


def decode(source: bytes, raw: bool) -> InboundMail:
    return scrubbed(payload.parse(form.parse(*build_body(source, raw=raw))))


def fields(mail: InboundMail) -> dict[str, Any]:
    return {name: getattr(mail, name) for name in HEADER_FIELDS}


def both_modes(name: str) -> tuple[InboundMail, InboundMail]:
    source = (WILD / name).read_bytes()
    return decode(source, raw=True), decode(source, raw=False)


def test_the_corpus_holds_real_mail_each_named_with_its_source_and_licence() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `wild/([^`]+)` \| [^|]+ \| `[^`]+` \| (?:MIT|Apache-2\.0) \|$", readme, re.MULTILINE))
    on_disk = {path.relative_to(WILD).as_posix() for path in WILD.rglob("*.eml")}
    assert listed == on_disk
    assert len(on_disk) == 162


@pytest.mark.parametrize("name", EVERY_MESSAGE)
def test_raw_parsed_and_ses_agree_on_the_header_fields(name: str) -> None:
    source = (CORPUS / name).read_bytes()
    raw = fields(decode(source, raw=True))
    assert fields(decode(source, raw=False)) == raw
    assert fields(scrubbed(message.decode(source, mode="ses"))) == raw


# ---------------------------------------------------------------------------------------------
# Addresses


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_bare_addresses_that_lost_their_comma_are_each_an_address(raw: bool) -> None:
    mail = both_modes("mikel-mail/plain_emails__raw_email_multiple_from.eml")[0 if raw else 1]
    both = [{"name": "", "address": "tim@powerupdev.com"}, {"name": "", "address": "concierge@powerupdev.com"}]
    assert (mail.sender, mail.to, mail.reply_to) == (both[0], both, both)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_a_display_name_with_an_at_stays_a_name(raw: bool) -> None:
    mail = both_modes("mikel-mail/plain_emails__raw_email_with_at_display_name.eml")[0 if raw else 1]
    assert mail.to == [
        {"name": "", "address": "smith@gmail.com"},
        {"name": "Mikel@Lindsaar", "address": "raasdnil@gmail.com"},
        {"name": "", "address": "tom@gmail.com"},
    ]
    assert mail.sender == {"name": "Mikel Lindsaar", "address": "test@lindsaar.net"}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_groups_and_source_routes_give_only_real_addresses_and_the_header_keeps_them(raw: bool) -> None:
    mail = both_modes("mikel-mail/error_emails__missing_body.eml")[0 if raw else 1]
    assert mail.to == []  # not "Undisclosed-Recipient" nor "@mailman.enron.com"
    assert ("To", "<Undisclosed-Recipient:@mailman.enron.com;>") in mail.headers

    mail = both_modes("mikel-mail/rfc2822__example04.eml")[0 if raw else 1]
    assert mail.cc == []
    assert ("Cc", "Undisclosed recipients:;") in mail.headers
    assert mail.to == [
        {"name": "Chris Jones", "address": "c@a.test"},
        {"name": "", "address": "joe@where.test"},
        {"name": "John", "address": "jdoe@one.test"},
    ]

    mail = both_modes("mikel-mail/rfc2822__example11.eml")[0 if raw else 1]
    assert mail.to == [
        {"name": "Mary Smith", "address": "mary@example.net"}, {"name": "", "address": "jdoe@test.example"}
    ]
    assert ("To", "Mary Smith <@machine.tld:mary@example.net>, , jdoe@test   . example") in mail.headers


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_comments_everywhere_in_addresses(raw: bool) -> None:
    mail = both_modes("mikel-mail/rfc2822__example10.eml")[0 if raw else 1]
    assert mail.sender == {"name": "Pete", "address": "pete@silly.test"}
    assert mail.to == [
        {"name": "Chris Jones", "address": "c@public.example"},
        {"name": "", "address": "joe@example.org"},
        {"name": "John", "address": "jdoe@one.test"},
    ]
    assert mail.cc == []


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_a_name_without_brackets_is_no_part_of_the_address(raw: bool) -> None:
    mail = both_modes("mikel-mail/plain_emails__mix_caps_content_type.eml")[0 if raw else 1]
    assert mail.sender == {"name": "Big Bug", "address": "bb@bug.com"}
    assert mail.message_id == "<201002191008.30117.foo.bar@company.com>"


def test_no_stored_address_in_the_corpus_lacks_a_part_or_holds_a_space() -> None:
    count = 0
    for path in sorted(CORPUS.rglob("*.eml")):
        for mail in (decode(path.read_bytes(), raw=True), decode(path.read_bytes(), raw=False)):
            for entry in [mail.sender or {"name": "", "address": "x@y"}, *mail.to, *mail.cc, *mail.reply_to]:
                local, _, domain = entry["address"].rpartition("@")
                assert local and domain and not re.search(r"\s", entry["address"]), (path.name, entry)
                count += 1
    assert count > 300


# ---------------------------------------------------------------------------------------------
# Header blocks


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_obsolete_header_syntax_is_read(raw: bool) -> None:
    # RFC 2822 appendix A.6.3: blanks before the colons, comments and blanks in the Message-ID.
    mail = both_modes("mikel-mail/rfc2822__example13.eml")[0 if raw else 1]
    assert mail.subject == "Saying Hello"
    assert mail.sender == {"name": "John Doe", "address": "jdoe@machine.example"}
    assert mail.message_id == "<1234@local.machine.example>"
    assert mail.date == "1997-11-21T09:55:06-06:00"  # "Fri, 21 Nov 1997 09(comment):   55  :  06 -0600"
    assert mail.to == []  # "Mary Smith", then a stray "__" line that takes the address with it
    if raw:  # parsed mode's text is SendGrid's own field, not ours to read
        assert mail.text == 'This is a message just to say hello.\r\nSo, "Hello".\r\n'


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_one_stray_line_does_not_hide_the_headers_after_it(raw: bool) -> None:
    mail = both_modes("mikel-mail/plain_emails__raw_email_incorrect_header.eml")[0 if raw else 1]
    assert fields(mail) == {
        "subject": "Stop adware/spyware once and for all.",
        "sender": {"name": "xxx xxx", "address": "xxx@xxx.xxx"},
        "to": [{"name": "", "address": "xxx@xxx.com"}],
        "cc": [],
        "reply_to": [],
        "date": "2005-02-23T18:20:17-04:00",
        "message_id": "<4D6AA7EB.6490534@xxx.xxx>",
    }
    if raw:  # parsed mode's text is SendGrid's own field, not ours to read
        assert mail.text is not None and mail.text.startswith("You are infected with: \r\n")


# ---------------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "parsed"])
def test_utf8_labelled_gb2312_is_read_as_utf8(raw: bool) -> None:
    mail = both_modes("mail-parser/mail_test_12.eml")[0 if raw else 1]
    assert mail.text == (
        "你好！我公司可代开各类增值税发票，17%专用发票，3%普通发票，点数优惠，所开发票均可查询验证后\n"
        "付款，电话：13662615434张经理 （微信同号13662615434）此信息永久有效望存\n"
    )
    assert mail.subject == "代开各地增值税发票"  # a real GB2312 word beside it still reads as GB2312
    assert mail.to == [{"name": "", "address": "danglüe@email.com"}]


# ---------------------------------------------------------------------------------------------
# Through the route


def test_a_message_with_obsolete_headers_is_stored_and_read_back_with_them(client: Client) -> None:
    body, content_type = build_body((WILD / "mikel-mail/rfc2822__example13.eml").read_bytes(), raw=True)
    response = client.http.post(mail_path(), body=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.body
    mail_id = json.loads(response.body)["id"]
    document = json.loads(client.http.get(f"/mails/{mail_id}", headers=read_headers()).body)
    assert (document["subject"], document["from"], document["message_id"]) == (
        "Saying Hello", {"name": "John Doe", "address": "jdoe@machine.example"}, "<1234@local.machine.example>"
    )


def test_every_path_above_is_in_the_corpus() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for name in re.findall(r'"((?:mikel-mail|flanker|mail-parser)/[^"]+\.eml)"', source):
        assert (WILD / name).is_file(), name
