"""docs/operations/cost.md is what scripts/cost.py makes from its measured run, and its arithmetic is right."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from scripts import cost
from tests.conftest import ROOT


def test_the_page_is_what_the_script_makes_from_the_measured_run() -> None:
    assert cost.PAGE.read_text() == cost.render(cost.load())
    assert [m.name for m in cost.load()] == list(cost.SIZES)


def test_each_line_is_priced_as_the_page_says() -> None:
    """A 10 KB mail item and two 300-byte entries, counted here by hand."""
    m = cost.Measured(name="plain-10k", body_bytes=10_000, handler_ms=0.5, s3_puts=1, s3_bytes=10_000,
                      item_bytes=[10_500, 300, 300], message_bytes=36, log_bytes=1000)
    got = cost.costs(m)
    # Commit: 2 x 11 KB + 2 x 1 + 2 x 1 = 26 units, and 3 items into 2 indexes = 6: 32.
    # Handoff: 2 moves x 26 = 52, the claim's index move 2 x 3, delivery's removal 3: 61.
    assert cost.commit_writes(m) == 32 and cost.handoff_writes(m) == 61
    assert got["DynamoDB writes"] == pytest.approx(93 * 0.625)
    # Two consistent queries of 600 bytes (1 unit each) and the item read eventually (0.5 x 3).
    assert got["DynamoDB reads"] == pytest.approx(3.5 * 0.125)
    # 61 ms at 512 MB and 122 ms at 256 MB (prod), and two requests.
    assert cost.lambda_ms(m) == (61, 122)
    assert got["Lambda"] == pytest.approx(0.40 + 1e6 * (0.061 * 0.5 + 0.122 * 0.25) * 0.0000166667)
    assert got["API Gateway"] == pytest.approx(3.50)
    assert got["S3 puts"] == pytest.approx(5.00)
    assert got["SQS"] == pytest.approx(1.20)
    assert got["CloudWatch Logs"] == pytest.approx(1e6 * 2000 / 1024**3 * 0.50)
    assert got["S3 storage, per month kept"] == pytest.approx(1e6 * 10_000 / 1024**3 * 0.023)
    assert cost.ses_receiving(m) == pytest.approx(100 + 90)
    assert cost.ses_receiving(cost.Measured(**{**m.__dict__, "body_bytes": 600 * 1024})) == pytest.approx(100 + 270)


def test_every_price_names_its_source_and_the_page_its_date() -> None:
    assert all(price.source.startswith("https://") and price.usd > 0 for price in cost.PRICES.values())
    assert all(url.startswith("https://") for _, _, url in cost.PROVIDERS.values())
    assert f"as read on {cost.PRICES_DATE}" in cost.PAGE.read_text()


def test_measuring_records_what_the_app_wrote() -> None:
    """One call per mail, in a process of its own (the harness replaces the app's storage for good)."""
    code = ("import dataclasses, json; from scripts import cost; "
            "print(json.dumps([dataclasses.asdict(m) for m in cost.measure(runs=1)]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=True)
    measured: list[dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
    plain, html, one, two = measured
    # The original, and each attachment; a document over 100 KB goes to S3 beside it.
    assert [m["s3_puts"] for m in measured] == [1, 2, 2, 3]
    assert plain["s3_bytes"] == plain["body_bytes"]
    # The mail item and one entry per recipient (two in To, one in Cc).
    assert all(len(m["item_bytes"]) == 4 for m in measured)
    assert plain["item_bytes"][0] > 10 * 1024 > html["item_bytes"][0]  # 200 KB's document is in S3, not the item
    assert all(m["message_bytes"] == len(json.dumps({"id": "x" * 26})) for m in measured)
    assert all(500 < m["log_bytes"] < 2000 for m in measured)  # a log line and a metric line
    assert one["body_bytes"] < two["body_bytes"]
