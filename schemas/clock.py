"""Clock ticks: time as events, so replays stay exact.

A tick is published into every partition of the deal and account topics (the partition set
explicitly, the key ``clock``), so each partition's order of events and ticks is fixed and a
replay applies every tick exactly where it was. On a tick the worker rescores every open deal
and every account of that partition with "now" = the tick's ``time``.

A tick's id names its instant, topic and partition (:func:`tick_id`): the same tick published
twice (two publishers, a retry, ``revintel tick`` by hand) is applied once; a tick older than
the partition's last one is stale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.envelope import Envelope, Strict

CLOCK_SUBJECT = "clock"
TICK_TYPE = "clock.tick"


class TickData(Strict):
    interval_seconds: Annotated[int, Field(ge=0, description="the publisher's tick period")] = 0


class ClockTick(Envelope):
    type: Literal["clock.tick"]
    subject: Literal["clock"] = CLOCK_SUBJECT
    data: TickData = TickData()


ClockTickAdapter: TypeAdapter[ClockTick] = TypeAdapter(ClockTick)


def tick_id(at: datetime, topic: str, partition: int) -> str:
    """The id of the tick at ``at`` on one partition of one topic."""
    instant = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"tick:{instant}:{topic}:{partition}"


def make_tick(at: datetime, topic: str, partition: int, interval_seconds: int = 0) -> ClockTick:
    """The tick at ``at`` (aware) for one partition of ``topic``."""
    if at.tzinfo is None:
        raise ValueError("a tick's instant must carry a UTC offset")
    return ClockTick(
        id=tick_id(at, topic, partition),
        source="revintel/clock",
        type=TICK_TYPE,
        time=at.astimezone(UTC),
        data=TickData(interval_seconds=interval_seconds),
    )
