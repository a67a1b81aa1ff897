"""SendGrid's Inbound Parse form, in either mode, → one InboundMail.

"Send Raw" posts the whole message in ``email``, decoded by ``mime`` where it
lies in the request body; parsed mode posts its parts as fields (``parsed``).
Either way SendGrid adds its own fields (``extras``).
"""

from __future__ import annotations

import dataclasses

from chalicelib.errors import MalformedMailError
from chalicelib.ingress.form import Form
from chalicelib.ingress.sendgrid import parsed
from chalicelib.ingress.sendgrid.extras import extras
from chalicelib.mime import message
from chalicelib.model import InboundMail


def parse(form: Form) -> InboundMail:
    """The mail a form carries; its strings may hold lone surrogates until ``commit()`` scrubs them."""
    if "email" in form.fields or "email" in form.files:
        return _raw(form)
    if any(name in form.fields for name in ("headers", "text", "html")):
        return parsed.decode(form, extras(form))
    raise MalformedMailError("the form carries neither headers/text/html nor email")


def _raw(form: Form) -> InboundMail:
    span = form.span("email")
    if span is None:  # sent as a file part
        mail = message.decode(bytes(form.files["email"].data), mode="raw")
    else:  # read where it lies in the request body: never copied whole
        mail = message.decode(*span, mode="raw")
    return dataclasses.replace(mail, **extras(form))
