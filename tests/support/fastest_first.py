"""A pytest plugin for `make mutate`: run a mutant's tests fastest first, so the first that fails comes early.

mutmut runs each mutant's tests with ``-x`` (stop at the first failure) in the
order of a set, so a mutant the unit tests catch in a second could wait behind
minutes of contract tests. mutmut times every test in its first full run and
keeps the times in ``mutmut-stats.json``, in the directory it runs the tests
from; this plugin orders a run's tests by those times, the unit tests first.
The same tests run either way: only how soon a failing one is met changes,
and a survivor still passes every one of them.

Loaded by ``pytest_add_cli_args`` under ``[tool.mutmut]`` in pyproject.toml only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")  # relative to mutants/, where mutmut runs pytest


def durations(stats: Path = STATS) -> dict[str, float]:
    """Each test's time in mutmut's last full run, by node id; none before the first."""
    try:
        recorded = json.loads(stats.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return {}
    return {str(name): float(seconds) for name, seconds in recorded.items()}


def cost(nodeid: str, seconds: dict[str, float]) -> tuple[bool, float]:
    """A test's place: the unit tests first, each group by its time; a test never timed after the timed ones."""
    return (not nodeid.startswith("tests/unit/"), seconds.get(nodeid, float("inf")))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds = durations()
    if seconds:
        items.sort(key=lambda item: cost(item.nodeid, seconds))
