"""SMTP into the webhook, for `make dev`: each message becomes the post SendGrid's Inbound Parse would make.

An aiosmtpd server, in a thread of scripts/dev.py, takes a message and posts it
to POST /mails as SendGrid would (chalicelib/ingress/sendgrid/poster.py): raw
mode by default, parsed mode on request, with the session's ``MAIL FROM`` and
``RCPT TO`` as ``envelope``. It answers the client only once the webhook has:
250 when the mail is stored; 451 when it is not (the webhook answered 5xx, or
nothing answered), so that a real MTA tries again; 554 when the webhook refused
it (4xx); 552 when it is bigger than the webhook's bound (MAX_BODY_BYTES), which
EHLO advertises as SIZE. No address, subject or body reaches a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from chalicelib.ingress.sendgrid.poster import build_body

MODES = ("raw", "parsed")
DEFAULT_PORT = 1025
# The webhook answers within Lambda's 25 s (chalicelib/storage/boto.py works the budget); a client waits for it.
WEBHOOK_TIMEOUT = 60.0

# What of the webhook's answer may be quoted back to the client: the mail id, and the error's class name.
_ID = re.compile(r"[a-z0-9]{1,64}")
_CODE = re.compile(r"[A-Za-z]{1,64}")


def smtp_reply(status: int | None, body: bytes) -> str:
    """The SMTP reply for the webhook's answer (None: no answer at all)."""
    if status is None:
        return "451 4.4.1 The webhook did not answer; try again later"
    answer = _json(body)
    if status == 200:
        mail_id = answer.get("id")
        return f"250 2.0.0 Stored as {mail_id}" if isinstance(mail_id, str) and _ID.fullmatch(mail_id) else (
            "250 2.0.0 Stored")
    if status == 413:
        return "552 5.3.4 The webhook refused the message as too big (HTTP 413)"
    if 400 <= status < 500:
        code = answer.get("Code")
        named = f" {code}" if isinstance(code, str) and _CODE.fullmatch(code) else ""
        return f"554 5.6.0 The webhook refused the message (HTTP {status}{named})"
    return f"451 4.3.0 The webhook did not store the message (HTTP {status}); try again later"


def _json(body: bytes) -> dict[str, object]:
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Bridge:
    """aiosmtpd's handler: one message, one post to the webhook, the client answered with the webhook's verdict.

    ``url`` carries the ingest credentials as HTTP Basic (scripts/dev_state.py); ``limit`` is the
    webhook's bound on a request body, which the post must keep too.
    """

    url: str
    mode: str
    limit: int

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self._deliver(session, envelope)
        print(f"SMTP: {reply}", flush=True)
        return reply

    async def _deliver(self, session: Session, envelope: Envelope) -> str:
        peer = session.peer[0] if isinstance(session.peer, tuple) else "127.0.0.1"
        try:
            body, content_type = build_body(
                envelope.original_content or b"", raw=self.mode == "raw", envelope_to=list(envelope.rcpt_tos),
                envelope_from=_reverse_path(envelope.mail_from), sender_ip=str(peer),
            )
        except Exception as exc:  # the message is hostile input: whatever the poster trips on, it cannot post it
            return f"554 5.6.0 The message cannot be posted as SendGrid would ({type(exc).__name__})"
        if len(body) > self.limit:
            return f"552 5.3.4 As SendGrid's post the message would exceed the webhook's {self.limit} bytes"
        status, answer = await asyncio.to_thread(self._post, body, content_type)
        return smtp_reply(status, answer)

    def _post(self, body: bytes, content_type: str) -> tuple[int | None, bytes]:
        try:
            response = requests.post(self.url, data=body, headers={"Content-Type": content_type},
                                     timeout=WEBHOOK_TIMEOUT)
        except requests.RequestException:
            return None, b""
        return response.status_code, response.content


def _reverse_path(mail_from: str | None) -> str:
    """MAIL FROM's address; "" for the null sender (``MAIL FROM:<>``, a bounce), which aiosmtpd gives as "<>"."""
    return "" if mail_from in (None, "<>") else str(mail_from)


def start(bridge: Bridge, host: str, port: int) -> Controller:
    """The SMTP server, listening on host:port in a thread of its own; an OSError when it cannot."""
    # aiosmtpd logs every command line, addresses and all, at INFO: only its warnings (none quotes one) get out.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # A port in use fails here, at once: aiosmtpd would wait out its whole ready_timeout first.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server sets it
        probe.bind((host, port))
    controller = Controller(
        bridge, hostname=host, port=port, server_hostname="localhost", ident="inbound-mail make dev",
        data_size_limit=bridge.limit, enable_SMTPUTF8=True, ready_timeout=30,
    )
    controller.start()
    return controller


def settings(environ: Mapping[str, str]) -> tuple[int | None, str]:
    """SMTP_PORT (None: off, as 0 or "off" say) and SMTP_MODE (raw, or parsed), from make dev's environment."""
    port_text = environ.get("SMTP_PORT", "").strip().lower() or str(DEFAULT_PORT)
    mode = environ.get("SMTP_MODE", "").strip().lower() or "raw"
    if mode not in MODES:
        raise SystemExit(f"error: SMTP_MODE is raw or parsed, not {mode!r}")
    if port_text in ("0", "off"):
        return None, mode
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SystemExit(f"error: SMTP_PORT is a port number, or off; not {port_text!r}")
    return int(port_text), mode
