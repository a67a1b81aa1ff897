"""`make dev`'s SMTP port (scripts/smtp_bridge.py): smtplib, the bridge, and a stand-in webhook that answers as told.

The bridge turns each message into SendGrid's post and answers the SMTP client
with the webhook's verdict: what a real MTA needs to know whether to retry.
tests/e2e/test_smtp.py sends through `make dev`'s whole stack.
"""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from chalicelib.ingress import form
from scripts import smtp_bridge
from scripts.dev import start_smtp
from tests.conftest import free_port

STORED = b'{"id":"abc123","duplicate":false}'
# Raw bytes as a client sends them; the line that starts with a dot travels dot-stuffed.
MESSAGE = (
    b"From: Ann <ann@example.org>\r\nTo: list@example.com\r\nSubject: Minutes\r\n"
    b"Message-ID: <m1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hello\r\n.hidden dot line\r\n"
)
SENDER, RECIPIENTS = "bounce@example.org", ["box@example.com", "other@example.net"]
STAGE = {"MAILS_TABLE": "t", "MAILS_BUCKET": "b"}  # what make dev's settings need to say the webhook's bound


@dataclass
class Webhook:
    """What the stand-in answers, and every post it got: (path, Authorization, body, Content-Type)."""

    url: str
    status: int = 200
    answer: bytes = STORED
    posts: list[tuple[str, str, bytes, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[list[Webhook]]:
    """One server for the module (its shutdown takes half a second); the test's Webhook in the list's one slot."""
    current: list[Webhook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook = current[0]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.posts.append((self.path, self.headers["Authorization"], body, self.headers["Content-Type"]))
            self.send_response(hook.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(hook.answer)))
            self.end_headers()
            self.wfile.write(hook.answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    current.append(Webhook(f"http://sendgrid:s3cret@127.0.0.1:{server.server_address[1]}/mails"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield current
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook(webhook_server: list[Webhook]) -> Webhook:
    webhook_server[0] = Webhook(webhook_server[0].url)
    return webhook_server[0]


Start = Callable[..., int]


@pytest.fixture
def bridge(webhook: Webhook) -> Iterator[Start]:
    """start(mode=, limit=, url=): the bridge's port; it stops after the test."""
    started: list[Controller] = []

    def start(mode: str = "raw", limit: int = 100_000, url: str | None = None) -> int:
        port = free_port()
        started.append(smtp_bridge.start(smtp_bridge.Bridge(url or webhook.url, mode, limit), "127.0.0.1", port))
        return port

    yield start
    for controller in started:
        controller.stop()


def posted(webhook: Webhook) -> form.Form:
    ((path, authorization, body, content_type),) = webhook.posts
    assert (path, authorization) == ("/mails", "Basic " + base64.b64encode(b"sendgrid:s3cret").decode())
    return form.parse(body, content_type)


def test_a_message_is_posted_in_raw_mode_with_the_smtp_envelope_as_its_envelope(
    webhook: Webhook, bridge: Start
) -> None:
    with smtplib.SMTP("127.0.0.1", bridge()) as client:
        assert client.sendmail(SENDER, RECIPIENTS, MESSAGE) == {}
    sent = posted(webhook)
    assert list(sent.fields) == ["from", "to", "subject", "envelope", "SPF", "sender_ip", "spam_score", "dkim",
                                 "email", "charsets"]
    assert sent.fields["email"] == MESSAGE
    assert json.loads(sent.fields["envelope"]) == {"to": RECIPIENTS, "from": SENDER}
    assert (sent.fields["from"], sent.fields["sender_ip"]) == (b"Ann <ann@example.org>", b"127.0.0.1")


def test_a_message_is_posted_in_parsed_mode_with_its_parts_and_the_smtp_envelope(
    webhook: Webhook, bridge: Start
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "ann@example.org", "list@example.com", "Invoice"
    message.set_content("See attached.\n")
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="invoice.pdf")
    with smtplib.SMTP("127.0.0.1", bridge(mode="parsed")) as client:
        assert client.send_message(message, from_addr=SENDER, to_addrs=RECIPIENTS) == {}
    sent = posted(webhook)
    assert "email" not in sent.fields
    assert (sent.fields["subject"], sent.fields["text"], sent.fields["attachments"]) == (
        b"Invoice", b"See attached.\r\n", b"1"
    )
    assert json.loads(sent.fields["envelope"]) == {"to": RECIPIENTS, "from": SENDER}
    attachment = sent.files["attachment1"]
    assert (attachment.filename, attachment.content_type, bytes(attachment.data)) == (
        "invoice.pdf", "application/pdf", b"%PDF-1.4 fake"
    )


def test_internationalized_addresses_travel_with_smtputf8_into_the_envelope(webhook: Webhook, bridge: Start) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Jörg <jörg@exämple.de>", "büro@example.com", "Grüße"
    message.set_content("Hallo")
    with smtplib.SMTP("127.0.0.1", bridge(mode="parsed")) as client:
        assert client.send_message(message) == {}  # smtplib asks for SMTPUTF8 itself
    sent = posted(webhook)
    assert json.loads(sent.fields["envelope"]) == {"to": ["büro@example.com"], "from": "jörg@exämple.de"}
    assert (sent.fields["from"], sent.fields["subject"]) == ("Jörg <jörg@exämple.de>".encode(), "Grüße".encode())


def test_the_client_hears_the_stored_mails_id_and_the_null_sender_is_kept(webhook: Webhook, bridge: Start) -> None:
    with smtplib.SMTP("127.0.0.1", bridge()) as client:
        client.ehlo()
        client.mail("")
        client.rcpt("box@example.com")
        assert client.data(MESSAGE) == (250, b"2.0.0 Stored as abc123")
    assert json.loads(posted(webhook).fields["envelope"]) == {"to": ["box@example.com"], "from": ""}


@pytest.mark.parametrize(
    ("status", "answer", "code", "reply"),
    [
        (503, b'{"Code":"StorageUnavailableError","Message":"S3 PutObject failed"}', 451,
         b"4.3.0 The webhook did not store the message (HTTP 503); try again later"),
        (500, b'{"Code":"InternalServerError","Message":"internal error"}', 451,
         b"4.3.0 The webhook did not store the message (HTTP 500); try again later"),
        (400, b'{"Code":"MalformedMailError","Message":"no such thing"}', 554,
         b"5.6.0 The webhook refused the message (HTTP 400 MalformedMailError)"),
        (401, b'{"Code":"AuthenticationError","Message":"bad credentials"}', 554,
         b"5.6.0 The webhook refused the message (HTTP 401 AuthenticationError)"),
        (403, b"<html>not ours</html>", 554, b"5.6.0 The webhook refused the message (HTTP 403)"),
        (413, b'{"Code":"PayloadTooLargeError","Message":"too big"}', 552,
         b"5.3.4 The webhook refused the message as too big (HTTP 413)"),
    ],
)
def test_a_webhook_fault_is_a_4xx_reply_and_a_refusal_a_5xx(
    webhook: Webhook, bridge: Start, status: int, answer: bytes, code: int, reply: bytes
) -> None:
    webhook.status, webhook.answer = status, answer
    with smtplib.SMTP("127.0.0.1", bridge()) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(SENDER, RECIPIENTS, MESSAGE)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (code, reply)
    assert len(webhook.posts) == 1


def test_a_webhook_that_does_not_answer_is_a_4xx_reply(bridge: Start) -> None:
    port = bridge(url=f"http://sendgrid:s3cret@127.0.0.1:{free_port()}/mails")
    with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(SENDER, RECIPIENTS, MESSAGE)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (
        451, b"4.4.1 The webhook did not answer; try again later"
    )


def padded(size: int) -> bytes:
    """MESSAGE grown to exactly size bytes."""
    line = b"x" * 70 + b"\r\n"
    body = MESSAGE + line * ((size - len(MESSAGE)) // len(line))
    return body + b"y" * (size - len(body) - 2) + b"\r\n"


def test_the_webhooks_bound_is_advertised_and_a_bigger_message_refused_with_552(
    webhook: Webhook, bridge: Start
) -> None:
    port = bridge(limit=4000)
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "4000"
        # smtplib declares the size in MAIL FROM, where it is refused before any data.
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail(SENDER, RECIPIENTS, padded(4100))
        assert (declared.value.smtp_code, declared.value.smtp_error) == (
            552, b"Error: message size exceeds fixed maximum message size"
        )
    with smtplib.SMTP("127.0.0.1", port) as client:  # undeclared: refused at the end of DATA
        client.ehlo()
        client.mail(SENDER)
        client.rcpt(RECIPIENTS[0])
        assert client.data(padded(4100)) == (552, b"Error: Too much mail data")
    with smtplib.SMTP("127.0.0.1", port) as client:  # within SIZE, but its post (the form's fields) is not
        client.ehlo()
        client.mail(SENDER)
        client.rcpt(RECIPIENTS[0])
        assert client.data(padded(3900)) == (
            552, b"5.3.4 As SendGrid's post the message would exceed the webhook's 4000 bytes"
        )
    assert webhook.posts == []
    with smtplib.SMTP("127.0.0.1", port) as client:
        assert client.sendmail(SENDER, RECIPIENTS, padded(2500)) == {}
    assert posted(webhook).fields["email"] == padded(2500)


def test_no_address_reaches_a_log_line_or_the_console(
    webhook: Webhook, bridge: Start, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtplib.SMTP("127.0.0.1", bridge()) as client:
        client.sendmail(SENDER, RECIPIENTS, MESSAGE)
    assert "example" not in caplog.text
    assert capsys.readouterr() == ("SMTP: 250 2.0.0 Stored as abc123\n", "")


@pytest.mark.parametrize(
    ("environ", "settings"),
    [
        ({}, (1025, "raw")),
        ({"SMTP_PORT": "", "SMTP_MODE": ""}, (1025, "raw")),
        ({"SMTP_PORT": "2525", "SMTP_MODE": "parsed"}, (2525, "parsed")),
        ({"SMTP_PORT": "off"}, (None, "raw")),
        ({"SMTP_PORT": "0", "SMTP_MODE": "Parsed"}, (None, "parsed")),
    ],
)
def test_make_devs_smtp_settings(environ: dict[str, str], settings: tuple[int | None, str]) -> None:
    assert smtp_bridge.settings(environ) == settings


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"SMTP_MODE": "json"}, "error: SMTP_MODE is raw or parsed, not 'json'"),
        ({"SMTP_PORT": "smtp"}, "error: SMTP_PORT is a port number, or off; not 'smtp'"),
        ({"SMTP_PORT": "70000"}, "error: SMTP_PORT is a port number, or off; not '70000'"),
    ],
)
def test_make_dev_says_what_is_wrong_with_its_smtp_settings(environ: dict[str, str], error: str) -> None:
    with pytest.raises(SystemExit, match=f"^{error}$"):
        smtp_bridge.settings(environ)


def test_make_dev_says_when_the_smtp_port_is_taken_and_how_to_move_it() -> None:
    """Mailpit, say, already listens on 1025."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            start_smtp("http://127.0.0.1:9/mails", "127.0.0.1", (port, "raw"), STAGE)
    assert str(stopped.value) == (
        f"error: SMTP cannot listen on 127.0.0.1:{port} (Address already in use); set SMTP_PORT to another port,"
        " or to off"
    )


def test_make_dev_bounds_smtp_as_the_webhook_is(webhook: Webhook) -> None:
    port = free_port()
    controller = start_smtp(webhook.url, "127.0.0.1", (port, "raw"),
                            {**STAGE, "MAX_BODY_BYTES": "12345"})
    assert controller is not None
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "12345"
    finally:
        controller.stop()
    assert start_smtp(webhook.url, "127.0.0.1", (None, "raw"), {}) is None
