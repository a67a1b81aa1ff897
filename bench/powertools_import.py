"""What Powertools' Logger costs a cold start: its import beside boto3's and Chalice's, in fresh processes, in turns.

Each run is one ``python -X importtime -c "import boto3, chalice, aws_lambda_powertools.logging"``;
the cumulative microseconds of each top-level package are read from that one process, so all of them
met the same moment's load. Prints the minimum and the median over the runs, and Powertools' share of
boto3 + Chalice. Also shows that aws_xray_sdk is not imported (tracing imports it only where traced).

    .venv/bin/python bench/powertools_import.py [RUNS]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys

PACKAGES = ("boto3", "chalice", "aws_lambda_powertools")
CODE = "import boto3, chalice, aws_lambda_powertools.logging, chalicelib.tracing; import sys; " \
       "print('aws_xray_sdk' in sys.modules)"
_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)\s*$")


def one_run() -> tuple[dict[str, int], bool]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", CODE], capture_output=True, text=True,
                          check=True)
    cumulative = {}
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match and match.group(2) in PACKAGES:
            cumulative[match.group(2)] = int(match.group(1))
    return cumulative, done.stdout.strip() == "True"


def main(runs: int) -> None:
    shares, base, ours = [], [], []
    for _ in range(runs):
        cumulative, xray = one_run()
        assert not xray, "aws_xray_sdk was imported without tracing"
        boto_chalice = cumulative["boto3"] + cumulative["chalice"]
        base.append(boto_chalice / 1000)
        ours.append(cumulative["aws_lambda_powertools"] / 1000)
        shares.append(cumulative["aws_lambda_powertools"] / boto_chalice)
    print(f"runs: {runs}")
    print(f"boto3 + chalice:        min {min(base):6.1f} ms  median {statistics.median(base):6.1f} ms")
    print(f"aws_lambda_powertools:  min {min(ours):6.1f} ms  median {statistics.median(ours):6.1f} ms")
    print(f"Powertools / (boto3 + chalice), per run: min {min(shares):.3f}  median {statistics.median(shares):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
