"""Child processes that die with the test run, however it ends."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# Runs first in each child and then becomes the real command: the child is
# killed when the test process dies, however it dies (Linux's PR_SET_PDEATHSIG,
# kept across exec), so that an interrupted run leaves no emulator behind.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "try:\n    ctypes.CDLL('libc.so.6').prctl(1, 9)\nexcept OSError:\n    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def launch(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _DIE_WITH_PARENT, *command], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
