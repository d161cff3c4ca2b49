"""The Kafka side of account events: decode, dead-letter, apply a batch in one transaction.

Flow per batch (as for deals, ``worker.handlers``): decode and validate each record -> dead-letter
what cannot be applied to ``<topic>.dlq`` -> in one database transaction: lock the accounts,
drop already-applied event ids, merge, score, upsert set-based, remember the event ids in
``applied_events`` -> return, and only then FastStream commits the offsets (NACK_ON_ERROR: an
exception rewinds the partitions, so the batch is consumed again). Transient database or broker
failures are retried, never dead-lettered.

Wiring: ``AccountHandler(settings, pool, producer, framework)`` (pool and producer may be bound
later with ``bind``, e.g. in ``DealWorker.start``) and ``register_account_subscriber(broker,
settings, handler)`` on the broker that consumes the deal topics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from schemas.account_events import ACCOUNT_EVENT_TYPES, AccountEventAdapter
from worker import store
from worker.accounts import (
    STATE_COLUMNS,
    AccountBatchOutcome,
    AccountIncoming,
    AccountState,
    account_rows_json,
    apply_account_batch,
    state_from_row,
)
from worker.codec import RecordRef, Rejected, precheck, validate_envelope
from worker.consuming import batch_subscriber_options, log_batch, publish_dead_letters, tally
from worker.engine import Framework, load_framework
from worker.log import get_logger
from worker.retry import retry_transient
from worker.settings import Settings, dlq_topic

# -- decoding --------------------------------------------------------------------------------


def decode_account(record: Any, max_bytes: int) -> list[AccountIncoming] | Rejected:
    """A consumed record as a validated account event, or the reason it cannot be one."""
    ref = RecordRef.of(record)
    if rejected := precheck(ref, max_bytes):
        return rejected
    event = validate_envelope(ref, ref.value or b"", AccountEventAdapter, ACCOUNT_EVENT_TYPES)
    if isinstance(event, Rejected):
        return event
    return [AccountIncoming(event, ref)]


# -- PostgreSQL ------------------------------------------------------------------------------

# Columns of ``accounts`` written from a merged, scored state (all but updated_at); the keys of
# ``worker.accounts.account_row``.
_STATE_TYPES: dict[str, str] = {
    "account_id": "text",
    "name": "text",
    "industry": "text",
    "owner": "text",
    "plan": "text",
    "licensed_seats": "integer",
    "features_available": "integer",
    "features_used": "integer",
    "usage_history": "jsonb",
    "open_tickets": "jsonb",
    "failed_invoices": "jsonb",
    "failed_payments_total": "integer",
    "nps": "smallint",
    "csat": "numeric",
    "nps_submitted_at": "timestamptz",
    "renewal_date": "date",
    "arr": "numeric",
    "downgrade_requested": "boolean",
    "created_at": "timestamptz",
    "last_event_id": "text",
    "last_event_time": "timestamptz",
}
_DERIVED_TYPES: dict[str, str] = {
    "active_seats": "integer",
    "logins": "integer",
    "open_ticket_count": "integer",
    "escalated_tickets": "integer",
    "max_ticket_severity": "text",
    "failed_payments": "integer",
    "days_overdue": "integer",
}
_SCORE_TYPES: dict[str, str] = {
    "churn_risk": "smallint",
    "churn_level": "text",
    "churn_drivers": "jsonb",
    "expansion_score": "smallint",
    "expansion_motion": "text",
    "expansion_drivers": "jsonb",
    "score_details": "jsonb",
    "framework_version": "text",
    "scored_at": "timestamptz",
}
ACCOUNT_COLUMNS: dict[str, str] = {**_STATE_TYPES, **_DERIVED_TYPES, **_SCORE_TYPES}
assert set(_STATE_TYPES) == set(STATE_COLUMNS), "accounts columns out of step with AccountState"

_COLS = ", ".join(ACCOUNT_COLUMNS)
_RECORDSET = ", ".join(f"{c} {t}" for c, t in ACCOUNT_COLUMNS.items())
_UPDATES = ",\n    ".join(
    f"{c} = EXCLUDED.{c}" for c in ACCOUNT_COLUMNS if c not in ("account_id", "created_at")
)

UPSERT_ACCOUNTS = f"""
INSERT INTO accounts ({_COLS})
SELECT {_COLS}
FROM jsonb_to_recordset($1::jsonb) AS r({_RECORDSET})
ON CONFLICT (account_id) DO UPDATE SET
    {_UPDATES}
"""

LOCK_ACCOUNTS = (
    f"SELECT {', '.join(STATE_COLUMNS)} FROM accounts WHERE account_id = ANY($1::text[]) "
    "ORDER BY account_id FOR UPDATE"
)


async def lock_accounts(
    conn: asyncpg.Connection, account_ids: Sequence[str]
) -> dict[str, AccountState]:
    """Current state of these accounts, row-locked until the transaction ends."""
    rows = await conn.fetch(LOCK_ACCOUNTS, list(account_ids))
    return {r["account_id"]: state_from_row(r) for r in rows}


async def upsert_accounts(conn: asyncpg.Connection, rows_json: str) -> None:
    await conn.execute(UPSERT_ACCOUNTS, rows_json)


# -- the handler -----------------------------------------------------------------------------


class AccountHandler:
    """Applies batches of account events; ``stats`` holds running totals since start."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool | None = None,
        producer: AIOKafkaProducer | None = None,
        framework: Framework | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.framework = framework or load_framework(settings.framework_path)
        self.topic = settings.account_topic
        self.log = get_logger(component="account-worker")
        self.stats: Counter[str] = Counter()

    def bind(self, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        """Give the handler its pool and producer when they are created after it."""
        self.pool = pool
        self.producer = producer

    @property
    def topics(self) -> list[str]:
        """The topics to create at start: the account topic and its dead-letter topic."""
        return [self.topic, dlq_topic(self.topic)]

    async def handle_batch(self, records: Sequence[Any]) -> AccountBatchOutcome:
        started = time.perf_counter()
        valid: list[AccountIncoming] = []
        rejected: list[Rejected] = []
        for record in records:
            out = decode_account(record, self.settings.max_message_bytes)
            if isinstance(out, Rejected):
                rejected.append(out)
            else:
                valid.extend(out)
        await self._dead_letter(rejected)
        outcome = await retry_transient(lambda: self._apply(valid), "apply_account_batch")
        tally(self.stats, len(records), len(rejected), outcome)
        self._log_outcome(outcome, len(records), time.perf_counter() - started)
        return outcome

    async def _apply(self, valid: list[AccountIncoming]) -> AccountBatchOutcome:
        assert self.pool is not None, "bind() a pool first"
        if not valid:
            return AccountBatchOutcome()
        account_ids = sorted({i.event.subject for i in valid})
        async with self.pool.acquire() as conn, conn.transaction():
            current = await lock_accounts(conn, account_ids)
            seen = await store.seen_events(conn, [i.event.id for i in valid])
            outcome = apply_account_batch(current, seen, valid, self.framework)
            if outcome.states:
                await upsert_accounts(conn, account_rows_json(outcome))
            await store.record_outcomes(conn, outcome.applied, outcome.stale)
            # Dead-lettered before the commit: if the commit then fails, the batch is redone
            # and they are dead-lettered again (same source offset).
            await self._dead_letter(outcome.failed)
        return outcome

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        assert self.producer is not None, "bind() a producer first"
        await publish_dead_letters(self.producer, rejected, self.log)

    def _log_outcome(self, outcome: AccountBatchOutcome, size: int, seconds: float) -> None:
        for item in outcome.applied:
            score = outcome.scores[item.event.subject]
            self.log.debug(
                "account_event_applied",
                account_id=item.event.subject,
                event_id=item.event.id,
                event_type=item.event.type,
                churn_risk=score.churn.score,
                expansion_score=score.expansion.score if score.expansion else None,
                **item.ref.log_context(),
            )
        log_batch(
            self.log,
            outcome,
            size,
            seconds,
            prefix="account_",
            subject="account_id",
            accounts=len(outcome.states),
        )


def register_account_subscriber(
    broker: KafkaBroker, settings: Settings, handler: AccountHandler
) -> Any:
    """Add the account-event batch subscriber to ``broker`` (options as the deal subscriber's
    in ``worker.handlers.create_broker``); returns the subscriber."""

    @broker.subscriber(
        settings.account_topic,
        **batch_subscriber_options(settings),
        title="account-events",
        description="Account events (usage, tickets, payments, NPS, renewals) in our "
        "CloudEvents envelope; key = account id",
    )
    async def on_account_events(records: Any) -> None:
        await handler.handle_batch(records)

    # Declared for the AsyncAPI document, like the deal topics' dead-letter topics.
    broker.publisher(
        dlq_topic(settings.account_topic),
        title=dlq_topic(settings.account_topic),
        schema=bytes,
        description="Dead letters: the original bytes and headers, plus "
        "dlq.error, dlq.reason, dlq.source.topic/partition/offset",
    )
    return on_account_events
