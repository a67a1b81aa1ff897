"""Child processes that die with the process that started them, however it ends (Linux's PR_SET_PDEATHSIG).

`make dev` starts each server in a session of its own, so that stopping one stops
what it started too; but then a SIGKILL or a closed terminal would leave them all
running, holding their ports. Elsewhere than Linux the children live on as before.
"""

from __future__ import annotations

import sys

# Runs first in the child and then becomes the real command: the signal is
# kept across exec.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGKILL)\nexcept (OSError, AttributeError):\n    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def dying_with_parent(command: list[str]) -> list[str]:
    """The command, run so that it is killed when its parent dies; command[0] is a path to an executable."""
    return [sys.executable, "-c", _DIE_WITH_PARENT, *command]
