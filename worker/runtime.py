"""The interpreter's settings for a long-running worker process."""

from __future__ import annotations

import gc

# Allocations of container objects between two collections of the youngest generation (the
# interpreter's default: 700). A tick's page keeps thousands of scores, alerts and records alive
# until it is written, so at 700 they were traversed again and again as they aged through the
# generations: a daily tick over 100,000 deals took 6.3 s of Python CPU at 700 against 4.9 s at
# 10,000 (bench/bench_tick.py, same machine and run). Unreachable cycles wait a little longer.
YOUNG_COLLECTION_EVERY = 10_000


def tune_gc() -> None:
    """Collect the youngest generation every ``YOUNG_COLLECTION_EVERY`` allocations (the older
    generations' ratios unchanged)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
