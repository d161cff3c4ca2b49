"""What ops sees of a running worker process: /health, /metrics, the metrics topic, AsyncAPI."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import urllib.error
import urllib.request

import pytest

from schemas.metrics import WorkerMetrics
from tests.factories import created, event
from tests.services import (
    as_role,
    assert_graceful_exit,
    eventually,
    publish,
    read_all,
    spawn,
    unique,
    worker_env,
)

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


async def get(url: str) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, url)


async def test_health_metrics_and_metrics_topic_of_a_worker_process(settings, producer, own_db):
    url = own_db[0]
    settings = settings.model_copy(
        update={"database_url": as_role(url), "migrate_database_url": url}
    )
    port = free_port()
    metrics_topic = unique("test.metrics")
    env = worker_env(
        settings,
        REVINTEL_HTTP_PORT=str(port),
        REVINTEL_METRICS_TOPIC=metrics_topic,
        REVINTEL_METRICS_INTERVAL_SECONDS="1",
    )
    base = f"http://127.0.0.1:{port}"
    d = unique("OPS")
    events = [created(d, amount=2_000), event(d, "activity_logged", {"kind": "call"}, day=1)]
    worker = await spawn("run", env=env)
    try:

        async def up():
            return (await get(f"{base}/health"))[0] == 200

        await eventually(up, within=60)
        await publish(producer, settings.deal_topic, events)
        await producer.send_and_wait(settings.deal_topic, b"not json", key=b"x")

        # The bad record may land in a later batch than the good ones: wait for both counts.
        async def counted():
            status, text = await get(f"{base}/metrics")
            return (
                status == 200
                and 'revintel_events_total{outcome="applied"} 2.0' in text
                and 'revintel_events_total{outcome="dead_lettered"} 1.0' in text
            )

        await eventually(counted, within=60)
        status, text = await get(f"{base}/metrics")
        assert 'revintel_events_total{outcome="applied"} 2.0' in text
        assert 'revintel_events_total{outcome="dead_lettered"} 1.0' in text
        assert "revintel_consumer_lag{" in text and "revintel_batch_latency_ms{" in text
        # by family (the account consumer's series too) and the forecast job's
        assert 'revintel_family_events_total{family="deal",outcome="applied"} 2.0' in text
        assert 'revintel_family_events_total{family="account",outcome="consumed"} 0.0' in text
        assert 'revintel_family_alerts_raised_total{family="account"} 0.0' in text
        assert 'revintel_forecast_runs_total{result="failed"} 0.0' in text
        assert "revintel_forecast_next_run_timestamp_seconds " in text
        status, body = await get(f"{base}/health")
        report = json.loads(body)
        assert status == 200 and report["kafka"] == report["postgres"] == "reachable"
        assert report["last_batch_at"] is not None and report["batches"] >= 1
        status, page = await get(f"{base}/asyncapi")
        assert status == 200 and settings.alerts_topic in page

        async def published():
            records = await read_all(settings.kafka_bootstrap_servers, metrics_topic)
            return any(
                (m.events_applied, m.events_dead_lettered) == (2, 1)
                for m in (WorkerMetrics.model_validate_json(r.value) for r in records)
            )

        await eventually(published, within=30)
        # the counters only grow and nothing more is sent: the last report has them all
        last = WorkerMetrics.model_validate_json(
            (await read_all(settings.kafka_bootstrap_servers, metrics_topic))[-1].value
        )
        assert (last.events_consumed, last.events_applied, last.events_dead_lettered) == (3, 2, 1)
        assert {p.topic for p in last.consumer_lag} <= set(settings.input_topics)
        assert last.batch_latency_ms_p50 is not None and last.outbox_backlog == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(worker.communicate(), 60)
    assert_graceful_exit(worker, out.decode())
