"""Read stored mail from a deployed or local service: mailboxes, list, show, raw, eml, attachment, retry; relay a
message in.

``mails list --status failed`` lists the mail whose handoff failed (or is
pending, processing, bounced); ``mails retry --all-failed`` hands every failed
mail to its handler again, after an outage: it lists them all first, then
retries each, so a mail that fails again is not met twice, and a second run
skips what the first already re-queued.

The service's URL and a read token come from --url/--token, else from the
MAILS_URL/MAILS_TOKEN environment variables (a token on the command line ends
up in the shell's history), else from the running `make dev` (.dev/server.json
and .dev/credentials.json). Installed as the `mails` command by the Makefile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from scripts import dev_state

MAX_PAGE = 100  # the read API's largest page
LISTED_STATUSES = ("pending", "processing", "bounced", "failed")  # what GET /mails?status= takes


class Reader:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self._url = url.rstrip("/")
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {token}", "Accept": "*/*"})
        self._timeout = timeout

    def _get(self, path: str, **params: Any) -> requests.Response:
        # requests drops the Authorization header when it follows the 302 to S3,
        # which is what a presigned link needs.
        return self._check(self._session.get(self._url + path, params=params, timeout=self._timeout))

    def _check(self, response: requests.Response) -> requests.Response:
        if response.status_code >= 400:
            try:
                message = response.json().get("Message", response.text)
            except ValueError:
                message = response.text
            raise SystemExit(f"{response.status_code}: {message}")
        return response

    def pages(self, to: str | None, limit: int, follow: bool, status: str | None = None) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if to:
                params["to"] = to
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            page = self._get("/mails", **params).json()
            yield from page["mails"]
            cursor = page["cursor"]
            if not follow or cursor is None:
                return

    def mailboxes(self, limit: int) -> Iterator[str]:
        """Every mailbox the token may read, in address order, page after page."""
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = self._get("/mailboxes", **params).json()
            yield from (mailbox["address"] for mailbox in page["mailboxes"])
            cursor = page["cursor"]
            if cursor is None:
                return

    def show(self, mail_id: str) -> dict[str, Any]:
        mail: dict[str, Any] = self._get(f"/mails/{mail_id}").json()
        return mail

    def raw(self, mail_id: str) -> bytes:
        return self._get(f"/mails/{mail_id}/raw").content

    def eml(self, mail_id: str) -> bytes:
        return self._get(f"/mails/{mail_id}/eml").content

    def attachment(self, mail_id: str, index: int) -> bytes:
        return self._get(f"/mails/{mail_id}/attachments/{index}").content

    def retry(self, mail_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._check(self._post_retry(mail_id)).json()
        return answer

    def _post_retry(self, mail_id: str) -> requests.Response:
        return self._session.post(f"{self._url}/mails/{mail_id}/retry", timeout=self._timeout)

    def retry_all_failed(self, to: str | None) -> Retried:
        """Every failed mail (of one mailbox, with ``to``) re-queued; one that is no longer failed is skipped."""
        ids = [mail["id"] for mail in self.pages(to, MAX_PAGE, follow=True, status="failed")]
        done = Retried()
        for mail_id in ids:
            status = self._post_retry(mail_id).status_code
            if status == 202:
                done.retried += 1
            elif status in (404, 409):  # gone, or re-queued meanwhile (by another run, or the console)
                done.skipped += 1
            else:
                done.errors += 1
        return done


@dataclass
class Retried:
    retried: int = 0
    skipped: int = 0
    errors: int = 0

    def __str__(self) -> str:
        return f"retried {self.retried}, skipped {self.skipped} (no longer failed), errors {self.errors}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(text: str, width: int) -> str:
    """Cut and pad to a display width, counting wide (CJK) characters as two columns."""
    out = ""
    for ch in text.replace("\n", " "):
        if _width(out + ch) > width:
            out = out[: max(len(out) - 1, 0)] + "…"
            break
        out += ch
    return out + " " * (width - _width(out))


def table(mails: list[dict[str, Any]]) -> str:
    columns = [("RECEIVED", 24), ("ID", 26), ("FROM", 28), ("ATT", 3), ("SUBJECT", 40)]
    lines = ["  ".join(_cell(name, width) for name, width in columns).rstrip()]
    for mail in mails:
        values = [
            mail["received_at"], mail["id"], mail.get("from") or "", str(mail.get("attachments", 0)),
            mail.get("subject") or "",
        ]
        lines.append("  ".join(_cell(v, w) for v, (_, w) in zip(values, columns, strict=True)).rstrip())
    return "\n".join(lines)


def _write(data: bytes, output: str | None, stdout: BinaryIO) -> None:
    if output:
        with open(output, "wb") as file:
            file.write(data)
    else:
        stdout.write(data)
        stdout.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mails", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service URL (or MAILS_URL; else the running make dev's)")
    parser.add_argument("--token", help="read token (or MAILS_TOKEN; else the running make dev's)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="a mailbox, newest first, as a table")
    listing.add_argument("--to", help="the recipient address (a mailbox); all mail without it")
    listing.add_argument("--status", choices=LISTED_STATUSES, help="only mail in this handoff status")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--all", action="store_true", help="follow the cursor to the last page")
    listing.add_argument("--json", action="store_true", help="one JSON summary per line instead of a table")
    boxes = commands.add_parser("mailboxes", help="every mailbox the token may read, one address a line")
    boxes.add_argument("--limit", type=int, default=100, help="addresses per request")
    show = commands.add_parser("show", help="one mail as JSON")
    show.add_argument("id")
    raw = commands.add_parser("raw", help="the original request body, byte for byte")
    raw.add_argument("id")
    raw.add_argument("-o", "--output")
    eml = commands.add_parser("eml", help="the message in RFC 5322 form, for a mail client")
    eml.add_argument("id")
    eml.add_argument("-o", "--output")
    attachment = commands.add_parser("attachment", help="one attachment's bytes")
    attachment.add_argument("id")
    attachment.add_argument("index", type=int)
    attachment.add_argument("-o", "--output")
    retry = commands.add_parser("retry", help="hand a failed or bounced mail to its handler again")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all-failed", action="store_true", help="every failed mail (safe to run again)")
    retry.add_argument("--to", help="with --all-failed: only this mailbox's (a scoped token needs it)")
    relay = commands.add_parser(
        "relay", help="post the message on standard input to POST /ingress/relay, for an MTA's pipe",
        description=f"Exit status: {EX_OK} stored, {EX_TEMPFAIL} try later (a 5xx, no answer), "
        f"{EX_NOPERM} refused (401/403), {EX_DATAERR} any other 4xx (the message can never be taken).",
    )
    relay.add_argument(
        "--url", dest="relay_url", help="https://KEY:SECRET@HOST/STAGE/ingress/relay (or MAILS_RELAY_URL)"
    )
    relay.add_argument("--sender", help="the envelope sender (SMTP's MAIL FROM)")
    relay.add_argument("recipients", nargs="+", metavar="RECIPIENT", help="an envelope recipient")
    relay.add_argument("--timeout", type=float, default=25.0)
    return parser


# sysexits.h: what Postfix's pipe(8) and Exim's pipe transport read from a command.
EX_OK, EX_DATAERR, EX_TEMPFAIL, EX_NOPERM = 0, 65, 75, 77


def relay_status(status: int) -> int:
    """The exit status an MTA understands for the service's answer: retry unless it is final."""
    if 200 <= status < 300:
        return EX_OK
    if status in (401, 403):
        return EX_NOPERM  # a wrong URL or secret: bounced now, not retried for days
    if 400 <= status < 500:
        return EX_DATAERR
    return EX_TEMPFAIL


def _without_mbox_line(message: bytes) -> bytes:
    """An MTA's pipe may write an mbox ``From `` line first; it is not part of the message."""
    if message.startswith(b"From "):
        return message.split(b"\n", 1)[1] if b"\n" in message else b""
    return message


def relay(url: str, sender: str | None, recipients: list[str], message: bytes, timeout: float) -> int:
    headers = {"Content-Type": "message/rfc822", "X-Envelope-To": ", ".join(recipients)}
    if sender:
        headers["X-Envelope-From"] = sender
    try:
        response = requests.post(url, data=_without_mbox_line(message), headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        print(f"mails relay: {type(exc).__name__} from {dev_state.without_credentials(url)}", file=sys.stderr)
        return EX_TEMPFAIL
    code = relay_status(response.status_code)
    if code != EX_OK:
        try:
            reason = str(response.json().get("Message", ""))
        except ValueError:
            reason = ""
        print(f"mails relay: {response.status_code} {reason}".rstrip(), file=sys.stderr)
    return code


def _run(reader: Reader, args: argparse.Namespace) -> int:
    if args.command == "list":
        mails = list(reader.pages(args.to, args.limit, args.all, args.status))
        if args.json:
            print("\n".join(json.dumps(mail, ensure_ascii=False) for mail in mails))
        else:
            print(table(mails))
    elif args.command == "mailboxes":
        for address in reader.mailboxes(args.limit):
            print(address)
    elif args.command == "show":
        print(json.dumps(reader.show(args.id), ensure_ascii=False, indent=2))
    elif args.command == "retry" and args.all_failed:
        retried = reader.retry_all_failed(args.to)
        print(retried)
        return 1 if retried.errors else 0
    elif args.command == "retry":
        print(json.dumps(reader.retry(args.id)))
    elif args.command == "raw":
        _write(reader.raw(args.id), args.output, sys.stdout.buffer)
    elif args.command == "eml":
        _write(reader.eml(args.id), args.output, sys.stdout.buffer)
    else:
        _write(reader.attachment(args.id, args.index), args.output, sys.stdout.buffer)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "relay":
        url = args.relay_url or args.url or os.environ.get("MAILS_RELAY_URL")
        if not url:
            parser.error("relay needs --url (or MAILS_RELAY_URL)")
        return relay(url, args.sender, args.recipients, sys.stdin.buffer.read(), args.timeout)
    state = dev_state.state_dir()
    url = args.url or os.environ.get("MAILS_URL") or dev_state.server_url(state)
    credentials = dev_state.read_credentials(state)
    token = args.token or os.environ.get("MAILS_TOKEN") or (credentials.read_token if credentials else None)
    if not url or not token:
        parser.error("--url and --token (or MAILS_URL and MAILS_TOKEN) are required when make dev is not running")
    if args.command == "retry" and args.to and not args.all_failed:
        parser.error("--to goes with --all-failed")
    try:
        return _run(Reader(url, token), args)
    except requests.ConnectionError:
        raise SystemExit(f"mails: nothing answers at {dev_state.without_credentials(url)}"
                         " (is the service, or make dev, running?)") from None
    except requests.RequestException as exc:
        raise SystemExit(f"mails: {type(exc).__name__} from {dev_state.without_credentials(url)}") from None
    except OSError as exc:  # the -o file
        raise SystemExit(f"mails: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")) from None


if __name__ == "__main__":
    sys.exit(main())
