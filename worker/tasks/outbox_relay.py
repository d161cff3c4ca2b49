"""Publishes pending alert outbox rows to the alerts topic, in order, then marks them sent.

One relay publishes at a time across replicas (a session advisory lock held from the read of
the pending rows to their mark, with no transaction open meanwhile: the consumers' writes and
vacuum never wait on the broker), so a deal's or an account's alerts reach Kafka in the order
they were written. Key = the deal or account id; headers ``alert_id``, ``kind`` and ``entity``
("deal" or "account"). The producer is idempotent with acks=all; rows are marked only after
the broker acknowledged them. A crash after the publish and before the mark republishes those
alerts with the same ``alert_id`` (consumers dedupe by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import asyncpg
from aiokafka import AIOKafkaProducer

from worker.kafka.producer import send_all
from worker.log import get_logger
from worker.retry import retry_transient
from worker.store import outbox
from worker.tasks.base import BackgroundTask


class OutboxRelay(BackgroundTask):
    task_name = "outbox-relay"

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        topic: str,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.topic = topic
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.published = 0
        self._wake = asyncio.Event()
        self.log = get_logger(component="outbox-relay", topic=topic)

    def nudge(self) -> None:
        """New rows were committed: publish now instead of at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            while await retry_transient(self.publish_pending, "outbox_publish"):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of pending alerts; return how many (0: none, or another relay
        holds the lock)."""
        async with self.pool.acquire() as conn:
            if not await outbox.lock_relay(conn):
                return 0
            try:
                rows = await self._publish(conn)
            finally:
                await outbox.unlock_relay(conn)
        if not rows:
            return 0
        for r in rows:
            self.log.info(
                "alert_published",
                alert_id=str(r["alert_id"]),
                **{f"{r['entity']}_id": r["deal_id"]},  # deal_id or account_id
                kind=r["kind"],
                level=json.loads(r["payload"])["level"],
            )
        self.published += len(rows)
        return len(rows)

    async def _publish(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        """Publish the oldest pending rows, then mark them (the relay's lock held)."""
        rows = await outbox.pending(conn, self.batch_size)
        if not rows:
            return []
        await send_all(
            self.producer,
            self.topic,
            [
                (
                    r["deal_id"].encode(),
                    r["payload"].encode(),
                    [
                        ("alert_id", str(r["alert_id"]).encode()),
                        ("kind", r["kind"].encode()),
                        ("entity", r["entity"].encode()),
                    ],
                )
                for r in rows
            ],
        )
        await outbox.mark_published(conn, [r["seq"] for r in rows])
        return rows

    async def backlog(self) -> int:
        return await outbox.backlog(self.pool)
