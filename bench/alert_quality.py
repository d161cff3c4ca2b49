"""Alert quality on the public CRM export, replayed with daily clock ticks through the worker.

    eval "$(bash scripts/services.sh env)"
    .venv/bin/python bench/alert_quality.py [PATH]

Replays ../shared/data/crm (or PATH) into a fresh database through an in-process worker on
topics of its own, with a tick every day, then reports:

* at-risk deals now (the ``at_risk_deals`` view) and the alerts raised, by kind;
* of the deals later lost with a value at or above the alert threshold: the share alerted at
  least 14 days before the loss, and the median lead time from the first at-risk alert to it;
* the loss rate among deals alerted (at_risk) against the base loss rate of closed deals above
  the threshold;
* alerts per open deal per month, and flapping: deals raising at_risk more than once;
* the pipeline change report's identity (opening + flows = closing) for every month.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.services import fresh_database
from worker.app import Worker
from worker.cli.data import publish
from worker.kafka.ticks import tick_instants
from worker.log import configure_logging
from worker.settings import Settings
from worker.testdata.crm_export import crm_data_dir, export_events

LOSSES = """
WITH first_alert AS (
    SELECT deal_id, min(occurred_at) AS at FROM alert_outbox WHERE kind = 'at_risk'
    GROUP BY deal_id
)
SELECT d.deal_id, d.closed_at, f.at AS alerted_at
FROM deals d LEFT JOIN first_alert f ON f.deal_id = d.deal_id AND f.at <= d.closed_at
WHERE d.stage = 'closed_lost' AND d.amount >= $1
"""


async def main(path: Path) -> None:
    configure_logging("WARNING", json=False)
    events = export_events(path)
    day = timedelta(days=1)
    ticks = tick_instants(events[0].time, events[-1].time + day, day)
    base = Settings()
    tag = uuid.uuid4().hex[:8]
    async with fresh_database(base.database_url, "revintel_quality") as url:
        s = base.model_copy(
            update={
                "database_url": url,
                "deal_topic": f"quality.{tag}.deal-events",
                "account_topic": f"quality.{tag}.account-events",
                "alerts_topic": f"quality.{tag}.alerts",
                "source_topics": {},
                "consumer_group": f"quality-{tag}",
                "batch_size": 1000,
                "forecast_enabled": False,
                "metrics_interval_seconds": 0,
                "tick_interval": timedelta(0),
            }
        )
        worker = Worker(s)
        await worker.start()
        await worker.broker.start()
        started = time.perf_counter()
        try:
            await publish(events, settings=s, ticks=ticks)
            conn = await asyncpg.connect(url)
            try:
                while (  # noqa: ASYNC110 - polling the database the worker writes
                    await conn.fetchval(
                        "SELECT count(*) FROM clock WHERE last_tick = $1", ticks[-1]
                    )
                    < s.topic_partitions
                ):
                    await asyncio.sleep(1)
                seconds = time.perf_counter() - started
                await report(conn, worker, len(events), len(ticks), seconds)
            finally:
                await conn.close()
        finally:
            await worker.broker.stop()
            await worker.stop()


async def report(conn, worker, events: int, ticks: int, seconds: float) -> None:
    threshold = await conn.fetchval("SELECT framework_param('alert_value_threshold')")
    print(f"replayed {events:,} events and {ticks} daily ticks in {seconds:.0f} s")
    print(f"at_risk_deals now: {await conn.fetchval('SELECT count(*) FROM at_risk_deals'):,}")
    kinds = await conn.fetch("SELECT kind, count(*) FROM alert_outbox GROUP BY kind ORDER BY 1")
    print("alerts by kind: " + ", ".join(f"{k}={n:,}" for k, n in kinds))
    losses = await conn.fetch(LOSSES, threshold)
    leads = [
        (r["closed_at"] - r["alerted_at"]).total_seconds() / 86400
        for r in losses
        if r["alerted_at"] is not None
    ]
    early = sum(lead >= 14 for lead in leads)
    print(
        f"lost deals >= {threshold:,.0f}: {len(losses):,}; alerted >= 14 days before the loss: "
        f"{early:,} ({early / max(1, len(losses)):.1%}); median lead "
        f"{statistics.median(leads) if leads else float('nan'):.0f} days"
    )
    alerted = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE d.stage = 'closed_lost') AS lost,
                  count(*) FILTER (WHERE d.stage IN ('closed_won', 'closed_lost')) AS closed
           FROM deals d WHERE d.deal_id IN (SELECT deal_id FROM alert_outbox
                                            WHERE kind = 'at_risk')""",
    )
    base = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE stage = 'closed_lost') AS lost,
                  count(*) FILTER (WHERE stage IN ('closed_won', 'closed_lost')) AS closed
           FROM deals WHERE amount >= $1""",
        threshold,
    )
    print(
        "loss rate among alerted deals that closed: "
        f"{alerted['lost'] / max(1, alerted['closed']):.1%}"
        f" ({alerted['closed']:,} closed); base loss rate >= threshold: "
        f"{base['lost'] / max(1, base['closed']):.1%} ({base['closed']:,} closed)"
    )
    open_months = await conn.fetchval(
        "SELECT count(*) / 30.0 FROM deal_snapshots"  # one row per open deal and day
    )
    total = await conn.fetchval("SELECT count(*) FROM alert_outbox")
    flaps = await conn.fetchval(
        "SELECT count(*) FROM (SELECT deal_id FROM alert_outbox WHERE kind = 'at_risk' "
        "GROUP BY deal_id HAVING count(*) > 1) x"
    )
    raised = await conn.fetchval("SELECT count(DISTINCT deal_id) FROM alert_outbox")
    print(
        f"alerts per open deal per month: {total / max(1.0, float(open_months)):.3f}; deals "
        f"alerted: {raised:,}; raising at_risk more than once: {flaps:,}"
    )
    months = await conn.fetch(
        "SELECT DISTINCT date_trunc('month', snapshot_date)::date AS m FROM deal_snapshots "
        "ORDER BY 1"
    )
    bad = 0
    for (m,) in months[1:]:
        rows = {
            r["movement"]: r
            for r in await conn.fetch(
                "SELECT * FROM pipeline_changes($1::date, ($1::date + interval '1 month')::date, "
                "$1::date, ($1::date + interval '3 months' - interval '1 day')::date)",
                m,
            )
        }
        flows = sum(
            sign * rows[k]["deals"]
            for k, sign in (
                ("created", 1),
                ("pulled_in", 1),
                ("pushed_out", -1),
                ("won", -1),
                ("lost", -1),
                ("removed", -1),
            )
        )
        if rows["opening"]["deals"] + flows != rows["closing"]["deals"]:
            bad += 1
            print(f"  changes from {m}: identity fails: {dict(rows)}")
    print(
        f"pipeline changes: identity held for {len(months) - 1 - bad} of {len(months) - 1} months"
    )
    print(f"worker stats: {dict(worker.deals.stats)}")


if __name__ == "__main__":
    found = Path(sys.argv[1]) if len(sys.argv) > 1 else crm_data_dir()
    if found is None:
        sys.exit("no CRM export: pass its directory or set REVINTEL_CRM_DATA")
    asyncio.run(main(found))
