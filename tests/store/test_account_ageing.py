"""A tick's ageing of the ``accounts`` rows against real PostgreSQL (``worker.store.accounts.
age``): it writes only the columns a rescoring sets, and the rows end as writing each whole row
again would leave them; a tick that fails half-way and is applied again ends with the rows and
alert ids of the page scored at once, its alerts in the outbox once; applied a third time it
changes nothing. Account events and ticks replayed from the start into fresh databases, pages
of any size, give the same rows and alert ids."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from schemas.clock import make_tick
from tests.account_factories import FW, T0, created, ev, incoming, usage
from worker.domain.account_batch import age_accounts, apply_account_batch
from worker.domain.batch import Incoming, RecordRef
from worker.store import accounts

pytestmark = pytest.mark.integration

TOPIC = "crm.account-events"


def _events(account: str, overdue: int, renewal_days: int) -> list:
    renewal = (T0 + timedelta(days=renewal_days)).date().isoformat()
    return [
        created(account),
        ev(account, "payment_failed", {"invoice_id": "I", "amount": "50", "days_overdue": overdue}),
        usage(account, "2026-03-01", 40, 300, 1),
        ev(account, "nps_submitted", {"score": 7, "csat": 4}, 1),
        ev(account, "renewal_updated", {"renewal_date": renewal, "downgrade_requested": True}, 2),
    ]


async def _seed(pool: asyncpg.Pool) -> None:
    events = [e for i in range(5) for e in _events(f"A{i}", 40 + 10 * i, 45 + 30 * i)]
    out = apply_account_batch({}, set(), incoming(*events), FW)
    async with pool.acquire() as conn, conn.transaction():
        await accounts.write(conn, out)
    assert len(out.states) == 5


async def _rows(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM accounts ORDER BY account_id")
    return {r["account_id"]: {k: v for k, v in r.items() if k != "updated_at"} for r in rows}


async def test_a_tick_half_done_then_redone_ends_as_the_page_scored_at_once(
    own_db, monkeypatch: pytest.MonkeyPatch
):
    _, pool = own_db
    await _seed(pool)
    async with pool.acquire() as conn:
        stored = await accounts.lock(conn, [f"A{i}" for i in range(5)])
    tick = Incoming(
        make_tick(T0 + timedelta(days=30), TOPIC, 0, 86400),
        RecordRef(TOPIC, 0, 0, b"clock", None, ()),
    )
    expected = age_accounts(stored.values(), tick, FW)
    seq = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert_outbox")  # the events'
    assert expected.alerts  # the renewals come near: at risk

    # pages of two; the second page's write fails: the first stays done
    monkeypatch.setattr(accounts, "AGE_PAGE", 2)
    write_scored = accounts.write_scored
    calls = 0

    async def crash_on_the_second_page(conn, outcome) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("worker killed")
        await write_scored(conn, outcome)

    monkeypatch.setattr(accounts, "write_scored", crash_on_the_second_page)
    with pytest.raises(ConnectionError):
        await accounts.age(pool, 0, tick, FW)
    half = await _rows(pool)
    assert sorted(a for a, r in half.items() if r["scored_at"] == tick.event.time) == ["A0", "A1"]

    redone = await accounts.age(pool, 0, tick, FW)
    assert redone.aged == 3  # the first page keeps its scores
    aged = await _rows(pool)
    assert all(r["scored_at"] == tick.event.time for r in aged.values())
    assert [r["days_overdue"] for r in aged.values()] == [70, 80, 90, 100, 110]
    outbox = await pool.fetch("SELECT alert_id::text FROM alert_outbox WHERE seq > $1", seq)
    assert sorted(r["alert_id"] for r in outbox) == sorted(a.alert_id for a in expected.alerts)

    # the whole rows of the page scored at once, written again: nothing changes
    async with pool.acquire() as conn, conn.transaction():
        await accounts.write(conn, expected)
    assert await _rows(pool) == aged
    assert {a: r["alert_level"] for a, r in aged.items()} == {
        a: t.level for a, t in expected.tracks.items()
    }

    again = await accounts.age(pool, 0, tick, FW)
    assert again.aged == 0 and not again.alerts
    assert await _rows(pool) == aged
    assert await pool.fetchval("SELECT count(*) FROM alert_outbox WHERE seq > $1", seq) == len(
        outbox
    )


async def _replay(url: str, items: list) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Events and ticks applied as the worker applies a consumed batch, into a fresh
    database: its accounts and its outbox's alerts (id -> payload)."""

    from worker.store.batches import Projection, apply_batch

    async def dead_letter(rejected: list) -> None:
        assert not rejected, rejected

    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    try:
        projection = Projection.of(accounts, apply_account_batch, lambda: {"framework": FW})
        for start in range(0, len(items), 7):  # batches cut anywhere
            await apply_batch(pool, projection, items[start : start + 7], dead_letter)
        outbox = await pool.fetch("SELECT alert_id::text, payload FROM alert_outbox")
        return await _rows(pool), {r["alert_id"]: r["payload"] for r in outbox}
    finally:
        await pool.close()


async def test_events_and_ticks_replayed_give_the_same_accounts_and_alert_ids(
    services, monkeypatch: pytest.MonkeyPatch
):
    """Two partitions' account events with daily ticks between them, replayed into two fresh
    databases, the second with pages of one account: the same rows and alert ids."""
    from tests.services import fresh_database

    timed: list[tuple[datetime, int, Incoming]] = []
    for p in (0, 1):
        for i in range(3):
            account = f"P{p}-{i}"
            renewal = (T0 + timedelta(days=60 + 20 * i)).date().isoformat()
            for e in (
                created(account),
                ev(account, "payment_failed", {"invoice_id": "I", "amount": "50"}, 3 + i),
                usage(account, "2026-03-10", 40 - 15 * i, 300, 12),
                ev(account, "nps_submitted", {"score": 7 - 2 * i, "csat": 4}, 21),
                ev(account, "renewal_updated", {"renewal_date": renewal}, 33),
            ):
                timed.append((e.time, 0, Incoming(e, RecordRef(TOPIC, p, 0, None, None, ()))))
        for day in range(5, 65, 5):
            tick = make_tick(T0 + timedelta(days=day), TOPIC, p, 86400)
            timed.append((tick.time, 1, Incoming(tick, RecordRef(TOPIC, p, 0, b"clock", None, ()))))
    items = [item for *_, item in sorted(timed, key=lambda t: (t[0], t[1]))]
    runs = []
    for page in (accounts.AGE_PAGE, 1):
        monkeypatch.setattr(accounts, "AGE_PAGE", page)
        async with fresh_database(services.database_url, prefix="revintel_ageing") as url:
            runs.append(await _replay(url, items))
    (rows, alerts), (rows_again, alerts_again) = runs
    assert len(rows) == 6 and all(r["scored_at"] == T0 + timedelta(days=60) for r in rows.values())
    assert alerts and alerts_again.keys() == alerts.keys()
    assert rows_again == rows and alerts_again == alerts
