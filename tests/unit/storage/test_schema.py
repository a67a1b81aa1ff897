"""The stored mail's names: its id (what makes two deliveries one mail) and its objects' keys.

A mail's id must not change from one release to the next: a provider's retry
after a deploy must find the first delivery. So it is pinned to exact values.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.mime.message import decode
from chalicelib.model import Envelope, InboundMail
from chalicelib.storage import schema

PLAIN = (b"From: A <A@Example.org>\r\nTo: b@example.com\r\nSubject: Hi\r\nMessage-ID: <k1@example.org>\r\n"
         b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nline one\r\nline two\r\n")
JAPANESE = ("From: A <a@example.org>\r\nTo: b@example.com\r\nSubject: =?utf-8?b?5pel5pys?=\r\n"
            "Message-ID: <k2@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n本文\r\n").encode()
NO_ID = b"To: b@example.com\r\n\r\nno id\r\n"
WITH_ATTACHMENT = (
    b"From: A <A@Example.org>\r\nTo: b@example.com\r\nSubject: Hi\r\nMessage-ID: <k4@example.org>\r\n"
    b'Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>caf\xc3\xa9</p>\r\n--B\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n"
    b"\x00\x01\r\n--B--\r\n"
)
RAW_SHA256 = "0" * 64


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests need no server."""
    return ""


def mail(source: bytes) -> InboundMail:
    return decode(source, mode="raw")


@pytest.mark.parametrize(
    ("source", "digest", "mail_id"),
    [
        (PLAIN, "3afdb8a5d247ff8fe000cdf0fc8d117f329934b9d3e9771b833073c95fb1813d", "rhcjefgfhwcpemifu4jidmt247"),
        (JAPANESE, "1d2e993c6e20543520b593bc63bc678191a293efe1b706f412dd95f301349e29", "ytqu4ylik7h4md7zjnarmgghdc"),
        (WITH_ATTACHMENT, "f06df984b023cd766dc426414174b4824b1310ab749bd1a497c6552d5d32fb0e",
         "lb5uldxm2iorj6w3v7jox6tfna"),
        (NO_ID, "cc1e35767d946c288e45e0963201ea726a184e7440358143bf054c8c97ab9d4a", "skupvo6ijnmneqxovk7h35hgkt"),
    ],
)
def test_ids_and_digests_stay_what_earlier_releases_gave(source: bytes, digest: str, mail_id: str) -> None:
    assert schema.content_digest(mail(source)) == digest
    assert schema.mail_id(mail(source), RAW_SHA256) == mail_id


def test_without_a_message_id_the_request_bytes_name_the_mail() -> None:
    assert schema.mail_id(mail(NO_ID), "1" * 64) != schema.mail_id(mail(NO_ID), RAW_SHA256)
    assert schema.mail_id(mail(PLAIN), "1" * 64) == schema.mail_id(mail(PLAIN), RAW_SHA256)


@pytest.mark.parametrize(
    "variant",
    [
        PLAIN.replace(b"\r\n", b"\n"),  # a provider that rewrote the line ends
        PLAIN.replace(b"<A@Example.org>", b"<a@example.org>"),  # the sender's address in another case
        PLAIN + b"\r\n\r\n",  # blank lines after the body
    ],
)
def test_the_same_mail_written_another_way_is_the_same_mail(variant: bytes) -> None:
    assert schema.mail_id(mail(variant), "1" * 64) == schema.mail_id(mail(PLAIN), RAW_SHA256)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<A@Example.org>", b"<x@example.org>"),
        (b"10:00:00", b"10:00:01"),
        (b"Subject: Hi", b"Subject: Ho"),
        (b"line two", b"line 2"),
        (b"line one", b"line\rone"),  # a lone CR is dropped, not made a blank
        (b"<k1@example.org>", b"< k1@example.org>"),
    ],
)
def test_anything_a_mail_says_makes_it_another_mail(old: bytes, new: bytes) -> None:
    assert PLAIN.count(old) == 1
    assert schema.mail_id(mail(PLAIN.replace(old, new)), RAW_SHA256) != schema.mail_id(mail(PLAIN), RAW_SHA256)


def test_the_html_and_each_attachment_are_part_of_what_a_mail_says() -> None:
    base = mail(WITH_ATTACHMENT)
    other_html = mail(WITH_ATTACHMENT.replace(b"caf\xc3\xa9", b"cafe"))
    other_bytes = mail(WITH_ATTACHMENT.replace(b"\x00\x01\r\n--B--", b"\x00\x02\r\n--B--"))
    ids = {schema.mail_id(m, RAW_SHA256) for m in (base, other_html, other_bytes)}
    assert len(ids) == 3


def test_the_recipients_count_but_not_their_order_or_case() -> None:
    base = mail(PLAIN)

    def to(*recipients: str) -> InboundMail:
        return dataclasses.replace(base, envelope=Envelope("a@example.org", recipients))

    assert schema.mail_id(to("x@example.com", "Y@example.com"), RAW_SHA256) == schema.mail_id(
        to("y@example.com", "x@example.com"), RAW_SHA256)
    assert schema.mail_id(to("x@example.com"), RAW_SHA256) != schema.mail_id(to("y@example.com"), RAW_SHA256)


def test_a_digest_piece_cannot_run_into_the_next() -> None:
    base = mail(PLAIN)
    one = dataclasses.replace(base, subject="ab", text="c")
    other = dataclasses.replace(base, subject="a", text="bc")
    assert schema.content_digest(one) != schema.content_digest(other)
    # Non-ASCII text cannot collide with ASCII text whose bytes are the same: U+0100 is 00 01 in UTF-16-LE.
    assert schema.content_digest(dataclasses.replace(base, text="\u0100")) != schema.content_digest(
        dataclasses.replace(base, text="\x00\x01"))


def test_the_objects_of_a_delivery_lie_under_its_prefix() -> None:
    prefix = schema.object_prefix("id", "sha")
    assert prefix == "mails/id/sha/"
    assert (schema.raw_object(prefix), schema.attachment_object(prefix, 3), schema.document_object(prefix)) == (
        "mails/id/sha/raw", "mails/id/sha/attachments/3", "mails/id/sha/mail.json")


def test_the_quarantine_is_filed_by_the_utc_day() -> None:
    evening_in_new_york = datetime(2026, 11, 27, 22, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert schema.quarantine_object(evening_in_new_york, "k") == "quarantine/2026-11-28/k"


def test_a_mailbox_key_may_be_as_long_as_dynamodb_allows_and_no_longer() -> None:
    fits = "x" * (schema.MAX_KEY_BYTES - len("to#"))
    assert schema.box_fits(fits)
    assert not schema.box_fits(fits + "x")
    assert not schema.box_fits("é" * 511)  # bytes, not characters: 3 + 1022 bytes


@pytest.mark.parametrize(
    ("mail_id", "box_shard", "status_shard"),
    [
        ("rhcjefgfhwcpemifu4jidmt247", "14", "14"),
        ("ytqu4ylik7h4md7zjnarmgghdc", "01", "17"),
        ("lb5uldxm2iorj6w3v7jox6tfna", "08", "08"),
        ("skupvo6ijnmneqxovk7h35hgkt", "12", "28"),
    ],
)
def test_a_mails_index_shards_stay_what_earlier_releases_chose(mail_id: str, box_shard: str, status_shard: str) -> None:
    # Stored mail stays on the shard it was written to: a listing that looked elsewhere would miss it.
    assert schema.box_key("all", mail_id) == f"{box_shard}#all"
    assert schema.box_key("to#b@example.com", mail_id) == f"{box_shard}#to#b@example.com"
    assert schema.status_box("pending", "to#b@example.com", mail_id) == f"{status_shard}#pending#to#b@example.com"


def test_a_listing_reads_the_unsharded_key_and_every_shard_of_its_box() -> None:
    assert schema.box_keys("all") == [
        "all", "00#all", "01#all", "02#all", "03#all", "04#all", "05#all", "06#all", "07#all", "08#all", "09#all",
        "10#all", "11#all", "12#all", "13#all", "14#all", "15#all",
    ]
    statuses = schema.status_boxes("failed", "to#b@example.com")
    assert statuses[:3] == ["failed#to#b@example.com", "00#failed#to#b@example.com", "01#failed#to#b@example.com"]
    assert statuses[-1] == "31#failed#to#b@example.com"
    assert len(statuses) == len(set(statuses)) == 33


@pytest.mark.parametrize(
    ("address", "partition"),
    [("b@example.com", "mailboxes#6"), ("a@example.org", "mailboxes#0"), ("ops@example.net", "mailboxes#4")],
)
def test_a_mailbox_is_registered_under_the_partition_earlier_releases_chose(address: str, partition: str) -> None:
    assert schema.mailbox_shard(address) == partition
    assert schema.mailbox_key(address) == {"pk": {"S": f"mailbox#{address}"}, "sk": {"S": "mailbox"}}


def test_a_once_only_value_is_filed_by_its_digest_never_by_itself() -> None:
    assert schema.once_key("mailgun", "tok") == {
        "pk": {"S": "once#mailgun#1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62"},
        "sk": {"S": "once"},
    }
    assert schema.once_key("postmark", "tok")["pk"]["S"].startswith("once#postmark#")


def test_a_mail_item_and_its_kept_message_have_fixed_names() -> None:
    assert schema.mail_key("x") == {"pk": {"S": "mail#x"}, "sk": {"S": "mail"}}
    assert schema.message_object("mails/x/sha/") == "mails/x/sha/message.eml"
    assert schema.box(None) == "all"
    assert schema.box("b@example.com") == "to#b@example.com"
