"""Tasks a worker runs beside consuming (outbox relay, metrics, forecasts, retention)."""

from __future__ import annotations

import asyncio
import contextlib


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
