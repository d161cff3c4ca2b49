"""Benchmark: the peak RSS of ``revintel run`` with no trained model and with a deal champion
(issue 11's RSS target: <= 250 MB), against the real local Kafka and PostgreSQL.

    eval "$(bash scripts/services.sh env)"
    .venv/bin/python bench/bench_rss.py [--seconds S] [--no-champion]

A fresh database (migrated, dropped afterwards) and topics of its own; the worker is started
idle (nothing to consume) for ``--seconds`` (default 20) and its ``VmHWM`` read before the stop:
the memory it holds to serve, without the growth of a large batch. Then a deal model is trained
on the public CRM export (``bench/bench_tick.py``'s model; the tests' known-signal history
without the export), registered as champion, and the same is measured with the champion
loaded (its unpickling imports scikit-learn, scipy and pandas, which a worker without a model
never imports). ``bench/bench_throughput.py`` reports the RSS while consuming, without a model.
Exit status 1 when the worker without a model exceeds the target.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_throughput import TARGETS, Names, services, worker_proc
from tests.services import fresh_database


async def idle_rss(url: str, bootstrap: str, seconds: float, logs: Path, label: str) -> float:
    """Peak RSS (MB) of a worker left idle for ``seconds``."""
    names = Names(f"bench-rss-{uuid.uuid4().hex[:6]}")
    proc = worker_proc(label, names.worker_env(url, bootstrap, 1, forecast=False), logs)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            proc.check_alive()
            await asyncio.sleep(0.5)
    finally:
        await proc.stop()
    if proc.peak_rss_mb is None:
        raise RuntimeError(f"{label}: no RSS read\n{proc.tail()}")
    return proc.peak_rss_mb


async def main(seconds: float, champion: bool) -> int:
    database, bootstrap = services()
    logs = Path(tempfile.mkdtemp(prefix="bench_rss_"))
    async with fresh_database(database, prefix="bench_rss") as url:
        without = await idle_rss(url, bootstrap, seconds, logs, "worker")
        print(f"worker, no trained model:  peak RSS {without:6.1f} MB (target <= 250)")
        if champion:
            from bench.bench_tick import register_champion
            from worker.store.pool import create_pool

            pool = await create_pool(url)
            try:
                await register_champion(pool)
            finally:
                await pool.close()
            loaded = await idle_rss(url, bootstrap, seconds, logs, "worker-champion")
            print(f"worker, deal champion:     peak RSS {loaded:6.1f} MB")
    print(f"logs: {logs}")
    return 0 if without <= TARGETS["rss_mb"] else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-champion", dest="champion", action="store_false")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.seconds, args.champion)))
