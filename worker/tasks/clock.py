"""The clock publisher: every ``REVINTEL_TICK_INTERVAL`` (a day by default) one worker
publishes a tick into every partition of the deal and account topics.

One publisher across replicas: the worker that takes the PostgreSQL session lock
``CLOCK_LOCK`` publishes while its connection lives; the others retry at each tick. A tick
published twice anyway (a takeover at the boundary, ``revintel tick`` by hand) has the same id
and is applied once. The wall clock decides only *when* a tick is published; what it carries is
its instant, the data every replica and replay then applies alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from worker.kafka.ticks import floor_instant, publish_tick
from worker.log import get_logger
from worker.store.clock import try_lead
from worker.tasks.base import ScheduledTask, utcnow


class ClockPublisher(ScheduledTask):
    task_name = "clock-publisher"

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        topics: Sequence[str],
        interval: timedelta,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError("the tick interval must be positive")
        super().__init__(clock, sleep)
        self.pool = pool
        self.producer = producer
        self.topics = list(topics)
        self.interval = interval
        self._leader: asyncpg.Connection | None = None
        self.published = 0
        self.last_tick: datetime | None = None
        self.log = get_logger(component="clock")

    async def _lead(self) -> bool:
        """Whether this worker is the publisher (it keeps the lock's connection)."""
        if self._leader is None or self._leader.is_closed():
            conn = await self.pool.acquire()
            if await try_lead(conn):
                self._leader = conn
                self.log.info("clock_leader", interval_seconds=self.interval.total_seconds())
            else:
                await self.pool.release(conn)
        return self._leader is not None

    async def tick_once(self, at: datetime) -> int:
        """Publish the tick at ``at`` if this worker leads; returns the records sent."""
        if not await self._lead():
            return 0
        sent = await publish_tick(self.producer, self.topics, at, self.interval)
        self.published += 1
        self.last_tick = at
        self.log.info("tick_published", at=at.isoformat(), records=sent)
        return sent

    def due_after(self, after: datetime) -> datetime:
        return floor_instant(after, self.interval) + self.interval

    async def run_due(self, due: datetime) -> None:
        try:
            await self.tick_once(due)
        except Exception as exc:  # retried at the next tick; a missed day is late
            self.log.warning("tick_failed", at=due.isoformat(), error=repr(exc))

    async def _run(self) -> None:
        try:
            await super()._run()
        finally:
            if self._leader is not None:
                await self.pool.release(self._leader)
                self._leader = None
