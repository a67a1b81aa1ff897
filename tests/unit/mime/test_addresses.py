"""The one address parser: the stdlib's answer wherever the stdlib reads a list cleanly, and sense where it does not."""

from __future__ import annotations

from email.headerregistry import AddressHeader, HeaderRegistry

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.mime.addresses import parse_addresses, parse_message_id, parse_slowly
from chalicelib.mime.text import without_comments
from tests.support.examples import examples

PROPERTY = settings(max_examples=examples(500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
REGISTRY = HeaderRegistry()

# RFC 5322's atext, and the pieces of well-formed address lists built from it.
ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
atom = st.text(alphabet=ATEXT, min_size=1, max_size=8).filter(lambda text: "=?" not in text)
dot_atom = st.lists(atom, min_size=1, max_size=3).map(".".join)
# Quoted text without whitespace at its ends, runs of blanks or "=?" (the stdlib keeps the first
# two and decodes encoded words even inside quotes, which RFC 2047 forbids).
quoted_text = st.lists(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8), min_size=1,
    max_size=3,
).map(" ".join).filter(lambda text: "=?" not in text)
quoted = quoted_text.map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
# A local part in quotes holds no blank here: this parser refuses an address with a space in it.
quoted_local = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8).map(
    lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
domain = st.one_of(dot_atom, st.from_regex(r"\[[0-9]{1,3}(\.[0-9]{1,3}){3}\]", fullmatch=True))
addr_spec = st.builds("{}@{}".format, st.one_of(dot_atom, quoted_local), domain)
phrase = st.one_of(st.lists(atom, min_size=1, max_size=3).map(" ".join), quoted)
mailbox = st.one_of(addr_spec, st.builds("{} <{}>".format, phrase, addr_spec), addr_spec.map("<{}>".format))
group = st.builds("{}: {};".format, phrase, st.lists(mailbox, max_size=3).map(", ".join))
address_list = st.lists(st.one_of(mailbox, group), min_size=1, max_size=4).map(", ".join)


@PROPERTY
@given(address_list)
def test_what_the_stdlib_reads_cleanly_is_read_alike(value: str) -> None:
    header = REGISTRY("To", value)
    assert isinstance(header, AddressHeader)
    if header.defects:
        return  # the stdlib's own doubts: nothing to compare with
    expected = [{"name": a.display_name, "address": a.addr_spec} for a in header.addresses]
    assert parse_addresses(value) == expected
    assert parse_slowly(value) == expected


@PROPERTY
@given(st.text(alphabet='ab.@<>,;:"() \\[]\t\r\n', max_size=40))
def test_no_address_without_a_local_part_or_a_domain_or_with_a_space(value: str) -> None:
    for entry in parse_addresses(value):
        address = entry["address"]
        local, _, domain = address.rpartition("@")
        assert local and domain
        assert not any(char.isspace() for char in address)


# Each defect seen in real mail (tests/corpus/wild/ has the messages; these are their header values).
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # mikel/mail raw_email_multiple_from.eml: a list that lost its comma
        ("tim@powerupdev.com concierge@powerupdev.com",
         [("", "tim@powerupdev.com"), ("", "concierge@powerupdev.com")]),
        # mikel/mail raw_email_with_at_display_name.eml: an "@" in an unquoted display name
        ("smith@gmail.com, Mikel@Lindsaar <raasdnil@gmail.com>, tom@gmail.com",
         [("", "smith@gmail.com"), ("Mikel@Lindsaar", "raasdnil@gmail.com"), ("", "tom@gmail.com")]),
        # mikel/mail missing_body.eml: a group inside the brackets, no local part
        ("<Undisclosed-Recipient:@mailman.enron.com;>", []),
        ("Undisclosed-Recipient:;", []),
        # mikel/mail rfc2822/example10.eml (RFC 2822 A.5): groups, comments everywhere
        ("(Empty list)(start)Undisclosed recipients  :(nobody(that I know))  ;", []),
        ("A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n         joe@example.org,"
         "\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
         [("Chris Jones", "c@public.example"), ("", "joe@example.org"), ("John", "jdoe@one.test")]),
        ("Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>", [("Pete", "pete@silly.test")]),
        # mikel/mail rfc2822/example11.eml (RFC 2822 A.6.1): a source route and obsolete blanks
        ("Mary Smith <@machine.tld:mary@example.net>, , jdoe@test   . example",
         [("Mary Smith", "mary@example.net"), ("", "jdoe@test.example")]),
        # mikel/mail mix_caps_content_type.eml: a name without brackets
        ("Big Bug bb@bug.com", [("Big Bug", "bb@bug.com")]),
        # A name alone is no recipient
        ("Mary", []),
        ("Mary Smith", []),
        ('"john doe"@example.com', []),
        ("@mailman.enron.com", []),
    ],
)
def test_address_defects_from_real_mail(value: str, expected: list[tuple[str, str]]) -> None:
    assert [(entry["name"], entry["address"]) for entry in parse_addresses(value)] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<1234@local(blah).machine.example>", "<1234@local.machine.example>"),
        ("<1234   @   local(blah)  .machine .example>", "<1234@local.machine.example>"),
        ("(a (nested) comment) <x@y> (after)", "<x@y>"),
    ],
)
def test_comments_leave_the_message_id(value: str, expected: str) -> None:
    assert parse_message_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a(b)c", "ac"), ("a(b(c)d)e", "ae"), ("a(b\\)c)d", "ad"), ("a(unclosed", "a"), ("a)b", "a)b"),
     ("x\\(y(z)", "x\\(y"), ("", ""), ("(((x)))y", "y")],
)
def test_comments_are_removed_at_any_depth(value: str, expected: str) -> None:
    assert without_comments(value) == expected
