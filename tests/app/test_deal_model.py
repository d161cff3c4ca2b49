"""The learned deal model end to end, on the public CRM export replayed through Kafka into a
running worker and PostgreSQL (events up to 2017-08 with a tick at every month start: the
snapshots the model trains on), in a database of its own (the data's as-of is the training
cut: other tests' deals must not move it).

`revintel train deal` below the minimum registers nothing; then the champion (held-out
figures, every open deal rescored with its probability, version and factors); the worker
scores new events and ticks with it; a second training is the challenger, scored beside it;
`revintel models report deal` compares both on the deals closed since; `revintel models
promote deal` rescores every open deal; the scheduled retrain registers a challenger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.cli.test_commands import revintel
from tests.services import eventually, fresh_database, worker_env
from worker.cli.data import publish
from worker.models.deal_training import DealTrainParams
from worker.tasks.retrain import Retrainer
from worker.testdata.crm_export import export_events

pytestmark = pytest.mark.integration

SEPT = datetime(2017, 9, 1, tzinfo=UTC)
SEPT_4 = datetime(2017, 9, 4, tzinfo=UTC)
OCT = datetime(2017, 10, 1, tzinfo=UTC)


def _month_starts(until: datetime) -> list[datetime]:
    return [datetime(y, m, 1, tzinfo=UTC) for y, m in [(2016, 10), (2016, 11), (2016, 12)]] + [
        datetime(2017, m, 1, tzinfo=UTC) for m in range(1, until.month + 1)
    ]


@pytest.fixture
async def deal_db(services):
    async with fresh_database(services.database_url, "revintel_deal_model") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
        try:
            yield url, pool
        finally:
            await pool.close()


async def _applied(db, events) -> bool:
    ids = [e.id for e in events]
    n = await db.fetchval("SELECT count(*) FROM applied_events WHERE event_id = ANY($1)", ids)
    return n == len(ids)


async def _ticked(db, at: datetime, partitions: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM clock WHERE last_tick = $1", at) == partitions


async def _train(env) -> dict:
    code, out = await revintel("train", "deal", "--json", env=env, within=600)
    assert code == 0, out
    return json.loads(out[out.index("{") :])


async def test_the_deal_model_is_trained_served_challenged_and_promoted(
    deal_db, settings, start_worker, crm_export_dir
):
    # (deal_db first: its database is dropped after the worker has stopped)
    url, db = deal_db
    s = settings.model_copy(
        update={
            "database_url": url,
            "batch_size": 500,
            "model_refresh_seconds": 0.5,
            "tick_interval": timedelta(0),
            "retrain_cron": None,
        }
    )
    worker = await start_worker(s)
    env = worker_env(s)
    parts = s.topic_partitions
    events = export_events(crm_export_dir)
    before = [e for e in events if e.time < SEPT]
    early_sept = [e for e in events if SEPT <= e.time < SEPT_4]
    rest_sept = [e for e in events if SEPT_4 <= e.time < OCT]

    # -- no data yet: nothing to learn from, the heuristic stays in charge
    code, out = await revintel("train", "deal", env=env, within=120)
    assert code == 0 and "no deal model trained" in out and "heuristic" in out, out

    await publish(before, settings=s, ticks=_month_starts(SEPT))
    await eventually(lambda: _applied(db, before), within=300)
    await eventually(lambda: _ticked(db, SEPT, parts), within=120)
    assert await db.fetchval("SELECT count(DISTINCT snapshot_date) FROM deal_snapshots") == 12

    # -- below the minimum (a setting): nothing registered, the heuristic stays
    code, out = await revintel(
        "train", "deal", env={**env, "REVINTEL_DEAL_MIN_WON": "100000"}, within=300
    )
    assert code == 0 and "no deal model trained" in out and "100000 won" in out, out
    assert await db.fetchval("SELECT count(*) FROM model_versions") == 0
    assert await db.fetchval("SELECT bool_and(prob_model_version = 'heuristic') FROM deals")

    # -- the first model is the champion: every open deal rescored as of the data's as-of
    first = await _train(env)
    v1 = first["version"]
    assert first["role"] == "champion" and first["kind"] == "deal"
    assert first["train_to"].startswith("2017-09-01T00:00:00")  # the last tick, not the clock
    assert first["train_from"].startswith("2017-03-01")  # the month of the first close
    assert first["samples"]["positive"] >= 200 and first["samples"]["negative"] >= 200
    test = first["metrics"]["test"]
    assert first["metrics"]["split"]["test"]["snapshot"].startswith("2017-08-01")
    for figure in ("brier", "log_loss", "auc", "calibration_error", "base_rate_brier"):
        assert isinstance(test[figure], float), figure
    assert test["cases"] > 500 and "served_then" in first["metrics"]
    open_deals = await db.fetchval(
        "SELECT count(*) FROM deals WHERE stage NOT IN ('closed_won', 'closed_lost')"
    )
    assert first["rescored"] == open_deals > 1000
    rows = await db.fetch(
        "SELECT close_probability, prob_model_version, scored_at, score_details FROM deals "
        "WHERE stage NOT IN ('closed_won', 'closed_lost')"
    )
    assert {r["prob_model_version"] for r in rows} == {v1}
    assert {r["scored_at"] for r in rows} == {SEPT}
    details = [json.loads(r["score_details"])["probability"] for r in rows]
    assert all(
        float(r["close_probability"]) == d["probability"]
        for r, d in zip(rows, details, strict=True)
    )
    # (a deal whose every factor moves it less than a tenth of a point has none to tell)
    assert sum(bool(d["key_factors"]) for d in details) > 0.5 * len(details)
    assert all(f.endswith(" pts)") for d in details for f in d["key_factors"])
    assert all(d["version"] == v1 and "heuristic" in d for d in details)
    closed = await db.fetch(
        "SELECT stage, close_probability, prob_model_version FROM deals "
        "WHERE stage IN ('closed_won', 'closed_lost')"
    )
    assert {(r["stage"], float(r["close_probability"])) for r in closed} == {
        ("closed_won", 100.0),
        ("closed_lost", 0.0),
    }
    assert {r["prob_model_version"] for r in closed} == {"heuristic"}

    code, out = await revintel(
        "show", "--factors", "--stage", "qualification", "--limit", "3", env=env
    )
    assert code == 0 and "P(close) by" in out and "close factors" in out, out
    assert out.count("deal-2") >= 3, out  # each row names the champion's version

    # -- the worker picks the champion up: new events are scored by it, as of their time
    await eventually(lambda: _holds(worker, "current", v1), within=30)
    await publish(early_sept, settings=s)
    await eventually(lambda: _applied(db, early_sept), within=120)
    touched = await db.fetch(
        "SELECT prob_model_version, scored_at, last_event_time, score_details FROM deals "
        "WHERE deal_id = ANY($1) AND stage NOT IN ('closed_won', 'closed_lost')",
        list({e.subject for e in early_sept}),
    )
    assert touched and {r["prob_model_version"] for r in touched} == {v1}
    assert all(r["scored_at"] == r["last_event_time"] >= SEPT for r in touched)
    assert all(json.loads(r["score_details"])["probability"]["key_factors"] for r in touched)

    # -- a tick ages every open deal with the champion, and snapshots name it
    await publish([], settings=s, ticks=[SEPT_4])
    await eventually(lambda: _ticked(db, SEPT_4, parts), within=120)
    assert await db.fetchval(
        "SELECT array_agg(DISTINCT prob_model_version) FROM deals "
        "WHERE stage NOT IN ('closed_won', 'closed_lost') AND scored_at = $1",
        SEPT_4,
    ) == [v1]
    assert await db.fetchval(
        "SELECT array_agg(DISTINCT prob_model_version) FROM deal_snapshots "
        "WHERE snapshot_date = '2017-09-04'"
    ) == [v1]

    # -- a second model is the challenger, scored beside the champion on new events
    second = await _train(env)
    v2 = second["version"]
    assert second["role"] == "challenger" and second["rescored"] == 0
    await eventually(lambda: _holds(worker, "challenger", v2), within=30)
    await publish(rest_sept, settings=s, ticks=[OCT])
    await eventually(lambda: _applied(db, rest_sept), within=300)
    await eventually(lambda: _ticked(db, OCT, parts), within=120)
    beside = await db.fetch(
        "SELECT prob_model_version, challenger_version, challenger_probability, score_details "
        "FROM deals WHERE stage NOT IN ('closed_won', 'closed_lost')"
    )
    assert {(r["prob_model_version"], r["challenger_version"]) for r in beside} == {(v1, v2)}
    for r in beside[:50]:
        d = json.loads(r["score_details"])["probability"]
        assert float(r["challenger_probability"]) == d["challenger"]["probability"]
        assert d["challenger"]["version"] == v2 and d["champion"]["version"] == v1

    # -- the report compares both on the deals closed since the challenger's cut
    code, out = await revintel("models", "report", "deal", "--json", env=env, within=300)
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    since = report["since_training"]
    assert since["after"].startswith("2017-09-04") and since["cases"] > 100
    assert set(since["figures"]) == {v1, v2}
    for figures in since["figures"].values():
        assert {"brier", "log_loss", "auc", "calibration_error"} <= set(figures)
    code, out = await revintel("models", "report", "deal", env=env, within=300)
    assert code == 0 and "Deals closed since" in out and v1 in out and v2 in out, out

    # -- promotion: the challenger is champion, every open deal rescored as of the as-of
    code, out = await revintel("models", "promote", "deal", v2, env=env, within=300)
    assert code == 0 and "open deals" in out, out
    roles = dict(await db.fetch("SELECT version, role FROM model_versions WHERE kind = 'deal'"))
    assert roles == {v1: "retired", v2: "champion"}
    promoted = await db.fetch(
        "SELECT DISTINCT prob_model_version, challenger_version, scored_at FROM deals "
        "WHERE stage NOT IN ('closed_won', 'closed_lost')"
    )
    assert [tuple(r) for r in promoted] == [(v2, None, OCT)]

    # -- the scheduled retrain registers a challenger and leaves the champion be
    retrain = Retrainer(db, worker.framework, deal_params=DealTrainParams())
    done = await retrain.run_once()
    assert done["deal"].endswith("(challenger)") and done["churn"].startswith("skipped")
    roles = dict(await db.fetch("SELECT role, version FROM model_versions WHERE kind = 'deal'"))
    assert roles["champion"] == v2 and roles["challenger"] not in (v1, v2)


async def _holds(worker, role: str, version: str) -> bool:
    held = getattr(worker.deal, role)
    return held is not None and held.version == version
