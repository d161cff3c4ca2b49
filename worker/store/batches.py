"""One transaction per run of events, whatever the event family: claim the event ids (those
applied before are duplicates), lock the subjects, fold the events (pure, ``worker.domain``),
write the family's effects, settle the stale and failed ids, and dead-letter what failed in
processing, before the commit. (Applying a batch's partitions side by side, each in its own
transactions, was measured slower: twice PostgreSQL's CPU per event for the round trips.)

A clock tick in the batch ends a run: the events before it are committed first, then the tick
ages its partition (``worker.store.clock``), then the next run starts. So every partition sees
its events and ticks in record order, as a replay will.

A family is a :class:`Projection`: how its current states are locked, folded, written and aged.
Deals and accounts are two projections of this one mechanism.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from schemas.clock import ClockTick
from worker.domain.batch import BatchOutcome, Incoming, Rejected
from worker.store import events
from worker.store.clock import Age, apply_tick

State = TypeVar("State")
Out = TypeVar("Out", bound=BatchOutcome[Any])

Fold = Callable[[Mapping[str, State], Iterable[str], Iterable[Incoming[Any]]], Out]
DeadLetter = Callable[[list[Rejected]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Projection(Generic[State, Out]):
    """Where one family's events land: ``lock`` loads (and row-locks) the current states of a
    batch's subjects, ``fold`` applies the events to them (pure), ``write`` stores the result,
    ``age`` rescores the rows of one partition as of a clock tick."""

    lock: Callable[[asyncpg.Connection, Sequence[str]], Awaitable[Mapping[str, State]]]
    fold: Fold[State, Out]
    write: Callable[[asyncpg.Connection, Out], Awaitable[None]]
    age: Age[Out]

    def empty(self) -> Out:
        return self.fold({}, (), ())

    @classmethod
    def of(
        cls, table: Any, fold: Callable[..., Out], bound: Callable[[], Mapping[str, Any]]
    ) -> Projection[Any, Out]:
        """The projection of a ``worker.store`` table module (its ``lock``, ``write`` and
        ``age``) with its pure ``fold``: ``bound`` gives the keyword arguments the fold and
        the ageing take (framework, models), asked at every call (a champion may change while
        the worker runs)."""
        return cls(
            lock=table.lock,
            fold=lambda current, seen, items: fold(current, seen, items, **bound()),
            write=table.write,
            age=lambda pool, partition, tick, *, writing: table.age(
                pool, partition, tick, writing=writing, **bound()
            ),
        )


Ticks = tuple[Incoming[ClockTick], ...]


def runs(items: Iterable[Incoming[Any]]) -> list[list[Incoming[Any]] | Ticks]:
    """The batch cut at its ticks, in order: runs of events, and groups of consecutive ticks
    of distinct partitions (independent of each other: they age different rows)."""
    parts: list[list[Incoming[Any]] | Ticks] = []
    run: list[Incoming[Any]] = []
    for item in items:
        if not isinstance(item.event, ClockTick):
            run.append(item)
            continue
        if run:
            parts.append(run)
            run = []
        last = parts[-1] if parts else None
        if isinstance(last, tuple) and item.ref.partition not in {t.ref.partition for t in last}:
            parts[-1] = (*last, item)
        else:
            parts.append((item,))
    if run:
        parts.append(run)
    return parts


async def apply_batch(
    pool: asyncpg.Pool,
    projection: Projection[Any, Out],
    items: list[Incoming[Any]],
    dead_letter: DeadLetter,
) -> Out:
    """Apply ``items`` (events and ticks) and return what happened to each: a run of events
    in one transaction, then a group of ticks, in the batch's order."""
    outcome = projection.empty()
    for part in runs(items):
        if isinstance(part, tuple):
            outcome.merge(await age_side_by_side(pool, projection, part))
            continue
        async with pool.acquire() as conn, conn.transaction():
            applied = await apply_events(conn, projection, part)
            # Deterministic failures are dead-lettered before the commit: if the commit then
            # fails, the batch is redone and they are dead-lettered again (same source offset).
            await dead_letter(applied.failed)
        outcome.merge(applied)
    return outcome


async def apply_events(
    conn: asyncpg.Connection, projection: Projection[Any, Out], items: list[Incoming[Any]]
) -> Out:
    """Apply a run of events in the transaction of ``conn``: claim, lock, fold, write, settle."""
    subjects = sorted({i.event.subject for i in items})
    seen = await events.claim(conn, items)  # before the subjects' locks: see claim
    current = await projection.lock(conn, subjects)
    outcome = projection.fold(current, seen, items)
    await projection.write(conn, outcome)
    claimed = {i.event.id for i in items} - seen
    await events.settle(conn, claimed, outcome.applied, outcome.stale)
    return outcome


async def age_side_by_side(
    pool: asyncpg.Pool, projection: Projection[Any, Out], ticks: Ticks
) -> Out:
    """Age the partitions of ``ticks`` (distinct partitions) in parallel: one's SQL runs while
    another scores (a failure cancels the others; the batch is redone and applied ticks are
    skipped).

    Their pages are written one at a time: the scoring is held to one core by the
    interpreter's lock, and one database session writing keeps pace with it; three writing at
    once took the core the scoring needed (bench_tick on 2 cores, a daily tick of 100,000
    deals: 6.7 -> 5.9 s, of 1,000,000: 75 -> 62 s; the reads held too: 8.5 s at 100,000)."""
    outcome = projection.empty()
    writing = asyncio.Lock()
    try:
        async with asyncio.TaskGroup() as group:
            aged = [
                group.create_task(
                    apply_tick(pool, projection.age, tick, projection.empty(), writing)
                )
                for tick in ticks
            ]
    except BaseExceptionGroup as failed:
        # the first failure as it is (the others were cancelled): a transient one is then
        # retried as such (worker.retry matches exception types, not groups)
        raise failed.exceptions[0]  # noqa: B904 - the group is its context
    for task in aged:
        outcome.merge(task.result())
    return outcome
