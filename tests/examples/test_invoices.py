"""A worked example: test a new mailbox in a few lines with chalicelib.testing (docs/handlers.md walks through it).

``deliver()`` posts each message as SendGrid would to the real webhook, and
runs the real handoff: the mailbox sees what it would see deployed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.delivery.routing import recipient
from chalicelib.testing import DeliveryRefused, MailStack, deliver
from tests.contract.test_message_content import PDF, multipart_eml
from tests.examples import invoices

HERE = Path(__file__).resolve().parent


@pytest.fixture
def billing(mail_stack: MailStack) -> Iterator[list[tuple[str, str, bytes]]]:
    mail_stack.route("invoices", recipient(r"invoices@example\.com"), invoices.receive)
    invoices.BILLING.clear()
    yield invoices.BILLING
    invoices.BILLING.clear()


@pytest.mark.parametrize("mode", ["raw", "parsed"])
def test_an_invoice_reaches_the_invoices_mailbox_with_its_pdf(billing: list[tuple[str, str, bytes]], mode: str) -> None:
    delivered = deliver(multipart_eml(), "invoices@example.com", mode=mode)  # type: ignore[arg-type]
    assert (delivered.status, delivered.mailbox, delivered.error, delivered.duplicate) == (
        "delivered", "invoices", None, False
    )
    assert billing == [("請求書 2026-11", "billing@example.org", PDF)]
    assert delivered.mail.attachment_bytes(2) == PDF
    assert delivered.mail.message()["Message-ID"] == "<inv-2026-11@example.org>"
    assert delivered.mail.document["processing"] == {"status": "delivered", "attempts": 1, "error": None}


def test_a_mail_without_a_pdf_bounces(billing: list[tuple[str, str, bytes]]) -> None:
    delivered = deliver(HERE / "no_pdf.eml", "invoices@example.com")
    assert (delivered.status, delivered.mailbox) == ("bounced", "invoices")
    assert delivered.error == {"class": "Bounce", "message": "an invoice needs a PDF", "route": "invoices"}
    assert billing == []


@pytest.mark.parametrize(
    "eml", [HERE / "no_pdf.eml", str(HERE / "no_pdf.eml"), (HERE / "no_pdf.eml").read_text()],
    ids=["path", "path as str", "message as str"],
)
def test_other_mail_goes_on_to_the_inbox(billing: list[tuple[str, str, bytes]], eml: Path | str) -> None:
    delivered = deliver(eml, ["someone@example.com"])
    assert (delivered.status, delivered.mailbox) == ("delivered", "inbox")
    assert billing == []


def test_a_second_delivery_of_one_message_runs_the_handler_once(billing: list[tuple[str, str, bytes]]) -> None:
    first = deliver(multipart_eml(), "invoices@example.com")
    again = deliver(multipart_eml(), "invoices@example.com")
    assert (again.mail.id, again.duplicate) == (first.mail.id, True)
    assert (again.status, again.mailbox) == ("delivered", "invoices")
    assert len(billing) == 1


def test_a_handler_that_raises_leaves_the_mail_to_be_retried(mail_stack: MailStack) -> None:
    def broken(mail: object) -> None:
        raise RuntimeError("the billing system is down")

    mail_stack.route("invoices", recipient(r"invoices@example\.com"), broken)
    delivered = deliver(multipart_eml(), "invoices@example.com")
    assert (delivered.status, delivered.mailbox) == ("failed", "invoices")
    assert isinstance(delivered.exception, RuntimeError)
    assert delivered.error == {"class": "RuntimeError", "message": "the billing system is down", "route": "invoices"}
    assert delivered.mail.document["processing"]["status"] == "pending"  # deployed, SQS tries again


def test_a_message_the_webhook_refuses_is_an_error_not_a_delivery(
    mail_stack: MailStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "1024")
    with pytest.raises(DeliveryRefused, match=r"^the webhook answered 413: "):
        deliver(multipart_eml(), "invoices@example.com")
