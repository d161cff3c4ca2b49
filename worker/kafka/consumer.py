"""The one batch consumer, parametrised by event family (deals, accounts, ...).

Flow per batch: decode and validate each record -> dead-letter what cannot be applied -> the
family's ``apply`` (for deals and accounts: each run of events in one database transaction,
each clock tick ageing its partition, dead-lettering what failed in processing before it
commits; for vendor bodies: publishing them to the deal topic) -> tally and log -> return, and
only then FastStream commits the offsets (``AckPolicy.NACK_ON_ERROR``: an exception rewinds the
batch's partitions instead, so the batch is consumed again). Transient failures (database or
broker unavailable) are retried with backoff, never dead-lettered.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord

from worker.domain.batch import BatchOutcome, Incoming, Rejected, SkippedItem
from worker.kafka.dead_letters import publish_dead_letters
from worker.kafka.subscription import partition_lag
from worker.log import get_logger
from worker.retry import retry_transient

Out = TypeVar("Out", bound=BatchOutcome[Any])

DeadLetter = Callable[[list[Rejected]], Awaitable[None]]
Decode = Callable[[Any], "list[Incoming[Any] | Rejected | SkippedItem] | Rejected"]
Apply = Callable[[list[Incoming[Any]], DeadLetter], Awaitable[Out]]


class BatchTimings:
    """Latency of recent batches, partition lag and the time of the last batch."""

    def __init__(self, window: int = 1000) -> None:
        self.latencies_ms: deque[float] = deque(maxlen=window)
        self.lag: dict[tuple[str, int], int] = {}
        self.last_batch_at: datetime | None = None
        self.started = time.monotonic()

    def observe(self, seconds: float, lag: dict[tuple[str, int], int]) -> None:
        self.latencies_ms.append(seconds * 1000)
        self.lag.update(lag)
        self.last_batch_at = datetime.now(UTC)

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


@dataclass(frozen=True, slots=True)
class EventFamily(Generic[Out]):
    """How one family of events is consumed: the plug-in of :class:`BatchConsumer`.

    ``name`` prefixes its log lines ("deal" -> ``batch_applied``, others ``<name>_batch_applied``)
    and ``subject`` names the key its subject id is logged under (``deal_id``).
    ``decode`` turns a record into validated events or a rejection; ``apply`` applies a batch in
    one transaction and dead-letters, through the callback it gets, what failed in processing,
    before it commits.
    """

    name: str
    subject: str
    topics: tuple[str, ...]
    decode: Decode
    apply: Apply[Out]
    after_commit: Callable[[Out], None] = field(default=lambda outcome: None)

    @property
    def log_prefix(self) -> str:
        return "" if self.name == "deal" else f"{self.name}_"


class BatchConsumer(Generic[Out]):
    """Consumes batches of one event family; ``stats`` holds running totals since start."""

    def __init__(
        self,
        family: EventFamily[Out],
        producer: Callable[[], AIOKafkaProducer],
        timings: BatchTimings | None = None,
    ) -> None:
        self.family = family
        self.producer = producer  # the worker's, once it has started
        self.timings = timings or BatchTimings()
        self.stats: Counter[str] = Counter()
        self.log = get_logger(component=f"{family.name}-consumer")

    async def handle_batch(self, records: Sequence[ConsumerRecord], consumer: Any = None) -> Out:
        started = time.perf_counter()
        valid: list[Incoming[Any]] = []
        rejected: list[Rejected] = []
        skipped = 0
        for record in records:
            out = self.family.decode(record)
            if isinstance(out, Rejected):
                rejected.append(out)
                continue
            for item in out:  # a vendor batch may hold good items, bad ones and others'
                if isinstance(item, SkippedItem):
                    skipped += 1
                else:
                    (rejected if isinstance(item, Rejected) else valid).append(item)
        await self.dead_letter(rejected)
        outcome = await retry_transient(
            lambda: self.family.apply(valid, self.dead_letter), f"apply_{self.family.name}_batch"
        )
        self.family.after_commit(outcome)
        self._tally(len(records), len(rejected), outcome)
        unmapped = sum(r.error == "unmapped_stage" for r in rejected)
        self.stats.update(skipped=skipped, stages_unmapped=unmapped)  # vendor items
        seconds = time.perf_counter() - started
        self.timings.observe(seconds, partition_lag(records, consumer))
        self._log(outcome, len(records), seconds)
        return outcome

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        if rejected:
            await publish_dead_letters(self.producer(), rejected, self.log)

    def _tally(self, records: int, rejected: int, outcome: Out) -> None:
        self.stats.update(
            batches=1,
            consumed=records,
            applied=len(outcome.applied),
            duplicates=len(outcome.duplicates),
            stale=len(outcome.stale),
            dead_lettered=rejected + len(outcome.failed),
            **{k: v for k, v in outcome.summary().items() if k == "alerts"},
        )

    def _log(self, outcome: Out, records: int, seconds: float) -> None:
        """A debug line per applied event, an info line per skipped one (duplicate or stale)
        and a summary line for the batch."""
        prefix, subject = self.family.log_prefix, self.family.subject
        # the per-event context costs microseconds an event: built only when it is logged
        applied = outcome.applied if self.log.is_enabled_for(logging.DEBUG) else ()
        for item in applied:
            self.log.debug(
                f"{prefix}event_applied",
                **{subject: item.event.subject},
                event_id=item.event.id,
                event_type=item.event.type,
                **outcome.event_context(item),
                **item.ref.log_context(),
            )
        for kind, items in (("duplicate", outcome.duplicates), ("stale", outcome.stale)):
            for item in items:
                self.log.info(
                    f"{prefix}event_{kind}",
                    **{subject: item.event.subject},
                    event_id=item.event.id,
                    **item.ref.log_context(),
                )
        self.log.info(
            f"{prefix}batch_applied",
            records=records,
            applied=len(outcome.applied),
            duplicates=len(outcome.duplicates),
            stale=len(outcome.stale),
            failed=len(outcome.failed),
            **outcome.summary(),
            ms=round(seconds * 1000, 1),
        )
