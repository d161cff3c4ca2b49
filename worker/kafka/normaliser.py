"""Vendor webhook bodies -> canonical deal events on the deal topic.

Records on a vendor's raw topic (HubSpot, Salesforce, Pipedrive) are mapped by that vendor's
adapter and published to the deal topic keyed by deal id, acknowledged by the broker before the
raw records' offsets commit. The scorer then reads one topic, where each deal's events and the
clock's ticks have one order per partition. A vendor's redelivery maps to the same event ids
and is deduplicated downstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from worker.domain.batch import BatchOutcome, Incoming, Rejected
from worker.kafka.producer import send_all


@dataclass(slots=True)
class NormalisedOutcome(BatchOutcome[Any]):
    """Events published to the deal topic (``applied``) and what could not be mapped."""

    def summary(self) -> dict[str, int]:
        return {"published": len(self.applied)}


async def publish_canonical(
    producer: Callable[[], AIOKafkaProducer],
    deal_topic: str,
    items: list[Incoming[Any]],
    dead_letter: Callable[[list[Rejected]], Awaitable[None]],
) -> NormalisedOutcome:
    """Publish the mapped events to ``deal_topic`` (key = deal id), in record order."""
    out = NormalisedOutcome()
    if items:
        await send_all(
            producer(),
            deal_topic,
            [
                (i.event.subject.encode(), i.event.model_dump_json(exclude_none=True).encode(), ())
                for i in items
            ],
        )
        out.applied.extend(items)
    return out
