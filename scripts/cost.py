"""What a million mails cost on AWS, from measured figures and dated public prices: docs/operations/cost.md.

    .venv/bin/python scripts/cost.py measure   # the app over in-memory storage; writes MEASURED (a minute)
    .venv/bin/python scripts/cost.py render    # cost.md from MEASURED and the prices below, no network

``measure`` posts each mail of ``SIZES`` through ``app.app`` as API Gateway
would (bench/run.py's harness: the real MailStore over in-memory S3, DynamoDB
and SQS) and records the handler's median time, every object and item it
wrote, the queue message, and the bytes of its log and metric lines. ``render``
prices those per million mails. What the handoff writes is not run here: it is
counted from the same items, by the ledger's rules (``handoff_writes``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE = ROOT / "docs" / "operations" / "cost.md"
MEASURED = ROOT / "docs" / "operations" / "cost-measured.json"
CONFIG = ROOT / ".chalice" / "config.json"
MILLION = 1_000_000
KB = 1024
GB = 1024**3

# The mails priced, by bench/corpus.py's name (SendGrid's parsed mode, one recipient).
SIZES = {"plain-10k": "10 KB text", "html-200k": "200 KB HTML", "attach-1m": "1 MB, one attachment",
         "attach-4m": "4 MB, two attachments"}

# An assumption, not a measurement: what one in-region call to S3, DynamoDB or
# SQS adds to a function's billed time. The webhook waits for three in sequence
# (its objects at once, the transaction, the queue: tests/contract/test_round_trips.py);
# the handoff for six (the ledger's query and transaction twice, the mail's item, the delete by Lambda aside).
ROUND_TRIP_MS = 20
WEBHOOK_ROUND_TRIPS = 3
HANDOFF_ROUND_TRIPS = 6
# The handoff's own time besides its calls, with a handler that does nothing: an assumption too.
HANDOFF_CPU_MS = 2


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


# Public list prices, us-east-1 where AWS, as read on PRICES_DATE from each source.
PRICES_DATE = "2026-12-02"
LAMBDA = "https://aws.amazon.com/lambda/pricing/"
API_GATEWAY = "https://aws.amazon.com/api-gateway/pricing/"
DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
S3 = "https://aws.amazon.com/s3/pricing/"
SQS = "https://aws.amazon.com/sqs/pricing/"
LOGS = "https://aws.amazon.com/cloudwatch/pricing/"
SES = "https://aws.amazon.com/ses/pricing/"
PRICES = {
    "lambda_gb_second": Price(0.0000166667, "GB-second (x86)", LAMBDA),
    "lambda_request": Price(0.20 / MILLION, "request", LAMBDA),
    "api_request": Price(3.50 / MILLION, "REST API request (first 333 million a month)", API_GATEWAY),
    "dynamodb_write": Price(0.625 / MILLION, "write request unit (on-demand)", DYNAMODB),
    "dynamodb_read": Price(0.125 / MILLION, "read request unit (on-demand)", DYNAMODB),
    "dynamodb_gb_month": Price(0.25, "GB-month stored", DYNAMODB),
    "s3_put": Price(0.005 / 1000, "PUT request (S3 Standard)", S3),
    "s3_gb_month": Price(0.023, "GB-month stored (S3 Standard, first 50 TB)", S3),
    "sqs_request": Price(0.40 / MILLION, "request of up to 64 KB (standard queue)", SQS),
    "logs_gb": Price(0.50, "GB of log lines ingested", LOGS),
    "ses_mail": Price(0.10 / 1000, "mail received", SES),
    "ses_chunk": Price(0.09 / 1000, "256 KB chunk of a received mail", SES),
}
# What the hosted inbound services charge per mail at a million a month. Their
# pages price plans, not single mails: each figure says which reading of which page.
PROVIDERS = {
    "SendGrid Inbound Parse": (0.0, "no charge per inbound mail is listed; it needs a SendGrid account",
                               "https://sendgrid.com/en-us/pricing"),
    "Postmark": (1.25 / 1000, "an inbound mail counts as one email; $1.25 per 1,000 at its volume tiers",
                 "https://postmarkapp.com/pricing"),
    "Mailgun": (0.40 / 1000, "Scale plan's rate at 1,000,000 messages a month, inbound counted as a message",
                "https://help.mailgun.com/hc/en-us/articles/6745531451547"),
}


@dataclass
class Measured:
    """One mail's delivery through the webhook, as the app did it."""

    name: str
    body_bytes: int
    handler_ms: float
    s3_puts: int
    s3_bytes: int
    item_bytes: list[int]  # the mail item first, then its mailbox entries
    message_bytes: int
    log_bytes: int


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: each attribute's name and value in bytes (strings and numbers, as ours are)."""
    return sum(len(name.encode()) + len(next(iter(value.values())).encode()) for name, value in item.items())


# -- measuring ---------------------------------------------------------------------------------------


def measure(runs: int = 30) -> list[Measured]:
    # The bench's harness, loaded only here (and by name: its optional peers are not this script's to check).
    run = importlib.import_module("bench.run")
    corpus = importlib.import_module("bench.corpus")
    from chalicelib import logs, metrics  # noqa: PLC0415
    from chalicelib.storage import schema  # noqa: PLC0415

    harness = run.Harness()
    mails = {mail.name: mail for mail in corpus.corpus() if mail.mode == "parsed"}
    found = []
    for name in SIZES:
        mail = mails[name]
        event = run.api_gateway_event(mail.body, mail.content_type)
        harness.check(event, mail.body)
        times = []
        for _ in range(runs):
            harness.clear()
            start = time.perf_counter()
            harness.call(event)
            times.append((time.perf_counter() - start) * 1000)
        harness.clear()
        lines = io.StringIO()
        with _writing_to(lines, logs, metrics):
            harness.call(event)
        objects = list(harness.s3.objects.values())
        # A mailbox's register item is written with its first mail, not with each: left out of a mail's cost.
        items = [
            item for table in harness.dynamodb.tables.values() for item in table.values()
            if item["sk"]["S"] != schema.MAILBOX_SORT_KEY
        ]
        items.sort(key=lambda item: item["sk"]["S"] != "mail")
        found.append(Measured(
            name=name, body_bytes=len(mail.body), handler_ms=round(statistics.median(times), 3),
            s3_puts=len(objects), s3_bytes=sum(len(data) for data, _ in objects),
            item_bytes=[item_size(item) for item in items],
            message_bytes=sum(len(m["MessageBody"]) for m in harness.sqs.messages),
            log_bytes=len(lines.getvalue().encode()),
        ))
    return found


@contextlib.contextmanager
def _writing_to(out: io.StringIO, logs: Any, metrics: Any) -> Any:
    handlers = [h for h in logs.log.handlers if hasattr(h, "setStream")]
    old = [h.setStream(out) for h in handlers]
    metrics.stream = out
    try:
        yield
    finally:
        for handler, stream in zip(handlers, old, strict=True):
            handler.setStream(stream)


# -- pricing -----------------------------------------------------------------------------------------


def memory_mb() -> tuple[int, int]:
    """The REST API function's memory and hand_off's, as the prod stage deploys them."""
    prod = json.loads(CONFIG.read_text())["stages"]["prod"]
    return prod["lambda_memory_size"], prod["lambda_functions"]["hand_off"]["lambda_memory_size"]


def transact_units(size: int) -> int:
    """Write units of one item in a transaction: twice the standard, per started KB."""
    return 2 * math.ceil(size / KB)


def commit_writes(m: Measured) -> int:
    """The commit's transaction, and each item's entry in the two indexes (a projection under 1 KB)."""
    return sum(transact_units(size) for size in m.item_bytes) + 2 * len(m.item_bytes)


def handoff_writes(m: Measured) -> int:
    """Claim and delivery, each one transaction over the mail item and its entries, and by_status kept in step.

    The claim moves each item's by_status key (a delete and a put in the index), delivery removes it.
    """
    per_move = sum(transact_units(size) for size in m.item_bytes)
    return 2 * per_move + 2 * len(m.item_bytes) + len(m.item_bytes)


def handoff_reads(m: Measured) -> float:
    """Each move's consistent query of the mailbox entries, and the mail's item read once (eventually consistent)."""
    entries = sum(m.item_bytes[1:])
    return 2 * math.ceil(max(entries, 1) / (4 * KB)) + 0.5 * math.ceil(m.item_bytes[0] / (4 * KB))


def lambda_ms(m: Measured) -> tuple[int, int]:
    """Billed milliseconds of the webhook's invocation and of the handoff's (rounded up to the millisecond)."""
    webhook = math.ceil(m.handler_ms + WEBHOOK_ROUND_TRIPS * ROUND_TRIP_MS)
    handoff = math.ceil(HANDOFF_CPU_MS + HANDOFF_ROUND_TRIPS * ROUND_TRIP_MS)
    return webhook, handoff


def costs(m: Measured) -> dict[str, float]:
    """US dollars per million such mails, by line; storage is per month kept."""
    p = {name: price.usd for name, price in PRICES.items()}
    api_mb, handoff_mb = memory_mb()
    webhook, handoff = lambda_ms(m)
    gb_seconds = webhook / 1000 * api_mb / 1024 + handoff / 1000 * handoff_mb / 1024
    sqs_requests = 3 * math.ceil(m.message_bytes / (64 * KB))  # send, receive, delete
    return {
        "API Gateway": MILLION * p["api_request"],
        "Lambda": MILLION * (2 * p["lambda_request"] + gb_seconds * p["lambda_gb_second"]),
        "DynamoDB writes": MILLION * (commit_writes(m) + handoff_writes(m)) * p["dynamodb_write"],
        "DynamoDB reads": MILLION * handoff_reads(m) * p["dynamodb_read"],
        "S3 puts": MILLION * m.s3_puts * p["s3_put"],
        "SQS": MILLION * sqs_requests * p["sqs_request"],
        "CloudWatch Logs": MILLION * 2 * m.log_bytes / GB * p["logs_gb"],
        "S3 storage, per month kept": MILLION * m.s3_bytes / GB * p["s3_gb_month"],
        "DynamoDB storage, per month kept": MILLION * sum(m.item_bytes) / GB * p["dynamodb_gb_month"],
    }


def ses_receiving(m: Measured) -> float:
    """SES's own charge for receiving a million such mails (the message, about the mail's size)."""
    return MILLION * (PRICES["ses_mail"].usd + math.ceil(m.body_bytes / (256 * KB)) * PRICES["ses_chunk"].usd)


# -- the page ----------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def render(measured: list[Measured]) -> str:
    api_mb, handoff_mb = memory_mb()
    names = [SIZES[m.name] for m in measured]
    table = [costs(m) for m in measured]
    lines = [
        "# What a million mails cost",
        "",
        "<!-- Made by scripts/cost.py render from cost-measured.json (scripts/cost.py measure); do not edit. -->",
        "",
        f"AWS's list prices in us-east-1 as read on {PRICES_DATE} (sources below), for one million mails a month",
        "through the SendGrid webhook, each to three recipients (bench/corpus.py's mails: two in To, one in Cc)",
        "and handed to a handler that accepts it. Free tiers are left out. `scripts/cost.py` computes every",
        "figure from the measured run below; `tests/operations/test_cost.py` checks that this page is what it",
        "makes.",
        "",
        "| per million mails | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    running = [k for k in table[0] if "per month" not in k]
    for key in running:
        lines.append(f"| {key} | " + " | ".join(_usd(row[key]) for row in table) + " |")
    lines.append("| **total, to receive them** | " + " | ".join(
        f"**{_usd(sum(row[k] for k in running))}**" for row in table) + " |")
    for key in (k for k in table[0] if "per month" in k):
        lines.append(f"| {key} | " + " | ".join(_usd(row[key]) for row in table) + " |")
    lines += [
        "",
        "## Beside the hosted inbound services",
        "",
        "What the same million mails cost to receive elsewhere (the AWS total above is this stack's cost with",
        "SendGrid in front, whose Inbound Parse has no charge of its own; through Amazon SES instead, add SES's",
        "charge and leave out API Gateway):",
        "",
        "| per million mails | " + " | ".join(names) + " | reading |",
        "| --- | " + " | ".join("---:" for _ in names) + " | --- |",
        "| Amazon SES receiving (per mail, and per 256 KB chunk) | "
        + " | ".join(_usd(ses_receiving(m)) for m in measured) + f" | [SES pricing]({SES}) |",
    ]
    for provider, (per_mail, reading, url) in PROVIDERS.items():
        lines.append(f"| {provider} | " + " | ".join(_usd(MILLION * per_mail) for _ in measured)
                     + f" | {reading} ([source]({url})) |")
    lines += [
        "",
        "## Measured",
        "",
        "`scripts/cost.py measure`: the app handling each mail over in-memory storage (bench/run.py's harness),",
        "the median of 30 calls on this 2-core machine; objects, items and lines as it wrote them.",
        "",
        "| mail | body | handler | S3 objects | S3 bytes | DynamoDB items (bytes) | log and metric lines |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for m, name in zip(measured, names, strict=True):
        lines.append(f"| {name} | {m.body_bytes:,} B | {m.handler_ms} ms | {m.s3_puts} | {m.s3_bytes:,} | "
                     f"{', '.join(f'{size:,}' for size in m.item_bytes)} | {m.log_bytes:,} B |")
    lines += [
        "",
        "## How each line is counted",
        "",
        f"- **Lambda**: two invocations (the webhook's, {api_mb} MB; `hand_off`'s, {handoff_mb} MB, from",
        "  `.chalice/config.json`'s prod stage), billed by the millisecond: the measured handler time plus",
        f"  {WEBHOOK_ROUND_TRIPS} AWS round trips for the webhook, {HANDOFF_CPU_MS} ms plus {HANDOFF_ROUND_TRIPS}"
        f" for the handoff, at {ROUND_TRIP_MS} ms each.",
        "  The round trip and the handoff's own time are assumptions, not measurements: in-region calls",
        "  take some 5 to 30 ms.",
        "- **DynamoDB writes**: the commit is one transaction (two write units per started KB of each item),",
        "  and each item is written to the `by_box` and `by_status` indexes; the handoff's claim and delivery",
        "  are a transaction each over the mail item and its entries, moving, then removing, their `by_status`",
        "  key. **Reads**: each move's consistent query of the entries, and the mail read once.",
        "  A document under 100 KB lives in the mail item, so every write of that item, the handoff's moves",
        "  included, pays for the whole item: the 10 KB mail's 12 KB item makes it the dearest to write.",
        "  A mail's larger document lives in S3 and its item stays small.",
        "- **SQS**: a send, a receive and a delete per mail. **S3**: one PUT per object. **CloudWatch Logs**:",
        "  the webhook's log and metric lines as measured, twice (the handoff's are about as long).",
        "- **Storage** is per month the mail is kept ([Retention](retention.md)).",
        "",
        "## Prices",
        "",
        "| price | US dollars | per | source |",
        "| --- | ---: | --- | --- |",
    ]
    for name, price in PRICES.items():
        lines.append(f"| `{name}` | {price.usd:.10g} | {price.per} | {price.source} |")
    return "\n".join(lines) + "\n"


def load() -> list[Measured]:
    return [Measured(**entry) for entry in json.loads(MEASURED.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["measure", "render"])
    args = parser.parse_args(argv)
    if args.command == "measure":
        MEASURED.write_text(json.dumps([asdict(m) for m in measure()], indent=2) + "\n")
        print(f"wrote {MEASURED.relative_to(ROOT)}")
    PAGE.write_text(render(load()))
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
