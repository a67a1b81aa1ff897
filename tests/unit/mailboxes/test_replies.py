"""The replies mailbox: a reply's own text, without the quoted message it answers."""

from __future__ import annotations

import pytest

from chalicelib.mailboxes.replies import strip_quoted


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
        ("Line one\n> inline quote\nLine two\n> trailing quote\n>\n", "Line one\n> inline quote\nLine two"),
        ("No quote at all", "No quote at all"),
    ],
)
def test_a_reply_loses_its_quoted_text(text: str, reply: str) -> None:
    assert strip_quoted(text) == reply
