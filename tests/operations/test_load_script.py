"""`make load` (scripts/load.py): only a stack on this machine is loaded, and every mail it posts is a new one."""

from __future__ import annotations

import random

import pytest

from chalicelib.mime import message as mime
from scripts import load


def test_load_refuses_a_stack_that_is_not_on_this_machine() -> None:
    with pytest.raises(SystemExit, match="only a stack on this machine"):
        load.main(["--url", "https://mail.example.com/mails?MailKey=k&MailSecret=s", "--seconds", "0"])


def test_each_load_mail_is_about_its_size_and_has_a_message_id_of_its_own() -> None:
    rng = random.Random(1)
    mails = [load.message(sender, n, 10 * 1024, rng) for sender in range(2) for n in range(3)]
    assert all(10 * 1024 <= len(mail) < 10 * 1024 + 200 for mail in mails)
    ids = {mime.decode(mail, mode="raw").header("Message-ID") for mail in mails}
    assert len(ids) == len(mails)
