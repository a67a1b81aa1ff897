"""Post a real .eml file to the webhook the way SendGrid's Inbound Parse would.

Parsed mode (the default) sends the fields SendGrid sends: the raw header
block, ``text`` and ``html`` in their own charsets named in ``charsets`` (as
UTF-8 when several parts of one kind differ), the addresses, ``envelope``,
``attachment-info``, ``content-ids`` and the attachments as ``attachmentN``
file parts (a forwarded message as its whole bytes). ``--raw`` sends the whole message in
``email``, as "Send Raw" does. Use it to try a deployment without SendGrid.
Without --url it posts to the running `make dev` (.dev/server.json), with its
ingest credentials (.dev/credentials.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from chalicelib.ingress.sendgrid.poster import build_body, sendgrid_fields
from scripts import dev_state

__all__ = ["build_body", "main", "sendgrid_fields"]


def _dev_webhook() -> str | None:
    """The running make dev's webhook URL, its ingest credentials in it."""
    state = dev_state.state_dir()
    server, credentials = dev_state.server_url(state), dev_state.read_credentials(state)
    return dev_state.webhook_url(server, credentials) if server and credentials else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eml", type=Path, help="the message, as an .eml file")
    parser.add_argument(
        "--url", help="the webhook URL, with ?MailKey=…&MailSecret=… if used (else the running make dev's)"
    )
    parser.add_argument("--raw", action="store_true", help='post as SendGrid\'s "Send Raw" mode')
    parser.add_argument("--envelope-to", action="append", help="envelope recipient (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    url = args.url or _dev_webhook()
    if not url:
        parser.error("--url is required when make dev is not running")
    try:
        source = args.eml.read_bytes()
    except OSError as exc:
        raise SystemExit(f"send_mail: {exc.strerror}: {args.eml}") from None
    body, content_type = build_body(source, args.raw, args.envelope_to)
    try:
        response = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=args.timeout)
    except requests.ConnectionError:
        raise SystemExit(f"send_mail: nothing answers at {dev_state.without_credentials(url)}"
                         " (is the service, or make dev, running?)") from None
    except requests.RequestException as exc:
        raise SystemExit(f"send_mail: {type(exc).__name__} from {dev_state.without_credentials(url)}") from None
    print(response.status_code, response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
