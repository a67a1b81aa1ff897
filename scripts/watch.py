"""Which file changes restart `make dev`'s servers: a created, changed, moved or deleted file of the app's code.

A file merely read (opened, or closed unwritten) restarts nothing: watchdog reports
those since 2.3, and the servers' own imports would restart them mid-request. The app's
code is app.py, chalicelib/ and .chalice/config.json; both chalice local
(scripts/chalice_local.py) and the queue consumers (scripts/dev.py) restart for it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from watchdog import events
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

ROOT = Path(__file__).resolve().parent.parent
CHANGES = frozenset({
    events.EVENT_TYPE_CREATED, events.EVENT_TYPE_MODIFIED, events.EVENT_TYPE_MOVED,
    events.EVENT_TYPE_DELETED, events.EVENT_TYPE_CLOSED,
})


def is_app_code(path: str | bytes) -> bool:
    name = Path(os.fsdecode(path)).resolve()
    if not name.is_relative_to(ROOT) or "__pycache__" in name.parts:
        return False
    relative = name.relative_to(ROOT).as_posix()
    return relative in {"app.py", ".chalice/config.json"} or (
        relative.startswith("chalicelib/") and relative.endswith(".py")
    )


def restarts_for(event: events.FileSystemEvent) -> bool:
    if event.is_directory or event.event_type not in CHANGES:
        return False
    return is_app_code(event.src_path) or is_app_code(event.dest_path or "")


class RestartOnChange(events.FileSystemEventHandler):
    def __init__(self, restart: threading.Event) -> None:
        self._restart = restart

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        if restarts_for(event):
            self._restart.set()


def watch_app_code(restart: threading.Event, root: Path = ROOT) -> BaseObserver:
    """Sets ``restart`` on each change to the app's code; a started observer (a daemon thread)."""
    # Only where the app's code lives: a watch over .venv too overflows inotify's queue.
    handler = RestartOnChange(restart)
    observer = Observer()
    observer.schedule(handler, str(root), recursive=False)
    observer.schedule(handler, str(root / ".chalice"), recursive=False)
    observer.schedule(handler, str(root / "chalicelib"), recursive=True)
    observer.daemon = True
    observer.start()
    return observer
