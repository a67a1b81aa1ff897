"""The peer: django-anymail's SendGrid inbound view on the same posts, when it is installed (requirements-bench.txt).

What it does per post: Django builds the request from the body (as its WSGI
handler would), the view checks HTTP Basic credentials, parses the form and
the message (its own ``AnymailInboundMessage``, on the stdlib's email
package), and sends the ``inbound`` signal; the receiver here reads what our
handler stores of a mail: the addresses, subject, both bodies and every
attachment's bytes. It stores nothing, so it does less than our handler.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable
from typing import Any

USER, PASSWORD = "bench", "bench-peer-secret"


def available() -> bool:
    try:
        import anymail  # noqa: F401, PLC0415
        import django  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def version() -> str:
    import anymail  # noqa: PLC0415
    import django  # noqa: PLC0415

    return f"django-anymail {'.'.join(map(str, anymail.VERSION))}, Django {django.get_version()}"


def _read(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    message = event.message
    _ = (message.from_email, message.to, message.subject, message.text, message.html)
    for attachment in message.attachments:
        attachment.get_content_bytes()


def handler() -> Callable[[bytes, str], int]:
    """A function that hands one SendGrid post to anymail's view and returns its status code."""
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="bench-only", ROOT_URLCONF=[],
            INSTALLED_APPS=["anymail"], ANYMAIL={"WEBHOOK_SECRET": f"{USER}:{PASSWORD}"},
            # Everything in memory, as our handler has it: no temporary files for large attachments.
            DATA_UPLOAD_MAX_MEMORY_SIZE=None, FILE_UPLOAD_MAX_MEMORY_SIZE=64 * 1024 * 1024,
            DATA_UPLOAD_MAX_NUMBER_FIELDS=None, DATA_UPLOAD_MAX_NUMBER_FILES=10_000,
        )
        import django  # noqa: PLC0415

        django.setup()
    from anymail.signals import inbound  # noqa: PLC0415
    from anymail.webhooks.sendgrid import SendGridInboundWebhookView  # noqa: PLC0415
    from django.test import RequestFactory  # noqa: PLC0415

    warnings.filterwarnings("ignore", module="anymail")  # "dropped official support for SendGrid", per request
    inbound.connect(_read, weak=False, dispatch_uid="bench-peer")
    view = SendGridInboundWebhookView.as_view()
    factory = RequestFactory()
    authorization = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def post(body: bytes, content_type: str) -> int:
        request = factory.generic("POST", "/anymail/sendgrid/inbound/", body, content_type,
                                  HTTP_AUTHORIZATION=authorization)
        status: int = view(request).status_code
        return status

    return post
