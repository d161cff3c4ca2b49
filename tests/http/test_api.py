"""The seed's API over real HTTP against a running worker (real Kafka and PostgreSQL): reads
from the projection, a PATCH through the log, the what-if on the live pipeline, predictions
with the seed's bodies, and the API keys' scopes."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.factories import created, event
from tests.http.conftest import serving
from tests.services import eventually, fresh_database, publish, unique
from worker.app import Worker, http_app
from worker.http.api import _loopback

pytestmark = pytest.mark.integration

READ, WRITE = "read-key-for-tests", "write-key-for-tests"


@pytest.fixture
async def api(settings, services, producer):
    """A worker on a database of its own (exact sums), three deals applied, its HTTP app."""
    async with fresh_database(services.database_url) as url:
        s = settings.model_copy(
            update={"database_url": url, "api_keys": {READ: "read", WRITE: "write"}}
        )
        worker = Worker(s)
        app = http_app(worker)  # before the broker starts, as `serve` does
        await worker.start()
        await worker.broker.start()
        a, b, c = unique("API"), unique("API"), unique("API")
        events = [
            created(a, amount=40_000, stage="proposal"),
            created(b, amount=20_000, stage="negotiation"),
            created(c, amount=30_000, stage="proposal"),
            event(c, "closed_won", {}, day=1),
        ]
        await publish(producer, s.deal_topic, events)
        pool = worker.running.pool

        async def applied():
            return await pool.fetchval("SELECT count(*) FROM deals") == 3

        await eventually(applied, within=30)
        try:
            async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
                yield client, pool, (a, b, c)
        finally:
            await worker.broker.stop()
            await worker.stop()


def key(k: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {k}"}


async def test_reads_need_a_key_and_answer_from_the_projection(api):
    client, _, _ = api
    assert (await client.get("/api/revenue/health-check")).status_code == 401
    bad = await client.get("/api/revenue/health-check", headers=key("nope"))
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    health = (await client.get("/api/revenue/health-check", headers=key(READ))).json()
    assert health["status"] == "ok" and health["deals"] == 3
    won = (await client.get("/api/revenue/won-deals/summary", headers=key(READ))).json()
    assert [(m["deal_count"], m["total_value"]) for m in won] == [(1, 30000.0)]
    monthly = await client.get("/api/revenue/forecast/monthly", headers=key(READ))
    assert monthly.status_code == 200 and isinstance(monthly.json(), list)
    dash = (await client.get("/api/revenue/dashboard", headers=key(READ))).json()
    assert dash["kpis"]["open_deals"] == 2
    at_risk = await client.get(
        "/api/revenue/alerts/at-risk", params={"min_deal_value": 25_000}, headers=key(READ)
    )
    assert at_risk.status_code == 200
    assert all(row["amount"] >= 25_000 for row in at_risk.json())


async def test_the_what_if_takes_deltas_and_the_live_pipeline_as_baseline(api):
    client, _, _ = api
    response = await client.post(
        "/api/revenue/scenario-calculator", json={"win_rate_change": 0.1}, headers=key(READ)
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["baseline_source"]["pipeline_value"] == 60_000  # the two open deals
    assert result["baseline_source"]["win_rate"] == 1.0  # 30k won, nothing lost
    assert result["baseline"]["pipeline_value"] == 60_000
    typed_in = await client.post(
        "/api/revenue/scenario-calculator", json={"pipeline_value": 1}, headers=key(READ)
    )
    assert typed_in.status_code == 422  # the baseline is not typed in


async def test_a_patch_goes_through_the_log_and_needs_write(api):
    client, pool, (a, _, _) = api
    body = {"amount": 55_000, "owner": "Bea"}
    denied = await client.patch(f"/api/revenue/deals/{a}", json=body, headers=key(READ))
    assert denied.status_code == 403
    missing = await client.patch("/api/revenue/deals/nope", json=body, headers=key(WRITE))
    assert missing.status_code == 404
    response = await client.patch(f"/api/revenue/deals/{a}", json=body, headers=key(WRITE))
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["event_ids"]

    async def applied():
        row = await pool.fetchrow("SELECT amount, owner FROM deals WHERE deal_id = $1", a)
        return (row["amount"], row["owner"]) == (Decimal("55000"), "Bea")

    await eventually(applied, within=30)
    assert await pool.fetchval("SELECT 1 FROM applied_events WHERE event_id = $1", event_id)
    bad = await client.patch(f"/api/revenue/deals/{a}", json={"amount": -1}, headers=key(WRITE))
    assert bad.status_code == 422


async def test_predictions_take_the_seeds_bodies_and_ours(api):
    client, _, _ = api
    seed = {"deal_stage": "Proposal", "days_in_stage": 12, "num_interactions": 5}
    probability = await client.post(
        "/api/revenue/predict/close-probability", json=seed, headers=key(READ)
    )
    assert probability.status_code == 200, probability.text
    assert 0 < probability.json()["probability"] <= 100
    value = await client.post(
        "/api/revenue/predict/deal-value",
        json={"plan": "professional", "users": 25, "discount": 0.15},
        headers=key(READ),
    )
    assert value.status_code == 200 and value.json()["predicted_value"] > 0
    churn = await client.post(
        "/api/revenue/accounts/churn-risk",
        json={"logins": [90, 80, 50, 40], "failed_payments": 1, "nps": 6},
        headers=key(READ),
    )
    assert churn.status_code == 200 and 0 <= churn.json()["score"] <= 100
    expansion = await client.post(
        "/api/revenue/accounts/expansion-score",
        json={
            "plan_tier": "starter",
            "licensed_seats": 20,
            "active_seats": 19,
            "features_adopted": 7,
            "features_available": 10,
        },
        headers=key(READ),
    )
    assert expansion.status_code == 200
    wrong = await client.post(
        "/api/revenue/predict/close-probability", json={"stag": "x"}, headers=key(READ)
    )
    assert wrong.status_code == 422


def test_without_keys_only_loopback_clients_are_answered():
    assert _loopback("127.0.0.1") and _loopback("::1")
    assert not _loopback("10.0.0.7") and not _loopback(None)
