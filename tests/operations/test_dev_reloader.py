"""`make dev`'s chalice local restarts when the app's code changes, never because a file was read."""

from __future__ import annotations

import pytest
from watchdog import events

from scripts.chalice_local import ROOT, restarts_for

LIB = ROOT / "chalicelib"


@pytest.mark.parametrize(
    ("event", "restarts"),
    [
        (events.FileModifiedEvent(str(LIB / "mailboxes" / "inbox.py")), True),
        (events.FileCreatedEvent(str(LIB / "mailboxes" / "invoices.py")), True),
        (events.FileDeletedEvent(str(LIB / "mailboxes" / "invoices.py")), True),
        (events.FileClosedEvent(str(ROOT / "app.py")), True),
        (events.FileModifiedEvent(str(ROOT / ".chalice" / "config.json")), True),
        # An editor's save: written beside the file, then moved over it.
        (events.FileMovedEvent(str(LIB / ".inbox.py.swp"), str(LIB / "inbox.py")), True),
        # Reads: the server's own imports and the files it serves. watchdog ≥ 2.3 reports them.
        (events.FileOpenedEvent(str(LIB / "wiring.py")), False),
        (events.FileClosedNoWriteEvent(str(LIB / "wiring.py")), False),
        # Not the app's code.
        (events.FileModifiedEvent(str(LIB / "__pycache__" / "wiring.cpython-311.pyc")), False),
        (events.FileModifiedEvent(str(LIB / "notes.txt")), False),
        (events.FileModifiedEvent(str(ROOT / "tests" / "conftest.py")), False),
        (events.FileModifiedEvent(str(ROOT / "README.md")), False),
        (events.FileModifiedEvent(str(ROOT / ".chalice" / "deployments" / "x.zip")), False),
        (events.FileModifiedEvent("/tmp/chalicelib/app.py"), False),
        (events.DirModifiedEvent(str(LIB)), False),
    ],
)
def test_the_dev_server_restarts_only_for_a_change_to_the_apps_code(
    event: events.FileSystemEvent, restarts: bool
) -> None:
    assert restarts_for(event) is restarts
