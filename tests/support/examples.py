"""How many examples a property test draws: its own count, scaled by EXAMPLES_SCALE (`make quick` draws a fifth)."""

from __future__ import annotations

import os

SCALE = float(os.environ.get("EXAMPLES_SCALE", "1"))


def examples(count: int) -> int:
    return max(10, round(count * SCALE))
