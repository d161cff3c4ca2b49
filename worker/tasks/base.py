"""Tasks a worker runs beside consuming (outbox relay, metrics, forecasts, retention)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any


class BackgroundTask:
    """An asyncio task started and stopped with the worker. Subclasses implement ``_run``."""

    task_name = "background"

    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (idempotent)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        raise NotImplementedError


def utcnow() -> datetime:
    return datetime.now(UTC)


class ScheduledTask(BackgroundTask):
    """A task run at the instants of a schedule (clock ticks, forecasts, retraining).

    The wall clock decides only *when* a run starts; ``clock`` and ``sleep`` are test hooks.
    Instants missed while a run overran are skipped, not caught up. Subclasses give the
    schedule (``due_after``) and the run (``run_due``), which deals with its own failures: the
    schedule goes on. ``next_due`` is the instant waited for (for metrics)."""

    next_due: datetime | None = None

    def __init__(
        self,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep

    def due_after(self, after: datetime) -> datetime:
        """The schedule's next instant strictly after ``after``."""
        raise NotImplementedError

    async def run_due(self, due: datetime) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        after = self._clock()
        while True:
            due = self.next_due = self.due_after(after)
            delay = (due - self._clock()).total_seconds()
            if delay > 0:
                await self._sleep(delay)
            await self.run_due(due)
            after = max(due, self._clock())
