"""Settings from the environment, and from SSM once per cold start on deployed stages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from chalicelib.errors import NotConfiguredError, StorageUnavailableError

# Lambda accepts at most 6 MB of request; chalice local and tests have no cap of
# their own, so the bound is ours to keep the same everywhere.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
DEFAULT_SIGNATURE_TOLERANCE = 600
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ReadToken:
    """A bearer token of the read API, and the addresses it may read: None for every mailbox."""

    token: str
    # Shell-style patterns over addresses, lower-cased (``support@example.com``, ``*@help.example.com``).
    scope: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"ReadToken(<token>, scope={self.scope!r})"


@dataclass(frozen=True)
class Settings:
    table: str
    bucket: str
    # (key, secret) pairs; several at once is how a secret is rotated.
    mail_credentials: tuple[tuple[str, str], ...]
    read_tokens: tuple[ReadToken, ...]
    # SendGrid's public keys (base64 DER or PEM); two at once is how the key is rotated.
    verification_keys: tuple[str, ...] = ()
    # The SQS queue that hands stored mail to its handlers; no handoff without it.
    queue: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Days a stored mail is kept (0: until deleted); S3's lifecycle rule and
    # DynamoDB's TTL both count them from receipt.
    retention_days: int = 0
    signature_tolerance: int = DEFAULT_SIGNATURE_TOLERANCE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # The key of the replies mailbox's addresses (mailboxes/reply_addresses.py); None: replies cannot verify.
    reply_secret: str | None = None
    # Mailgun's webhook signing keys; two at once is how the key is rotated.
    mailgun_signing_keys: tuple[str, ...] = ()
    mailgun_tolerance: int = DEFAULT_SIGNATURE_TOLERANCE
    # The networks Postmark posts from (POSTMARK_IPS); empty: any source, the credentials alone decide.
    postmark_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    # GET /console (CONSOLE=on), and its compose form (CONSOLE_COMPOSE=on too): docs/console.md.
    console: bool = False
    console_compose: bool = False

    def cursor_secret(self) -> bytes:
        """The key that signs paging cursors: derived from the read tokens, so rotating them retires old cursors."""
        tokens = sorted(entry.token for entry in self.read_tokens)
        return hashlib.sha256(b"cursor\x00" + "\n".join(tokens).encode("utf-8", "surrogatepass")).digest()

    def __repr__(self) -> str:
        # Settings end up in tracebacks and debuggers; the secrets must not.
        return (
            f"Settings(table={self.table!r}, bucket={self.bucket!r}, "
            f"mail_credentials=<{len(self.mail_credentials)} pairs>, "
            f"read_tokens=<{len(self.read_tokens)} tokens>, "
            f"verification_keys=<{len(self.verification_keys)} keys>, "
            f"reply_secret=<{'set' if self.reply_secret else 'not set'}>, "
            f"mailgun_signing_keys=<{len(self.mailgun_signing_keys)} keys>, "
            f"mailgun_tolerance={self.mailgun_tolerance}, "
            f"postmark_networks=<{len(self.postmark_networks)} networks>, "
            f"signature_tolerance={self.signature_tolerance}, max_body_bytes={self.max_body_bytes}, "
            f"queue={self.queue!r}, max_attempts={self.max_attempts}, retention_days={self.retention_days}, "
            f"console={self.console}, console_compose={self.console_compose})"
        )


def parse_credentials(text: str) -> tuple[tuple[str, str], ...]:
    """``key:secret`` pairs separated by commas; a pair without both halves is a configuration error."""
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, secret = item.partition(":")
        if not sep or not key or not secret:
            raise NotConfiguredError("MAIL_CREDENTIALS holds an entry that is not key:secret")
        pairs.append((key, secret))
    return tuple(pairs)


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated addresses or CIDR blocks (``POSTMARK_IPS``)."""
    try:
        return tuple(ip_network(item, strict=False) for item in _list(text))
    except ValueError:
        raise NotConfiguredError("POSTMARK_IPS holds an entry that is not an IP address or network") from None


def parse_tokens(text: str) -> tuple[ReadToken, ...]:
    """Comma-separated entries ``TOKEN`` (every mailbox) or ``TOKEN=GLOB GLOB…`` (the addresses it may read)."""
    tokens = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        token, sep, patterns = item.partition("=")
        token = token.strip()
        scope = tuple(pattern.lower() for pattern in patterns.split())
        if not token or (sep and not scope):
            raise NotConfiguredError("READ_TOKENS holds an entry that is not TOKEN or TOKEN=PATTERN …")
        tokens.append(ReadToken(token, scope if sep else None))
    return tuple(tokens)


ParameterReader = Callable[[str], str]


def ssm_reader(client: Any) -> ParameterReader:
    def read(name: str) -> str:
        try:
            value: str = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:  # botocore raises many unrelated classes; all mean "try later"
            raise StorageUnavailableError(f"cannot read SSM parameter {name}") from exc
        return value

    return read


def _secret(environ: Mapping[str, str], name: str, read_parameter: ParameterReader | None) -> str:
    """The value of NAME, or of the SSM parameter named by NAME_PARAMETER."""
    parameter = environ.get(f"{name}_PARAMETER", "").strip()
    if parameter:
        if read_parameter is None:
            raise NotConfiguredError(f"{name}_PARAMETER is set but SSM is not reachable")
        return read_parameter(parameter)
    return environ.get(name, "")


def _int(environ: Mapping[str, str], name: str, default: int, allow_zero: bool = False) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise NotConfiguredError(f"{name} is not a whole number") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise NotConfiguredError(f"{name} must be positive")
    return value


def load_settings(
    environ: Mapping[str, str], read_parameter: ParameterReader | None = None
) -> Settings:
    table = environ.get("MAILS_TABLE", "").strip()
    bucket = environ.get("MAILS_BUCKET", "").strip()
    if not table or not bucket:
        raise NotConfiguredError("MAILS_TABLE and MAILS_BUCKET must be set")
    keys = _secret(environ, "SENDGRID_VERIFICATION_KEY", read_parameter)
    return Settings(
        table=table,
        bucket=bucket,
        mail_credentials=parse_credentials(_secret(environ, "MAIL_CREDENTIALS", read_parameter)),
        read_tokens=parse_tokens(_secret(environ, "READ_TOKENS", read_parameter)),
        verification_keys=_list(keys),
        mailgun_signing_keys=_list(_secret(environ, "MAILGUN_SIGNING_KEY", read_parameter)),
        mailgun_tolerance=_int(environ, "MAILGUN_SIGNATURE_TOLERANCE", DEFAULT_SIGNATURE_TOLERANCE),
        postmark_networks=parse_networks(environ.get("POSTMARK_IPS", "")),
        signature_tolerance=_int(
            environ, "SENDGRID_SIGNATURE_TOLERANCE", DEFAULT_SIGNATURE_TOLERANCE
        ),
        max_body_bytes=_int(environ, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        queue=environ.get("MAILS_QUEUE", "").strip() or None,
        max_attempts=_int(environ, "MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
        retention_days=_int(environ, "MAIL_RETENTION_DAYS", 0, allow_zero=True),
        reply_secret=_secret(environ, "REPLY_SECRET", read_parameter).strip() or None,
        console=_switch(environ, "CONSOLE"),
        console_compose=_switch(environ, "CONSOLE") and _switch(environ, "CONSOLE_COMPOSE"),
    )


def _switch(environ: Mapping[str, str], name: str) -> bool:
    """``on`` or ``off`` (the default when unset); anything else is a configuration error, not a guess."""
    value = environ.get(name, "").strip().lower()
    if value not in ("", "on", "off"):
        raise NotConfiguredError(f"{name} must be on or off")
    return value == "on"
