"""The schedule every scheduled task shares (clock ticks, forecasts, retraining): each instant
runs once, from the task's own schedule; instants missed while a run overran are skipped; a
sleep that ends a little early does not run the same instant again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.tasks.fake_clock import FakeClock
from worker.engine import load_framework
from worker.tasks.base import ScheduledTask
from worker.tasks.clock import ClockPublisher
from worker.tasks.retrain import DEFAULT_CRON, Retrainer


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Quarterly(ScheduledTask):
    """Every 15 minutes; the second run overruns by 40 minutes; parks at the fourth."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, clock.sleep)
        self.clock = clock
        self.ran: list[datetime] = []
        self.done = asyncio.Event()

    def due_after(self, after: datetime) -> datetime:
        quarter = after.replace(minute=after.minute - after.minute % 15, second=0, microsecond=0)
        return quarter + timedelta(minutes=15)

    async def run_due(self, due: datetime) -> None:
        self.ran.append(due)
        if len(self.ran) == 2:
            self.clock.now += timedelta(minutes=40)
        if len(self.ran) == 4:
            self.done.set()
            await asyncio.Event().wait()


async def test_each_instant_runs_once_and_overrun_instants_are_skipped():
    # each sleep ends a millisecond early by the wall clock
    clock = FakeClock(utc(2026, 3, 14, 1, 40), lag=0.001)
    task = Quarterly(clock)
    task.start()
    await asyncio.wait_for(task.done.wait(), 5)
    await task.stop()
    assert task.ran == [
        utc(2026, 3, 14, 1, 45),
        utc(2026, 3, 14, 2, 0),  # overran to 02:40: 02:15 and 02:30 are skipped
        utc(2026, 3, 14, 2, 45),
        utc(2026, 3, 14, 3, 0),
    ]
    assert task.next_due == utc(2026, 3, 14, 3, 0)
    assert clock.sleeps[0] == 300.0


def test_the_clock_ticks_on_multiples_of_its_interval_and_the_retrainer_on_its_cron():
    clock = ClockPublisher(None, None, ["deals"], timedelta(days=1))
    assert clock.due_after(utc(2026, 3, 14, 13, 5)) == utc(2026, 3, 15)
    assert clock.due_after(utc(2026, 3, 15)) == utc(2026, 3, 16)  # strictly after
    retrain = Retrainer(None, load_framework(), cron=DEFAULT_CRON)
    assert retrain.due_after(utc(2026, 11, 26, 4)) == utc(2026, 11, 29, 3)
