"""CRM webhooks over real HTTP (httpx against a uvicorn server) into the real Kafka: what is
published, what is refused, and a signed HubSpot delivery that ends up a scored deal."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.http.conftest import free_port, serving
from tests.services import (
    assert_graceful_exit,
    eventually,
    read_all,
    spawn,
    unique,
    worker_env,
)
from worker.app import Worker, http_app
from worker.http.ingress import ingress_app
from worker.http.signatures import hubspot_v3_signature
from worker.kafka.client import kafka_client
from worker.kafka.producer import durable_producer
from worker.kafka.topics import dlq_topic, ensure_topics

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[1] / "adapters" / "vendor_examples"
FIXTURES = Path(__file__).parents[1] / "adapters" / "fixtures"
SECRET = "hs-client-secret-for-tests"
PD_USER, PD_PASSWORD = "pipedrive-hook", "pd-password-for-tests"
SF_SECRET = "sf-relay-secret-for-tests"


@pytest.fixture
def hook_settings(settings):
    topics = {
        unique("test.hubspot"): "hubspot",
        unique("test.salesforce"): "salesforce",
        unique("test.pipedrive"): "pipedrive",
    }
    return settings.model_copy(
        update={
            "source_topics": topics,
            "hubspot_client_secret": SecretStr(SECRET),
            "pipedrive_webhook_user": PD_USER,
            "pipedrive_webhook_password": SecretStr(PD_PASSWORD),
            "salesforce_webhook_secret": SecretStr(SF_SECRET),
            "max_message_bytes": 4096,
        }
    )


def topic_of(s, vendor: str) -> str:
    return next(t for t, v in s.source_topics.items() if v == vendor)


@pytest.fixture
async def ingress(hook_settings):
    """The standalone ingress (`revintel ingest`'s app) with a durable producer."""
    topics = list(hook_settings.source_topics)
    await ensure_topics(kafka_client(hook_settings), [*topics, *map(dlq_topic, topics)], 1)
    app, health = ingress_app(hook_settings)
    producer = durable_producer(kafka_client(hook_settings))
    await producer.start()
    health.producer = producer
    try:
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            yield client
    finally:
        await producer.stop()


def hubspot_headers(base_url: str, path: str, body: bytes, at_ms: int | None = None) -> dict:
    stamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    signature = hubspot_v3_signature(SECRET, "POST", f"{base_url}{path}", body, stamp)
    return {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }


async def post_hubspot(client: httpx.AsyncClient, body: bytes, **kw) -> httpx.Response:
    headers = hubspot_headers(str(client.base_url), "/webhooks/hubspot", body, **kw)
    return await client.post("/webhooks/hubspot", content=body, headers=headers)


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_a_signed_hubspot_batch_is_on_its_topic_before_the_200(ingress, hook_settings):
    body = (EXAMPLES / "hubspot" / "webhooks_api_example.json").read_bytes()
    response = await post_hubspot(ingress, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    topic = topic_of(hook_settings, "hubspot")
    assert answer["topic"] == topic
    # already on the log when the 200 was sent: read it at once, no waiting
    records = await read_all(hook_settings.kafka_bootstrap_servers, topic)
    assert [r.value for r in records] == [body]
    assert records[0].offset == answer["offset"]
    assert ("revintel-source", b"hubspot") in records[0].headers


async def test_a_bad_or_stale_signature_is_refused_and_nothing_published(ingress, hook_settings):
    body = (FIXTURES / "hubspot" / "creation.json").read_bytes()
    headers = hubspot_headers(str(ingress.base_url), "/webhooks/hubspot", body)
    forged = await ingress.post("/webhooks/hubspot", content=body + b" ", headers=headers)
    stale = await post_hubspot(ingress, body, at_ms=int(time.time() * 1000) - 301_000)
    unsigned = await ingress.post("/webhooks/hubspot", content=body)
    assert [forged.status_code, stale.status_code, unsigned.status_code] == [401, 401, 401]
    assert forged.json() == {"detail": "authentication failed"}
    assert SECRET not in forged.text + stale.text + unsigned.text
    topic = topic_of(hook_settings, "hubspot")
    assert await read_all(hook_settings.kafka_bootstrap_servers, topic) == []


async def test_pipedrive_basic_auth_v1_and_v2(ingress, hook_settings):
    v2 = (FIXTURES / "pipedrive" / "create.json").read_bytes()
    v1 = (FIXTURES / "pipedrive" / "v1_updated.json").read_bytes()
    ok = basic(PD_USER, PD_PASSWORD)
    assert (await ingress.post("/webhooks/pipedrive", content=v2, headers=ok)).status_code == 200
    assert (await ingress.post("/webhooks/pipedrive", content=v1, headers=ok)).status_code == 200
    wrong = await ingress.post("/webhooks/pipedrive", content=v2, headers=basic(PD_USER, "x"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    records = await read_all(
        hook_settings.kafka_bootstrap_servers, topic_of(hook_settings, "pipedrive")
    )
    assert [r.value for r in records] == [v2, v1]
    assert {r.key for r in records} == {b"1201"}  # one deal's deliveries share a partition


async def test_salesforce_shared_secret(ingress, hook_settings):
    body = (EXAMPLES / "salesforce" / "pubsub_bitmap_closed_won.json").read_bytes()
    good = {"X-Revintel-Webhook-Secret": SF_SECRET}
    bad = {"X-Revintel-Webhook-Secret": "guess"}
    assert (
        await ingress.post("/webhooks/salesforce", content=body, headers=good)
    ).status_code == 200
    assert (
        await ingress.post("/webhooks/salesforce", content=body, headers=bad)
    ).status_code == 401
    records = await read_all(
        hook_settings.kafka_bootstrap_servers, topic_of(hook_settings, "salesforce")
    )
    assert [r.value for r in records] == [body]


async def test_a_signed_body_that_is_not_json_is_400_and_kept_as_a_dead_letter(
    ingress, hook_settings
):
    body = b"<xml>not json</xml>"
    response = await post_hubspot(ingress, body)
    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]
    topic = topic_of(hook_settings, "hubspot")
    assert await read_all(hook_settings.kafka_bootstrap_servers, topic) == []
    (dead,) = await read_all(hook_settings.kafka_bootstrap_servers, dlq_topic(topic))
    assert dead.value == body and ("dlq.reason", b"not_json") in dead.headers


async def test_a_body_over_the_limit_is_413(ingress, hook_settings):
    body = json.dumps([{"pad": "x" * 5000}]).encode()
    response = await post_hubspot(ingress, body)
    assert response.status_code == 413
    topic = topic_of(hook_settings, "hubspot")
    assert await read_all(hook_settings.kafka_bootstrap_servers, topic) == []


async def test_a_vendor_without_its_secret_is_503_not_open(hook_settings):
    s = hook_settings.model_copy(update={"hubspot_client_secret": None})
    app, health = ingress_app(s)
    health.producer = object()  # never reached: the request is refused before publishing
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/webhooks/hubspot", content=b"[]")
        docs = await client.get("/docs")
        openapi = await client.get("/openapi.json")
        asset = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert response.status_code == 503
    assert "REVINTEL_HUBSPOT_CLIENT_SECRET" in response.json()["detail"]
    # the docs render offline: their assets are served here, no CDN in the page
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert "/webhooks/hubspot" in openapi.json()["paths"]


async def test_a_signed_delivery_becomes_a_scored_deal_once(hook_settings, db):
    """Inside `revintel run`: HubSpot's notifications in, the deal in PostgreSQL; the same
    delivery retried by HubSpot is applied once; a contact beside it is skipped, a
    notification with an unmapped stage is dead-lettered alone."""
    worker = Worker(hook_settings)
    app = http_app(worker)  # as `serve` does: the ASGI app wraps the broker before it starts
    await worker.start()
    await worker.broker.start()
    deal = unique("9").replace("-", "")[:12]
    at = int(time.time() * 1000) - 60_000
    notes = [
        {
            "eventId": 11,
            "portalId": 62515,
            "occurredAt": at,
            "subscriptionType": "deal.creation",
            "objectId": deal,
            "attemptNumber": 0,
        },
        {
            "eventId": 12,
            "portalId": 62515,
            "occurredAt": at + 1,
            "eventType": "deal.propertyChange",
            "objectId": deal,
            "propertyName": "amount",
            "propertyValue": "48000",
            "attemptNumber": 0,
        },
        {
            "eventId": 13,
            "portalId": 62515,
            "occurredAt": at,
            "subscriptionType": "contact.creation",
            "objectId": 77,
            "attemptNumber": 0,
        },
        {  # a custom pipeline's stage: this notification alone is dead-lettered
            "eventId": 14,
            "portalId": 62515,
            "occurredAt": at + 2,
            "subscriptionType": "deal.propertyChange",
            "objectId": deal + "0",
            "propertyName": "dealstage",
            "propertyValue": "custom-stage-7",
            "attemptNumber": 0,
        },
    ]
    body = json.dumps(notes).encode()
    try:
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            first = await post_hubspot(client, body)
            retried = body.replace(b'"attemptNumber": 0', b'"attemptNumber": 1')
            retry = await post_hubspot(client, retried)
            health = await client.get("/health")
        assert (first.status_code, retry.status_code, health.status_code) == (200, 200, 200)

        async def stored():
            row = await db.fetchrow(
                "SELECT amount FROM deals WHERE deal_id = $1", f"hs-62515-{deal}"
            )
            return row is not None and row["amount"] == Decimal("48000")

        await eventually(stored, within=30)
        await asyncio.sleep(1)  # the retry's batch, if it were to apply anything, has landed
        applied = await db.fetchval(
            "SELECT count(*) FROM applied_events WHERE event_id LIKE $1", f"hs-62515-{deal}-%"
        )
    finally:
        await worker.broker.stop()
        await worker.stop()
    assert applied == 2  # created + amount, each once
    dlq = dlq_topic(topic_of(hook_settings, "hubspot"))

    async def both_dead_lettered():
        return len(await read_all(hook_settings.kafka_bootstrap_servers, dlq)) == 2

    await eventually(both_dead_lettered, within=30)
    dead = await read_all(hook_settings.kafka_bootstrap_servers, dlq)
    items = sorted((json.loads(d.value) for d in dead), key=lambda n: n["attemptNumber"])
    assert items == [notes[3], {**notes[3], "attemptNumber": 1}]  # each bad item alone


async def test_revintel_ingest_alone_publishes_and_stops_on_sigterm(hook_settings):
    """`revintel ingest` as its own process (no database): /health, a signed delivery on
    the topic, SIGTERM -> exit 0; the secrets it was given appear in none of its output."""
    port = free_port()
    env = worker_env(
        hook_settings,
        DATABASE_URL="postgresql://nobody:unused@127.0.0.1:1/none",  # never opened
        REVINTEL_HTTP_PORT=str(port),
        REVINTEL_SOURCE_TOPICS=json.dumps(hook_settings.source_topics),
        REVINTEL_HUBSPOT_CLIENT_SECRET=SECRET,
    )
    proc = await spawn("ingest", env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def up():
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, within=60)
            body = (FIXTURES / "hubspot" / "creation.json").read_bytes()
            response = await post_hubspot(client, body)
        assert response.status_code == 200, response.text
        topic = topic_of(hook_settings, "hubspot")
        records = await read_all(hook_settings.kafka_bootstrap_servers, topic)
        assert [r.value for r in records] == [body]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    log = out.decode()
    assert_graceful_exit(proc, log)
    assert SECRET not in log
