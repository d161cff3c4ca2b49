"""The README's main job, as a user runs it: `revintel run` as a process, the sample stream
published with `revintel produce-sample`, the result read with `revintel show`."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import date

import pytest

from tests.services import assert_graceful_exit, eventually, spawn, unique, worker_env
from worker.settings import Settings
from worker.testdata.sample import sample_events

pytestmark = pytest.mark.integration


async def revintel(*args: str, env: dict[str, str], within: float = 150) -> tuple[int, str]:
    proc = await spawn(*args, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, out.decode()


async def ticked(db, topic: str, day: date) -> bool:
    """Whether every partition of ``topic`` has applied the tick of ``day``."""
    n = await db.fetchval(
        "SELECT count(*) FROM clock WHERE topic = $1 AND last_tick >= $2::date", topic, day
    )
    return n == 3


async def test_worker_process_scores_the_sample_stream(services, own_db):
    database_url, db = own_db
    topic = unique("cli.deal-events")
    env = worker_env(
        Settings(
            database_url=database_url,
            kafka_bootstrap_servers=services.bootstrap,
            deal_topic=topic,
            account_topic=unique("cli.account-events"),
            alerts_topic=unique("cli.alerts"),
            consumer_group=unique("cli-group"),
        )
    )
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        code, produced = await revintel("produce-sample", "--timeout", "120", env=env)
        if worker.returncode is not None:
            out, _ = await worker.communicate()
            pytest.fail(f"worker exited with {worker.returncode}: {out.decode()[-3000:]}")
        assert code == 0, produced
        assert "applied all" in produced
        code, shown = await revintel("show", env=env)
        assert code == 0, shown
        # the clock by hand: two daily ticks age the deals and snapshot the pipeline
        for day in ("2026-12-01", "2026-12-08"):
            code, out = await revintel("tick", "--at", day, env=env)
            assert code == 0 and "published to 6 partitions" in out, out
            # a loaded machine took more than 30 s to apply a tick in a full run: 90 s
            await eventually(lambda day=day: ticked(db, topic, date.fromisoformat(day)), within=90)
        code, changes = await revintel(
            "changes", "--since", "2026-12-01", "--until", "2026-12-08", env=env
        )
        assert code == 0 and "opening pipeline" in changes and "closing pipeline" in changes
        code, forecast = await revintel("forecast", "--json", "--as-of", "2026-12-08", env=env)
        assert code == 0, forecast
        published = json.loads(forecast)
        assert published["as_of"] == "2026-12-08" and "overdue" in published
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(worker.communicate(), 60)
        log = out.decode()
    assert_graceful_exit(worker, log)
    assert '"event":"batch_applied"' in log.replace(" ", "")

    events = sample_events()
    deals = {e.subject for e in events}
    rows = {
        r["deal_id"]: r
        for r in await db.fetch("SELECT * FROM deals WHERE deal_id = ANY($1::text[])", list(deals))
    }
    assert set(rows) == deals
    for deal in deals:
        assert deal in shown
        last = max((e for e in events if e.subject == deal), key=lambda e: e.time)
        assert rows[deal]["last_event_id"] == last.id
    assert rows["D-1001"]["stage"] == "closed_won"
    assert float(rows["D-1001"]["close_probability"]) == 100
    assert rows["D-1006"]["stage"] == "closed_lost"
    assert float(rows["D-1006"]["close_probability"]) == 0
    # The stalled, unqualified high-value proposal scores worse than the active negotiation.
    assert rows["D-1002"]["health_score"] < rows["D-1005"]["health_score"]
    assert rows["D-1002"]["health_category"] in ("warning", "critical")
    assert rows["D-1002"]["risk_factors"] != "[]"
