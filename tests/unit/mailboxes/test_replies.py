"""The replies mailbox: a reply's own text, without the quoted message it answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.delivery.routing import Bounce
from chalicelib.errors import NotConfiguredError
from chalicelib.mailboxes.replies import Replies, Threads, visible_text
from chalicelib.mailboxes.reply_addresses import parse, reply_address, verifies
from chalicelib.model import StoredMail
from tests.support.examples import examples


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Thanks, done.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <s@example.com> wrote:\n> Is it done?\n",
         "Thanks, done."),
        ("Thanks!\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Support Team\r\n<s@example.com> wrote:\r\n> q\r\n", "Thanks!"),
        ("Yes.\n\n-----Original Message-----\nFrom: Support\nSubject: q\n\nq", "Yes."),
        ("Yes.\n\nFrom: Support <s@example.com>\nSent: Monday\n\nq", "Yes."),
        ("了解しました。\n\n2026年11月23日 10:00 サポート <s@example.com>さんは書きました:\n> 質問\n",
         "了解しました。"),
        # Interleaved: the answers stay, the quoted questions go.
        ("Line one\n> inline quote\nLine two\n> trailing quote\n>\n", "Line one\nLine two"),
        ("No quote at all", "No quote at all"),
        # Bottom-posted: the attribution and the quote come first.
        ("On Mon, 23 Nov 2026 at 10:00, Support <s@example.com> wrote:\n> Is it done?\n>\n\nYes, done.\n",
         "Yes, done."),
        ("> Is it done?\n\nYes, done.", "Yes, done."),  # a leading quote block, no attribution
        # One ">" line between lines of text, and nothing else quoted: not a quote.
        ("Visit us\n>>> >>>  http://www.example.com <<<\nVisit our site",
         "Visit us\n>>> >>>  http://www.example.com <<<\nVisit our site"),
        ("Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Montag\n\nFrage", "Danke!"),
        ("Hi\n\n  *From:* bob@example.com [mailto:\n  bob@example.com]\n  *Sent:* Wednesday, June 27, 2012 3:05 PM\n"
         "  *To:* travis@example.com\n  *Subject:* Hello\n\nq", "Hi"),
        ("Ok\n\nср, 30 апр. 2025 г. в 15:19, Иван <ivan@example.com>:\n> вопрос", "Ok"),
        ("好的\n\n在 2025年4月30日 15:19，张三 <z@example.com> 写道：\n> 问题", "好的"),
        ("네\n\n2025년 4월 30일 (수) 오후 3:19, 홍길동 <h@example.com>님이 작성:\n> 질문", "네"),
        ("Ja.\n\nAnn <a@example.com> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:\n\n> Frage", "Ja."),  # sender first
        ("Yes.\n\nOn 1 May 2024, Ann <a@example.com> wrote\n\nQuestion", "Yes."),  # the colon lost
        ("Yes.\n\nOn 1 May 2024, Ann wrote:\n\nAn> Question\nAn> More", "Yes."),  # Supercite's initials
        ("FYI.\n\n> Begin forwarded message:\n>\n> From: Ann\n> Text",
         "FYI.\n\n> Begin forwarded message:\n>\n> From: Ann\n> Text"),  # Apple Mail's forward stays
        ("Ok\n\u200b\n\u200b", "Ok"),  # lines of zero-width spaces are blank
        ("Sure.\nfrom: the start\nto: be clear", "Sure.\nfrom: the start\nto: be clear"),  # sentences, not fields
        ("Sure.From: Ann <a@example.com>Sent: Monday To: Bob Subject: Q\nQuestion", "Sure."),  # a header run together
        ("FYI\n---------- Forwarded message ---------\nFrom: Ann\n\nOn Mon, Bob wrote:\n> Q",
         "FYI\n---------- Forwarded message ---------\nFrom: Ann\n\nOn Mon, Bob wrote:\n> Q"),  # all of a forward
        ("FYI\n\nBegin forwarded message:\n\n> From: Ann\n> Text",
         "FYI\n\nBegin forwarded message:\n\n> From: Ann\n> Text"),
    ],
)
def test_a_reply_loses_its_quoted_text(text: str, reply: str) -> None:
    assert visible_text(text) == reply


@pytest.mark.parametrize(
    ("html", "reply"),
    [
        ('<div dir="ltr">Done.</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Ann wrote:</div>'
         '<blockquote class="gmail_quote">Is it done?</blockquote></div>', "Done."),
        ('<p>Done.</p><div class="moz-cite-prefix">On 1/1/26 Ann wrote:</div><blockquote type="cite">Q</blockquote>',
         "Done."),
        ('<div>Done.</div><hr><div id="divRplyFwdMsg"><b>From:</b> Ann<br><b>Sent:</b> Monday</div><div>Q</div>',
         "Done."),
        ("<div>A1</div><blockquote type=\"cite\">Q1</blockquote><div>A2</div><blockquote type=\"cite\">Q2</blockquote>",
         "A1\nA2"),
        ("<p>One</p><p>Two&nbsp;&amp; three</p><style>p{}</style>", "One\n\nTwo & three"),
        # Gmail wraps a forward in its quote container: a forward is content, not a quote.
        ('<div>FYI</div><div class="gmail_quote">---------- Forwarded message ---------<br>From: Ann<br><br>'
         "Text</div>", "FYI\n---------- Forwarded message ---------\nFrom: Ann\n\nText"),
    ],
)
def test_an_html_reply_loses_its_quote_containers(html: str, reply: str) -> None:
    assert visible_text("", html) == reply


def test_the_text_part_is_read_when_the_html_has_no_quote_container() -> None:
    assert visible_text("Plain.\n\n> q\n> q", "<div>Rich.</div>") == "Plain."


def test_a_signature_goes_only_when_asked() -> None:
    text = "Works now.\n\n-- \nAnn Example\nExample Ltd\n\nSent from my iPhone"
    assert visible_text(text) == text
    assert visible_text(text, strip_signature=True) == "Works now."
    assert visible_text("Works.\n\nVon meinem iPhone gesendet", strip_signature=True) == "Works."


# -- who may join a thread ------------------------------------------------------------

SECRET = "reply-secret"


class FakeThreads(Threads):
    """The thread store, in memory: these tests ask who joins, not how it is kept."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, str, str]] = []

    def append(self, token: str, mail: StoredMail, text: str) -> None:
        self.appended.append((token, mail.id, text))


def reply(to: str, sender: str = "customer@shop.example", **fields: Any) -> StoredMail:
    document = {
        "id": "m1", "received_at": "2026-11-27T21:00:00.000Z", "subject": "Re: ticket", "message_id": None,
        "from": {"name": "", "address": sender}, "to": [{"name": "", "address": to}], "cc": [],
        "envelope": {"from": sender, "to": [to]}, "text": "Thanks, it works.\n\n> earlier", "html": None,
        "headers": [], "attachments": [], "spf": "pass", "dkim": [], "verdicts": None,
    }
    document.update(fields)
    return StoredMail.from_document(document)


def deliver(mail: StoredMail, secret: str | None = SECRET) -> list[tuple[str, str, str]]:
    threads = FakeThreads()
    Replies(threads, secret)(mail)
    return threads.appended


def address(thread: str = "ticket-42", correspondent: str = "customer@shop.example") -> str:
    return reply_address(SECRET, thread, correspondent, "support.example.com")


def test_a_minted_address_is_short_enough_for_smtp_and_names_its_thread() -> None:
    minted = reply_address(SECRET, "Ticket-42", "Customer@Shop.example", "support.example.com")
    local = minted.split("@")[0]
    assert local.startswith("reply+ticket-42.") and len(local) <= 64
    assert minted == address()  # thread and correspondent compared without regard to case


def test_the_correspondent_the_address_was_minted_for_joins_its_thread() -> None:
    assert deliver(reply(address())) == [("ticket-42", "m1", "Thanks, it works.")]


def test_a_bottom_posted_reply_joins_with_its_own_text() -> None:
    text = "On Mon, 23 Nov 2026 at 10:00, Support <s@example.com> wrote:\n> Is it fixed?\n\nIt is, thanks."
    assert deliver(reply(address(), text=text)) == [("ticket-42", "m1", "It is, thanks.")]


def test_an_html_only_reply_joins_with_the_text_outside_its_quote() -> None:
    html = '<div>Fixed.</div><div class="gmail_quote">On Mon, Support wrote:<blockquote>Is it?</blockquote></div>'
    assert deliver(reply(address(), text=None, html=html)) == [("ticket-42", "m1", "Fixed.")]


@pytest.mark.parametrize("text", ["On Mon, 23 Nov 2026, Support <s@e.com> wrote:\n> Is it fixed?\n", "> q\n> q", ""])
def test_a_reply_with_nothing_but_the_quote_bounces(text: str) -> None:
    with pytest.raises(Bounce, match="the reply has no text of its own"):
        deliver(reply(address(), text=text))


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("reply+ticket-42@support.example.com", "the reply address was not issued to this sender"),  # a guessed id
        (address(correspondent="someone-else@shop.example"), "the reply address was not issued to this sender"),
        (address().replace("ticket-42", "ticket-43"), "the reply address was not issued to this sender"),
        ("info@support.example.com", "no reply address among the recipients"),
    ],
)
def test_an_address_not_minted_for_this_sender_and_thread_bounces(to: str, reason: str) -> None:
    with pytest.raises(Bounce, match=reason):
        deliver(reply(to))


@pytest.mark.parametrize(
    "fields",
    [
        {"spf": "fail"},
        {"spf": None},
        {"spf": "pass", "envelope": {"from": "bounce@attacker.example", "to": []}},  # SPF of another domain
        {"spf": "softfail", "dkim": [{"domain": "attacker.example", "result": "pass"}]},  # DKIM of another domain
        {"spf": None, "dkim": [{"domain": "shop.example", "result": "fail"}]},
        {"spf": None, "verdicts": {"spf": "pass", "dkim": "pass", "dmarc": "fail"}},
    ],
)
def test_a_sender_without_an_aligned_spf_or_dkim_pass_bounces(fields: dict[str, Any]) -> None:
    if "envelope" in fields:
        fields["envelope"]["to"] = [address()]
    mail = reply(address(), **fields)
    with pytest.raises(Bounce, match="the sender is not authenticated"):
        deliver(mail)


@pytest.mark.parametrize(
    "fields",
    [
        {"spf": "pass"},
        {"spf": "pass", "envelope": {"from": "bounces@mail.shop.example", "to": []}},  # a subdomain is aligned
        {"spf": None, "dkim": [{"domain": "shop.example", "result": "pass"}]},
        {"spf": "fail", "verdicts": {"spf": "fail", "dkim": "pass", "dmarc": "pass"}},  # SES's DMARC verdict
    ],
)
def test_a_sender_with_an_aligned_pass_joins(fields: dict[str, Any]) -> None:
    if "envelope" in fields:
        fields["envelope"]["to"] = [address()]
    assert len(deliver(reply(address(), **fields))) == 1


def test_without_a_reply_secret_the_mailbox_fails_so_the_reply_waits_to_be_retried() -> None:
    with pytest.raises(NotConfiguredError):
        deliver(reply(address()), secret=None)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.from_regex(r"[a-z0-9_-]{1,30}", fullmatch=True),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=16, max_size=16),
    st.text(max_size=40),
)
def test_only_the_minted_signature_verifies_for_its_thread_and_sender(thread: str, sig: str, sender: str) -> None:
    minted = address(thread, sender)
    parsed = parse(minted)
    assert parsed is not None and verifies(SECRET, *parsed, sender)
    candidate = f"reply+{thread}.{sig}@support.example.com"
    assert parse(candidate) == (thread, sig)
    assert verifies(SECRET, thread, sig, sender) == (candidate == minted)


@settings(max_examples=examples(300), deadline=None)
@given(st.text(max_size=120))
def test_no_text_makes_the_reply_address_parser_raise(text: str) -> None:
    found = parse(text)
    assert found is None or (len(found[1]) == 16 and 1 <= len(found[0]) <= 30)
