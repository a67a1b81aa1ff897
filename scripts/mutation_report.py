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
NOT_RUN = "not checked"


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
    """The report's lines, and how many survivors no one has explained.

    The score is the share of the mutants run that the tests caught, the ones
    explained as equivalent left out (no test could catch them); ``killed`` is the
    raw share. Mutants not run yet (a run cut short) are counted apart.
    """
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for name, (module, verdict) in found.items():
        kind = "caught" if verdict in DETECTED else "not run" if verdict == NOT_RUN else "survived"
        rows[module][kind] += 1
        rows[module]["explained"] += kind == "survived" and name in explained
    lines = ["module                                  mutants  not run  caught  survived (explained)  killed  score"]
    for module in [*sorted(rows), "all"]:
        row = rows[module] if module != "all" else sum(rows.values(), Counter())
        run = row["caught"] + row["survived"]
        killed = f"{row['caught'] / run:6.0%}" if run else "     -"
        scored = run - row["explained"]
        score = f"{row['caught'] / scored:6.0%}" if scored else "     -"
        lines.append(
            f"{module:38}  {run + row['not run']:7}  {row['not run']:7}  {row['caught']:6}  "
            f"{row['survived']:8} ({row['explained']:3})       {killed}  {score}"
        )
    unexplained = sorted(
        name for name, (_, verdict) in found.items()
        if verdict not in DETECTED and verdict != NOT_RUN and name not in explained
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
        if verdict not in DETECTED and verdict != NOT_RUN and name not in explained:
            reason = by_rule(_mutmut("show", name))
            if reason:
                explained[name] = reason
    lines, unexplained = report(found, explained)
    not_run = sum(verdict == NOT_RUN for _, verdict in found.values())
    if not_run:
        lines += ["", f"{not_run} mutants not run yet: `make mutate` goes on where the last run stopped."]
    print("\n".join(lines))
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
