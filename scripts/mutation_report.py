"""`make mutate`'s report: mutmut's verdicts per module, the score, and each survivor with its explanation or none.

A surviving mutant is a change to the code that no test noticed. Each one is
either killed by a new test or explained: by one of two rules below, which
read the change itself, or one by one in ``scripts/equivalent_mutants.toml``
as equivalent (no input tells the two apart) or outside what a test should
pin. The report names every survivor left unexplained, and exits 1 if any is.

Usage: ``python scripts/mutation_report.py`` after ``mutmut run`` (``make mutate`` runs both).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "equivalent_mutants.toml"
# "chalicelib.api.cursor.x_decode__mutmut_3: survived"; a method's mutant is named xǁClassǁmethod__mutmut_N.
_LINE = re.compile(r"\s*(chalicelib\.\S+__mutmut_\d+): (\w[\w ]*\w|\w)\s*$")


def verdicts(text: str) -> dict[str, tuple[str, str]]:
    """Each mutant's module and verdict, from ``mutmut results --all true``."""
    found: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            name = match.group(1)
            found[name] = (name.rsplit(".", 1)[0], match.group(2))
    return found


_LITERAL = re.compile(r"""[bfr]*"(?:[^"\\]|\\.)*"|[bfr]*'(?:[^'\\]|\\.)*'|\bNone\b""")
_MESSAGE = re.compile(r"raise |storage_error\(|log\.\w+\(|logs\.line\(|Error\(")
_CODEC = re.compile(r"\.(?:en|de)code\(")
# A mutant that made the tests time out was noticed as surely as one that failed them.
DETECTED = frozenset({"killed", "timeout"})


def by_rule(diff: str) -> str | None:
    """The explanation a change's own text gives, for the two kinds no test should pin."""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    if len(removed) != 1 or len(added) != 1:
        return None
    before, after = removed[0], added[0]
    if before.lower() == after.lower() and _CODEC.search(before):
        return "rule: a codec's name in another case, which Python's codec lookup ignores"
    if _LITERAL.sub("S", before) == _LITERAL.sub("S", after) and _MESSAGE.search(before):
        return "rule: only the text of a message changed, not the error's class or status, which callers act on"
    return None


def report(found: dict[str, tuple[str, str]], explained: dict[str, str]) -> tuple[list[str], int]:
    """The report's lines, and how many survivors no one has explained."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for module, verdict in found.values():
        counts[module][verdict] += 1
    lines = ["module                                    killed  total  score  survivors (explained)"]
    for module in sorted(counts):
        count = counts[module]
        total = sum(count.values())
        survivors = [name for name, (owner, verdict) in found.items() if owner == module and verdict not in DETECTED]
        known = sum(name in explained for name in survivors)
        detected = sum(count[verdict] for verdict in DETECTED)
        lines.append(f"{module:40}  {detected:6}  {total:5}  {detected / total:5.0%}  {len(survivors)} ({known})")
    killed = sum(count[verdict] for count in counts.values() for verdict in DETECTED)
    total = sum(sum(count.values()) for count in counts.values())
    lines.append(f"{'all':40}  {killed:6}  {total:5}  {killed / max(total, 1):5.0%}")
    unexplained = sorted(
        name for name, (_, verdict) in found.items() if verdict not in DETECTED and name not in explained
    )
    lines += ["", "Survivors explained:"]
    lines += [f"  {name}: {explained[name]}" for name in sorted(explained) if name in found]
    lines += ["", "Survivors unexplained (kill them, or explain them in scripts/equivalent_mutants.toml):"]
    lines += [f"  {name} ({found[name][1]}): mutmut show {name}" for name in unexplained] or ["  none"]
    return lines, len(unexplained)


def _mutmut(*args: str) -> str:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), *args], cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout


def main() -> int:
    found = verdicts(_mutmut("results", "--all", "true"))
    explained: dict[str, str] = tomllib.loads(EQUIVALENTS.read_text())["equivalent"]
    for name, (_, verdict) in found.items():
        if verdict not in DETECTED and name not in explained:
            reason = by_rule(_mutmut("show", name))
            if reason:
                explained[name] = reason
    lines, unexplained = report(found, explained)
    print("\n".join(lines))
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
