"""The invoices mailbox of docs/handlers.md, as a user would write it: keep each invoice's PDF."""

from __future__ import annotations

from chalicelib.delivery.routing import Bounce
from chalicelib.model import StoredMail

# Stands in for the billing system: (subject, sender, the PDF's bytes), one per invoice.
BILLING: list[tuple[str, str, bytes]] = []


def receive(mail: StoredMail) -> None:
    pdfs = [a for a in mail.attachments if a["content_type"] == "application/pdf"]
    if not pdfs:
        raise Bounce("an invoice needs a PDF")
    message = mail.message()  # the stdlib's EmailMessage, parsed from the message in RFC 5322 form
    sender = message["From"].addresses[0].addr_spec
    BILLING.append((str(message["Subject"]), sender, mail.attachment_bytes(pdfs[0]["index"])))
