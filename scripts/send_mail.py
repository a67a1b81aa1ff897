"""Post a real .eml file to an ingress the way its provider would: SendGrid (the default), Postmark, Mailgun, relay.

Parsed mode (the default) sends the fields SendGrid sends: the raw header
block, ``text`` and ``html`` in their own charsets named in ``charsets`` (as
UTF-8 when several parts of one kind differ), the addresses, ``envelope``,
``attachment-info``, ``content-ids`` and the attachments as ``attachmentN``
file parts (a forwarded message as its whole bytes). ``--raw`` sends the whole message in
``email``, as "Send Raw" does. ``--as postmark`` posts Postmark's inbound JSON
(``--raw``: with ``RawEmail``), ``--as mailgun`` a Mailgun Route's form signed
with ``--mailgun-key`` (or MAILGUN_SIGNING_KEY; ``--raw``: ``body-mime``), and
``--as relay`` the message itself, as ``mails relay`` does. The URL is then
that ingress's (``…/ingress/postmark``, ``…/ingress/mailgun[/mime]``,
``…/ingress/relay``). Use it to try a deployment without the provider.
Without --url it posts to the running `make dev` (.dev/server.json), with its
ingest credentials (.dev/credentials.json).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from chalicelib.ingress.mailgun import poster as mailgun
from chalicelib.ingress.postmark import poster as postmark
from chalicelib.ingress.sendgrid.poster import build_body, sendgrid_fields
from scripts import dev_state

__all__ = ["build_body", "main", "sendgrid_fields"]


def _dev_webhook() -> str | None:
    """The running make dev's webhook URL, its ingest credentials in it."""
    state = dev_state.state_dir()
    server, credentials = dev_state.server_url(state), dev_state.read_credentials(state)
    return dev_state.webhook_url(server, credentials) if server and credentials else None


def _post_of(args: argparse.Namespace, source: bytes) -> tuple[bytes, dict[str, str]]:
    """The body and headers the chosen provider would post."""
    if args.provider == "postmark":
        body, content_type = postmark.build_body(source, args.raw, args.envelope_to)
    elif args.provider == "mailgun":
        key = args.mailgun_key or os.environ.get("MAILGUN_SIGNING_KEY", "").split(",")[0].strip()
        if not key:
            raise ValueError("--as mailgun needs --mailgun-key (or MAILGUN_SIGNING_KEY)")
        body, content_type = mailgun.build_body(source, key, mime=args.raw, envelope_to=args.envelope_to)
    elif args.provider == "relay":
        envelope = {"X-Envelope-To": ", ".join(args.envelope_to)} if args.envelope_to else {}
        return source, {"Content-Type": "message/rfc822", **envelope}
    else:
        body, content_type = build_body(source, args.raw, args.envelope_to)
    return body, {"Content-Type": content_type}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eml", type=Path, help="the message, as an .eml file")
    parser.add_argument(
        "--url", help="the webhook URL, with ?MailKey=…&MailSecret=… if used (else the running make dev's)"
    )
    parser.add_argument("--raw", action="store_true", help='post as SendGrid\'s "Send Raw" mode')
    parser.add_argument("--envelope-to", action="append", help="envelope recipient (repeatable)")
    parser.add_argument("--as", dest="provider", choices=["sendgrid", "postmark", "mailgun", "relay"],
                        default="sendgrid", help="post as this provider does (default: sendgrid)")
    parser.add_argument("--mailgun-key", help="Mailgun's webhook signing key (or MAILGUN_SIGNING_KEY)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    url = args.url or _dev_webhook()
    if not url:
        parser.error("--url is required when make dev is not running")
    try:
        source = args.eml.read_bytes()
    except OSError as exc:
        raise SystemExit(f"send_mail: {exc.strerror}: {args.eml}") from None
    try:
        body, headers = _post_of(args, source)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        response = requests.post(url, data=body, headers=headers, timeout=args.timeout)
    except requests.ConnectionError:
        raise SystemExit(f"send_mail: nothing answers at {dev_state.without_credentials(url)}"
                         " (is the service, or make dev, running?)") from None
    except requests.RequestException as exc:
        raise SystemExit(f"send_mail: {type(exc).__name__} from {dev_state.without_credentials(url)}") from None
    print(response.status_code, response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
