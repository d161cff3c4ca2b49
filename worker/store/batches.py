"""One transaction per consumed batch, whatever the event family: lock the subjects, drop
event ids already applied, fold the events (pure, ``worker.domain``), write the family's
effects and the event ids, and dead-letter what failed in processing, before the commit.

A family is a :class:`Projection`: how its current states are locked and how an outcome is
written. Deals and accounts are two projections of this one mechanism.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from worker.domain.batch import BatchOutcome, Incoming, Rejected
from worker.store import events

State = TypeVar("State")
Out = TypeVar("Out", bound=BatchOutcome[Any])

Fold = Callable[[Mapping[str, State], Iterable[str], Iterable[Incoming[Any]]], Out]
DeadLetter = Callable[[list[Rejected]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Projection(Generic[State, Out]):
    """Where one family's events land: ``lock`` loads (and row-locks) the current states of a
    batch's subjects, ``fold`` applies the events to them (pure), ``write`` stores the result."""

    lock: Callable[[asyncpg.Connection, Sequence[str]], Awaitable[Mapping[str, State]]]
    fold: Fold[State, Out]
    write: Callable[[asyncpg.Connection, Out], Awaitable[None]]


async def apply_batch(
    pool: asyncpg.Pool,
    projection: Projection[Any, Out],
    items: list[Incoming[Any]],
    dead_letter: DeadLetter,
) -> Out:
    """Apply ``items`` in one transaction and return what happened to each."""
    if not items:
        return projection.fold({}, (), ())
    subjects = sorted({i.event.subject for i in items})
    async with pool.acquire() as conn, conn.transaction():
        current = await projection.lock(conn, subjects)
        seen = await events.seen(conn, [i.event.id for i in items])
        outcome = projection.fold(current, seen, items)
        await projection.write(conn, outcome)
        await events.record(conn, outcome.applied, outcome.stale)
        # Deterministic failures are dead-lettered before the commit: if the commit then
        # fails, the batch is redone and they are dead-lettered again (same source offset).
        await dead_letter(outcome.failed)
    return outcome
