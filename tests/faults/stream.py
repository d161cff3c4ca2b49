"""The fault suite's stream and what a run of it leaves behind.

One stream of seed deals (deal events in time order, weekly clock ticks in every partition),
built once as Kafka records: the ticks' ids name the stream, not the topic, so the same
records published to two topics (with and without malformed messages between them) give the
same alert ids. A run is compared by its :class:`Outcome`: deals (but ``updated_at``),
snapshots, stage history and alert ids.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.clock import CLOCK_SUBJECT, ClockTick, TickData
from worker.kafka.ticks import tick_instants
from worker.testdata.seed import generate_deals

EVENTS = 10_000
PARTITIONS = 3
WEEK = timedelta(days=7)
AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
STREAM = "faults-stream"  # what tick ids name instead of the topic


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    partition: int | None = None  # ticks go to a partition; events by key


@dataclass(frozen=True)
class Stream:
    records: list[Record]
    events: int
    last_tick: datetime


def _tick(at: datetime, partition: int) -> Record:
    tick = ClockTick(
        id=f"tick:{at:%Y-%m-%dT%H:%M:%SZ}:{STREAM}:{partition}",
        source="revintel/clock",
        type="clock.tick",
        time=at,
        data=TickData(interval_seconds=int(WEEK.total_seconds())),
    )
    return Record(CLOCK_SUBJECT.encode(), tick.model_dump_json().encode(), partition)


def build_stream(events: int = EVENTS) -> Stream:
    """``events`` deal events of seed deals (about 11 a deal), weekly ticks between them by
    time, and one tick after the last event (the end marker of every partition)."""
    found = generate_deals(events // 10, 20261126, AS_OF)
    assert len(found) >= events, "the seed made fewer events than asked"
    chosen = sorted(found, key=lambda e: e.time)[:events]
    instants = tick_instants(chosen[0].time, chosen[-1].time + WEEK, WEEK)
    records: list[Record] = []
    pending = list(instants)
    for e in chosen:
        while pending and e.time >= pending[0]:
            at = pending.pop(0)
            records.extend(_tick(at, p) for p in range(PARTITIONS))
        records.append(Record(e.subject.encode(), e.model_dump_json(exclude_none=True).encode()))
    for at in pending:
        records.extend(_tick(at, p) for p in range(PARTITIONS))
    return Stream(records, len(chosen), instants[-1])


def malformed(count: int, seed: int = 7) -> list[Record]:
    """Bad records of every kind the codec rejects: not JSON, empty, wrong shape, unknown type,
    schema violations, key not the subject."""
    rng = random.Random(seed)
    bad: list[Record] = []
    for i in range(count):
        key = f"bad-{i}".encode()
        kind = i % 6
        if kind == 0:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif kind == 1:
            value = b""
        elif kind == 2:
            value = b'{"id": "x", "truncated": '
        elif kind == 3:
            value = json.dumps({"id": f"bad-{i}", "type": "deal.teleported"}).encode()
        elif kind == 4:
            value = json.dumps(
                {
                    "id": f"bad-{i}",
                    "source": "faults",
                    "type": "deal.created",
                    "time": "2026-01-01T00:00:00Z",
                    "subject": f"bad-{i}",
                    "data": {"stage": "prospecting", "amount": -5},
                }
            ).encode()
        else:
            value = json.dumps(
                {
                    "id": f"bad-{i}",
                    "source": "faults",
                    "type": "deal.updated",
                    "time": "2026-01-01T00:00:00Z",
                    "subject": "someone-else",
                    "data": {},
                }
            ).encode()
        bad.append(Record(key, value))
    return bad


def interleave(records: list[Record], bad: list[Record], seed: int = 11) -> list[Record]:
    """``bad`` scattered among ``records`` (whose order is kept)."""
    rng = random.Random(seed)
    slots = sorted(rng.randrange(len(records) + 1) for _ in bad)
    out: list[Record] = []
    j = 0
    for i, record in enumerate(records):
        while j < len(slots) and slots[j] == i:
            out.append(bad[j])
            j += 1
        out.append(record)
    out.extend(bad[j:])
    return out


async def publish_records(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Publish in order, acknowledged (acks=all, idempotent) in chunks."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        for start in range(0, len(records), 2000):
            futures = [
                await producer.send(topic, value=r.value, key=r.key, partition=r.partition)
                for r in records[start : start + 2000]
            ]
            for f in futures:
                await f
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Outcome:
    deals: list[dict]
    snapshots: list[dict]
    history: list[dict]
    alerts: list[dict]


async def outcome_of(url: str) -> Outcome:
    conn = await asyncpg.connect(url)
    try:
        deals = await conn.fetch("SELECT * FROM deals ORDER BY deal_id")
        snapshots = await conn.fetch("SELECT * FROM deal_snapshots ORDER BY snapshot_date, deal_id")
        history = await conn.fetch("SELECT * FROM deal_stage_history ORDER BY deal_id, entered_at")
        alerts = await conn.fetch(
            "SELECT alert_id, deal_id, kind, payload FROM alert_outbox ORDER BY alert_id"
        )
    finally:
        await conn.close()
    return Outcome(
        deals=[{k: v for k, v in dict(r).items() if k != "updated_at"} for r in deals],
        snapshots=[dict(r) for r in snapshots],
        history=[dict(r) for r in history],
        alerts=[dict(r) for r in alerts],
    )


async def progress(url: str, last_tick: datetime) -> tuple[int, int]:
    """(events recorded, partitions at the stream's last tick) of a run's database."""
    conn = await asyncpg.connect(url)
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM applied_events WHERE deal_id <> 'clock'"),
            await conn.fetchval("SELECT count(*) FROM clock WHERE last_tick = $1", last_tick),
        )
    finally:
        await conn.close()
