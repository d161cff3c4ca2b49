"""The churn model end to end: the bank churn sample through account events into a running
worker and PostgreSQL, `revintel train churn` (champion: every account rescored with it), the
worker picking the champion up for new events, a second training as challenger, `revintel
models report churn` and `revintel models promote`."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from tests.cli.test_commands import revintel
from tests.services import eventually, worker_env
from worker.testdata.bank_churn import customer_events, customers, events

pytestmark = pytest.mark.integration

CUSTOMERS = 4000  # the first 4,000 by CustomerId: 800-odd churned, enough for the defaults


async def publish(producer, topic: str, batch) -> None:
    sent = [
        await producer.send(topic, e.model_dump_json().encode(), key=e.subject.encode())
        for e in batch
    ]
    await asyncio.gather(*sent)


async def bank_rows(db, where: str = "true") -> int:
    return await db.fetchval(
        f"SELECT count(*) FROM accounts WHERE account_id LIKE 'bank-%' AND {where}"
    )


async def test_bank_churn_trains_a_champion_that_scores_every_account(
    settings, start_worker, producer, db, bank_churn_data
):
    s = settings.model_copy(
        update={"batch_size": 1000, "model_refresh_seconds": 0.5, "tick_interval": timedelta(0)}
    )
    worker = await start_worker(s)
    env = worker_env(s)
    # -- before any outcome: no model, the heuristic stays in charge
    code, out = await revintel("train", "churn", env=env, within=120)
    assert code == 0 and "no churn model trained" in out and "heuristic" in out, out

    await publish(producer, s.account_topic, list(events(bank_churn_data, CUSTOMERS)))

    async def all_outcomes() -> bool:
        n = await db.fetchval(
            "SELECT count(*) FROM account_outcomes WHERE account_id LIKE 'bank-%'"
        )
        return n == CUSTOMERS

    await eventually(all_outcomes, within=300)
    assert await bank_rows(db, "churn_model_version = 'heuristic'") == CUSTOMERS
    assert await bank_rows(db, "attributes ? 'age' AND outcome IS NOT NULL") == CUSTOMERS

    # -- the first model is the champion, and every account is rescored with it
    code, out = await revintel("train", "churn", "--json", env=env, within=300)
    assert code == 0, out
    first = json.loads(out[out.index("{") :])
    assert first["role"] == "champion" and first["rescored"] >= CUSTOMERS
    assert first["samples"]["rows"] == CUSTOMERS
    test, base = first["metrics"]["test"], first["metrics"]["baseline_logistic"]
    assert test["auc"] > base["auc"] and test["brier"] < base["brier"]
    assert test["calibration_error"] <= 0.06
    version = first["version"]
    assert await bank_rows(db, f"churn_model_version = '{version}'") == CUSTOMERS
    row = await db.fetchrow(
        "SELECT churn_risk, churn_drivers, score_details FROM accounts "
        "WHERE account_id LIKE 'bank-%' ORDER BY churn_risk DESC LIMIT 1"
    )
    learned = json.loads(row["score_details"])["churn_model"]
    assert learned["version"] == version
    assert row["churn_risk"] == int(learned["probability"] * 100 + 0.5)
    assert json.loads(row["churn_drivers"]) == learned["raises"] and learned["raises"]

    # -- the running worker picks the champion up: a new account is scored by it
    await eventually(lambda: _holds(worker, version), within=30)
    newcomer = customers(bank_churn_data)[CUSTOMERS]
    await publish(producer, s.account_topic, customer_events(newcomer, CUSTOMERS)[:2])

    async def newcomer_scored() -> bool:
        got = await db.fetchval(
            "SELECT churn_model_version FROM accounts WHERE account_id = $1",
            newcomer.account_id,
        )
        return got == version

    await eventually(newcomer_scored, within=60)

    # -- a second model is the challenger; the report sets both beside the plain logistic
    code, out = await revintel("train", "churn", "--json", env=env, within=300)
    assert code == 0, out
    second = json.loads(out[out.index("{") :])
    assert second["role"] == "challenger" and second["rescored"] == 0
    code, out = await revintel("models", "report", "churn", env=env)
    assert code == 0, out
    for text in (version, second["version"], "plain logistic", "auc", "brier", "test fold"):
        assert text in out, (text, out)
    code, out = await revintel("models", "list", "churn", env=env)
    assert code == 0 and "champion" in out and "challenger" in out, out

    # -- promotion: the challenger is champion, the old one retired, every account rescored
    code, out = await revintel("models", "promote", "churn", second["version"], env=env)
    assert code == 0, out
    roles = dict(await db.fetch("SELECT version, role FROM model_versions WHERE kind = 'churn'"))
    assert roles == {version: "retired", second["version"]: "champion"}
    assert await bank_rows(db, f"churn_model_version = '{second['version']}'") == CUSTOMERS + 1
    code, out = await revintel("models", "promote", "churn", "churn-nope", env=env)
    assert code == 2 and "no churn model version" in out


async def _holds(worker, version: str) -> bool:
    return worker.churn.current is not None and worker.churn.current.version == version
