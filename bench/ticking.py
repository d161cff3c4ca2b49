"""What the clock benchmarks share (``bench_tick.py`` for deals, ``bench_account_tick.py`` for
accounts): a fresh bench database, a tick of every partition applied as the worker applies a
batch of ticks, and phases timed with the CPU they cost on each side (Python, PostgreSQL)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from schemas.clock import make_tick
from tests.services import fresh_database
from worker.app import tune_garbage_collector
from worker.domain.batch import Incoming, RecordRef
from worker.log import configure_logging
from worker.store.batches import Projection, apply_batch
from worker.store.pool import create_pool

LONG = 3600.0  # the set-based fill and baselines outlast the pool's command timeout


@asynccontextmanager
async def bench_pool(tables: Sequence[str]) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated database (dropped afterwards) whose ``tables`` are not
    autovacuumed: a worker still busy on them when the database is dropped (a superuser's
    process) would block the drop."""
    configure_logging("WARNING", json=False)
    server = os.environ.get(
        "DATABASE_URL", "postgresql://revintel:revintel@127.0.0.1:5432/revintel"
    )
    async with fresh_database(server, "revintel_bench") as url:
        pool = await create_pool(url)  # the worker's size
        try:
            for table in tables:
                await pool.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            yield pool
        finally:
            await pool.close()


async def _nothing(rejected: list[Any]) -> None:
    return None


async def tick_all(
    pool: asyncpg.Pool, projection: Projection, topic: str, partitions: int, at: datetime
) -> int:
    """Every partition's tick at ``at`` in one batch, as the worker applies them; prints and
    returns how many subjects were aged."""
    ticks = [
        Incoming(make_tick(at, topic, p, 86400), RecordRef(topic, p, 0, b"clock", None, ()))
        for p in range(partitions)
    ]
    out = await apply_batch(pool, projection, ticks, dead_letter=_nothing)
    print(f"  aged {out.aged:,} {out.noun}, {len(out.alerts):,} alerts raised")
    return out.aged


@dataclass(frozen=True, slots=True)
class Timing:
    seconds: float
    python: float  # CPU seconds of this process (every thread)
    postgres: float | None  # CPU seconds of the pool's server processes (None: not readable)


def _backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) the server processes ``pids`` used so far, when they run on
    this machine (their /proc entries readable), else None."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


async def _server_pids(pool: asyncpg.Pool) -> list[int]:
    # every connection of the pool opened first, so the server processes are known up front
    conns = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        return [c.get_server_pid() for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


async def timed(label: str, work: Awaitable[Any], pool: asyncpg.Pool) -> Timing:
    """Wall time of ``work``, and the CPU time of this process and of the pool's server
    processes (where the time went: Python or PostgreSQL, whatever the machine's load)."""
    pids = await _server_pids(pool)
    load = os.getloadavg()[0]
    cpu, server = time.process_time(), _backend_cpu(pids)
    start = time.perf_counter()
    await work
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    after = _backend_cpu(pids)
    postgres = None if server is None or after is None else after - server
    pg = "?" if postgres is None else f"{postgres:.1f} s"
    print(
        f"  {label:<56} {seconds:8.2f} s  (load before {load:.1f}; "
        f"CPU: Python {cpu:.1f} s, PostgreSQL {pg})",
        flush=True,
    )
    return Timing(seconds, cpu, postgres)


async def filled(pool: asyncpg.Pool, what: str, started: float, read_sql: str, rows: str) -> Timing:
    """Say what was filled (``what``) and in how long since ``started``, tune the garbage
    collector as ``revintel run`` does once started, and time the read baseline: ``read_sql``
    reading every one of the ``rows``' inputs."""
    print(f"{what} (filled in {time.perf_counter() - started:.1f} s, {os.cpu_count()} cores)")
    tune_garbage_collector()
    return await timed(
        f"baseline read: every {rows}'s inputs", pool.fetch(read_sql, timeout=LONG), pool
    )


def against(seconds: float, read: Timing, write: Timing) -> str:
    """``seconds`` as multiples of the read and rewrite baselines of the same run."""
    r, w = read.seconds, write.seconds
    return (
        f"{seconds / r:.1f}x the read baseline, {seconds / w:.1f}x the rewrite baseline, "
        f"{seconds / (r + w):.1f}x both"
    )
