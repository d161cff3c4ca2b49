"""Dead letters: a record that cannot be applied goes to ``<its topic>.dlq`` with its original
key, value and headers, plus headers naming the error and where it came from."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from structlog.stdlib import BoundLogger

from worker.domain.batch import Rejected
from worker.kafka.producer import send_all
from worker.kafka.topics import dlq_topic
from worker.retry import retry_transient


def dead_letter(rejected: Rejected) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The original bytes and headers, plus headers naming the error and where it came from."""
    ref = rejected.ref
    headers = [
        *ref.headers,
        ("dlq.error", rejected.error.encode()),
        ("dlq.reason", rejected.reason.encode()[:4000]),
        ("dlq.source.topic", ref.topic.encode()),
        ("dlq.source.partition", str(ref.partition).encode()),
        ("dlq.source.offset", str(ref.offset).encode()),
    ]
    return ref.key, ref.value or b"", headers


async def publish_dead_letters(
    producer: AIOKafkaProducer, rejected: Iterable[Rejected], log: BoundLogger
) -> None:
    """Each rejected record to ``<its topic>.dlq``, acknowledged by the broker (acks=all)
    before the batch's offsets can be committed; transient failures are retried."""
    by_topic: dict[str, list] = {}
    for r in rejected:
        log.warning("event_rejected", error=r.error, reason=r.reason, **r.ref.log_context())
        by_topic.setdefault(dlq_topic(r.ref.topic), []).append(dead_letter(r))

    async def send() -> None:
        for topic, messages in by_topic.items():
            await send_all(producer, topic, messages)

    if by_topic:
        await retry_transient(send, "dead_letter")
