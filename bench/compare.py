"""Is this checkout faster or slower than another? The handler timed in both, interleaved, in one run.

Two worker processes, one per checkout, each with ``bench/run.py``'s harness
(the real app over in-memory storage). The controller asks them in turn for
the median of a batch of calls on the same mail, swapping who goes first
every round, so that the machine speeding up or slowing down lands on both.
The answer per mail is the median of the per-round ratios, this over other,
with its quartiles: 1.00 is no change.

Usage: ``python bench/compare.py OTHER_CHECKOUT [--rounds N]``; for the
checkout before a change, ``git worktree add /tmp/before HEAD``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
# (mail, mode, calls per batch): batches of a few tens of milliseconds.
MAILS = [
    ("plain-10k", "parsed", 60), ("plain-10k", "raw", 60), ("iso2022jp-10k", "parsed", 40),
    ("iso2022jp-10k", "raw", 40), ("html-200k", "parsed", 20), ("html-200k", "raw", 20),
    ("attach-1m", "parsed", 8), ("attach-1m", "raw", 8), ("attach-4m", "parsed", 4), ("attach-4m", "raw", 4),
]


def worker(root: Path) -> None:
    """Serve ``MAIL MODE CALLS`` lines with the median seconds of that many calls, in the checkout at ``root``."""
    sys.path.insert(0, str(root))
    from bench import run  # noqa: PLC0415 - the checkout's own, found through the path set just above
    from bench.corpus import corpus  # noqa: PLC0415

    harness = run.Harness()
    events = {(mail.name, mail.mode): run.api_gateway_event(mail.body, mail.content_type) for mail in corpus()}
    for event in events.values():
        harness.check(event, run.floor(event))
    print("ready", flush=True)
    for line in sys.stdin:
        name, mode, calls = line.split()
        event = events[(name, mode)]
        samples = []
        for _ in range(int(calls)):
            harness.clear()
            start = time.perf_counter()
            harness.call(event)
            samples.append(time.perf_counter() - start)
        print(json.dumps(statistics.median(samples)), flush=True)


def _ask(process: subprocess.Popen[str], request: str) -> float:
    stdin: IO[str] | None = process.stdin
    stdout: IO[str] | None = process.stdout
    assert stdin is not None and stdout is not None
    stdin.write(request + "\n")
    stdin.flush()
    seconds: float = json.loads(stdout.readline())
    return seconds


def compare(other: Path, rounds: int) -> list[str]:
    roots = {"this": ROOT, "other": other.resolve()}
    workers = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", str(root)], cwd=root, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )
        for name, root in roots.items()
    }
    try:
        for process in workers.values():
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        ratios: dict[tuple[str, str], list[float]] = {(name, mode): [] for name, mode, _ in MAILS}
        times: dict[tuple[str, str, str], list[float]] = {}
        for round_ in range(rounds):
            for name, mode, calls in MAILS:
                order = ("this", "other") if round_ % 2 == 0 else ("other", "this")
                got = {side: _ask(workers[side], f"{name} {mode} {calls}") for side in order}
                for side, seconds in got.items():
                    times.setdefault((name, mode, side), []).append(seconds)
                ratios[(name, mode)].append(got["this"] / got["other"])
    finally:
        for process in workers.values():
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=60)
    lines = [f"{rounds} rounds, interleaved; this = {ROOT}, other = {other}",
             "mail            mode     this ms  other ms  this/other  (quartiles)"]
    for (name, mode), values in ratios.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        this_ms = statistics.median(times[(name, mode, "this")]) * 1000
        other_ms = statistics.median(times[(name, mode, "other")]) * 1000
        lines.append(f"{name:15} {mode:7} {this_ms:8.3f}  {other_ms:8.3f}  {statistics.median(values):10.3f}"
                     f"  ({q1:.3f}-{q3:.3f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, nargs="?", help="the other checkout")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.other is None:
        parser.error("the other checkout is required")
    print("\n".join(compare(args.other, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
