"""`make mutate`'s test order (tests/support/fastest_first.py): the unit tests first, each group fastest first."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import fastest_first


@pytest.fixture
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: the order is read from a file."""
    return ""


def _items(*nodeids: str) -> list[Any]:
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_a_run_is_ordered_unit_tests_first_then_by_mutmuts_recorded_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({"duration_by_test": {
        "tests/contract/test_a.py::test_slow": 3.0,
        "tests/contract/test_a.py::test_fast": 0.1,
        "tests/unit/test_b.py::test_slow": 0.5,
        "tests/unit/test_b.py::test_fast": 0.01,
    }}))
    monkeypatch.chdir(tmp_path)
    items = _items(
        "tests/contract/test_a.py::test_new", "tests/contract/test_a.py::test_slow", "tests/unit/test_b.py::test_slow",
        "tests/contract/test_a.py::test_fast", "tests/unit/test_b.py::test_fast",
    )
    fastest_first.pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [
        "tests/unit/test_b.py::test_fast", "tests/unit/test_b.py::test_slow",
        "tests/contract/test_a.py::test_fast", "tests/contract/test_a.py::test_slow",
        "tests/contract/test_a.py::test_new",
    ]


@pytest.mark.parametrize("text", [None, "{", '{"other": {}}'])
def test_without_mutmuts_times_the_order_is_left_as_collected(
    text: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if text is not None:
        (tmp_path / "mutmut-stats.json").write_text(text)
    monkeypatch.chdir(tmp_path)
    items = _items("tests/contract/test_a.py::test_x", "tests/unit/test_b.py::test_y")
    fastest_first.pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == ["tests/contract/test_a.py::test_x", "tests/unit/test_b.py::test_y"]
