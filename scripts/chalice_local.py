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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalice.cli import main as chalice_main
from chalice.cli import reloader
from chalice.cli.filewatch import RESTART_REQUEST_RC
from chalice.cli.filewatch.eventbased import WatchdogWorkerProcess

from scripts.processes import dying_with_parent
from scripts.watch import watch_app_code


class Worker(WatchdogWorkerProcess):
    def _start_file_watcher(self, project_dir: str) -> None:
        watch_app_code(self._restart_event, Path(project_dir))


def main() -> int:
    if os.environ.get("CHALICE_WORKER"):
        reloader.get_best_worker_process = lambda: Worker
        sys.argv = ["chalice", "local", *sys.argv[1:]]
        return int(chalice_main())
    # The parent: what chalice's own parent does, but it starts this script again.
    try:
        while True:
            worker = subprocess.run(
                dying_with_parent([sys.executable, __file__, *sys.argv[1:]]),
                env={**os.environ, "CHALICE_WORKER": "true"}, check=False,
            )
            if worker.returncode != RESTART_REQUEST_RC:
                return worker.returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
