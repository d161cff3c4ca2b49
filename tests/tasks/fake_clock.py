"""A scheduled task's ``clock`` and ``sleep`` hooks without the wall clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    """``clock`` (the instance) and ``sleep``: a sleep moves time on by what was asked, less
    ``lag`` seconds (a wall clock read just before the instant slept for), and records it."""

    def __init__(self, now: datetime, lag: float = 0.0) -> None:
        self.now = now
        self.lag = lag
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds - self.lag)
        await asyncio.sleep(0)
