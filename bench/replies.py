"""Does visible_text take linear time? Hostile inputs of n and 2n lines timed in turn, in one run.

For each shape the ratio time(2n) / time(n) is taken in every round, the two
sizes alternating which goes first, so that the machine speeding up or
slowing down lands on both; linear time gives about 2.0, quadratic 4.0. The
reply corpus (tests/corpus/replies/) is timed too, as microseconds a reply.

Usage: ``python bench/replies.py [--rounds N] [--lines N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.mailboxes.replies import visible_text  # noqa: E402 - after the path is set

# Each shape makes a (text, html) pair of about ``lines`` lines.
SHAPES: dict[str, Callable[[int], tuple[str, str | None]]] = {
    "quoted lines": lambda n: ("Reply\n" + "> q\n" * n, None),
    "near-attributions": lambda n: ("On 1 Jan 2020 x wrote\n" * n, None),
    "header fields": lambda n: ("From: a@b\n" * n, None),
    "alternating quotes": lambda n: ("x\n> y\n" * (n // 2), None),
    "HTML lines": lambda n: ("", "a<br>" * n),
    "nested HTML quotes": lambda n: ("", '<blockquote type="cite">x' * n),
}


def seconds(text: str, html: str | None) -> float:
    started = time.perf_counter()
    visible_text(text, html)
    return time.perf_counter() - started


def corpus() -> list[tuple[str, str | None]]:
    folder = ROOT / "tests" / "corpus" / "replies"
    cases = []
    for expected in sorted(folder.glob("*.expected.txt")):
        name = expected.name.removesuffix(".expected.txt")
        text, html = folder / f"{name}.txt", folder / f"{name}.html"
        cases.append((text.read_text(encoding="utf-8") if text.exists() else "",
                      html.read_text(encoding="utf-8") if html.exists() else None))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--lines", type=int, default=50_000)
    args = parser.parse_args()
    print(f"time(2n) / time(n), n = {args.lines:,} lines; median [quartiles] of {args.rounds} rounds")
    for name, make in SHAPES.items():
        small, large = make(args.lines), make(2 * args.lines)
        ratios = []
        for round_ in range(args.rounds):
            if round_ % 2:
                big = seconds(*large)
                little = seconds(*small)
            else:
                little = seconds(*small)
                big = seconds(*large)
            ratios.append(big / little)
        quartiles = statistics.quantiles(ratios, n=4)
        print(f"  {name:20} {statistics.median(ratios):.2f} [{quartiles[0]:.2f}, {quartiles[2]:.2f}]")
    cases = corpus()
    totals = [sum(seconds(text, html) for text, html in cases) for _ in range(args.rounds)]
    print(f"reply corpus: {len(cases)} replies, {statistics.median(totals) / len(cases) * 1e6:.0f} µs a reply (median)")


if __name__ == "__main__":
    main()
