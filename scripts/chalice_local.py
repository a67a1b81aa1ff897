"""`chalice local` whose reloader restarts the server when the app's code changes, not when a file is read.

Chalice 1.34 restarts its worker on every watchdog event. Since watchdog 2.3 those
include a file being opened or closed unwritten, and watchdog is here (mkdocs needs
it), so the server's own first imports during a request restarted it mid-request:
the poster saw its connection reset. This runs the same command with a watcher that
restarts only on a created, changed, moved or deleted file of the app (app.py,
chalicelib/, .chalice/config.json), as werkzeug's and dramatiq's reloaders do.

Usage: python scripts/chalice_local.py [chalice local options]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from chalice.cli import main as chalice_main
from chalice.cli import reloader
from chalice.cli.filewatch import RESTART_REQUEST_RC
from chalice.cli.filewatch.eventbased import WatchdogWorkerProcess
from watchdog import events
from watchdog.observers import Observer

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


class Worker(WatchdogWorkerProcess):
    def _start_file_watcher(self, project_dir: str) -> None:
        # Only where the app's code lives: a watch over .venv too overflows inotify's queue.
        handler, root = RestartOnChange(self._restart_event), Path(project_dir)
        observer = Observer()
        observer.schedule(handler, str(root), recursive=False)
        observer.schedule(handler, str(root / ".chalice"), recursive=False)
        observer.schedule(handler, str(root / "chalicelib"), recursive=True)
        observer.start()


def main() -> int:
    if os.environ.get("CHALICE_WORKER"):
        reloader.get_best_worker_process = lambda: Worker
        sys.argv = ["chalice", "local", *sys.argv[1:]]
        return int(chalice_main())
    # The parent: what chalice's own parent does, but it starts this script again.
    try:
        while True:
            worker = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:]], env={**os.environ, "CHALICE_WORKER": "true"}, check=False
            )
            if worker.returncode != RESTART_REQUEST_RC:
                return worker.returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
