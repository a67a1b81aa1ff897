"""What `make dev` keeps between its runs, in .dev/ (or DEV_STATE_DIR): credentials, its URL, the emulator's data.

- ``credentials.json`` (mode 0600): the ingest key and secret, the read token and
  the reply secret, made on the first start and kept until ``make dev-reset``;
- ``server.json``: the running ``make dev``'s URL, so that scripts/mails.py and
  scripts/send_mail.py find it without being told;
- ``aws.jsonl``: the emulator's journal (scripts/emulator.py).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = "DEV_STATE_DIR"
CREDENTIALS = "credentials.json"
SERVER = "server.json"
JOURNAL = "aws.jsonl"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR) or ROOT / ".dev")


@dataclass(frozen=True)
class Credentials:
    ingest_key: str
    ingest_secret: str
    read_token: str
    reply_secret: str


def write_private(path: Path, document: dict[str, Any]) -> None:
    """Readable by its owner only, and whole or not at all: a reader never sees half of it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(document, file)
    os.replace(part, path)


def read_credentials(directory: Path) -> Credentials | None:
    """None when there are none (no ``make dev`` has run) or they cannot be read."""
    try:
        return Credentials(**json.loads((directory / CREDENTIALS).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load_or_create_credentials(directory: Path) -> Credentials:
    if (directory / CREDENTIALS).exists():
        found = read_credentials(directory)
        if found is None:
            raise SystemExit(f"error: {directory / CREDENTIALS} is unreadable; `make dev-reset` starts afresh")
        return found
    made = Credentials("sendgrid", *(secrets.token_urlsafe(18) for _ in range(3)))
    write_private(directory / CREDENTIALS, asdict(made))
    return made


def write_server(directory: Path, url: str) -> None:
    write_private(directory / SERVER, {"url": url})


def remove_server(directory: Path) -> None:
    (directory / SERVER).unlink(missing_ok=True)


def server_url(directory: Path) -> str | None:
    """The running ``make dev``'s URL, as it last wrote it (a make dev killed outright leaves it behind)."""
    try:
        url = json.loads((directory / SERVER).read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if isinstance(url, str) else None


def webhook_url(server: str, credentials: Credentials) -> str:
    """The webhook's URL with the ingest credentials as HTTP Basic, which no access log shows."""
    parts = urlsplit(server)
    netloc = f"{credentials.ingest_key}:{credentials.ingest_secret}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, "/mails", "", ""))


def without_credentials(url: str) -> str:
    """The URL as an error message may show it: scheme, host and port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # not a number: nothing to show of it
        port = None
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"
