"""`revintel alerts tail`: alerts in time order across partitions, once each, with the owner and
the risk factors on the readable line; "the value is above the threshold" is no reason."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.alerts import AlertCause, AlertState, DealAlert
from tests.services import unique
from worker.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def alert(deal: str, hours: int) -> DealAlert:
    at = T0 + timedelta(hours=hours)
    return DealAlert(
        alert_id=str(uuid.uuid4()),
        kind="at_risk",
        level="at_risk",
        deal_id=deal,
        name=f"Deal {deal}",
        company="Acme",
        owner="Ana Silva",
        value=40_000,
        stage="proposal",
        health_score=45,
        health_category="warning",
        close_probability=22.0,
        risk_factors=["No activity for 21 days", "No champion identified"],
        reasons=["Health is warning (45/100)"],
        previous=AlertState(level="none"),
        caused_by=AlertCause(event_id=f"e-{deal}", event_type="deal.updated", event_time=at),
        occurred_at=at,
        framework_version="test",
    )


async def test_tail_prints_in_time_order_with_owner_and_risks(services, producer):
    topic = unique("test.tail-alerts")
    await ensure_topics(services.bootstrap, [topic], 3)
    # later alerts on the first partitions, earlier ones on the last: read order is not time
    alerts = [alert(f"T{i}", hours=10 - i) for i in range(6)]
    for i, a in enumerate(alerts):
        await producer.send_and_wait(
            topic, a.model_dump_json().encode(), key=a.deal_id.encode(), partition=i // 2
        )
    await producer.send_and_wait(topic, alerts[0].model_dump_json().encode(), partition=2)  # dup
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "worker.cli", "alerts", "tail", "--from-beginning", "--idle-exit", "3"),
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": services.bootstrap,
            "REVINTEL_ALERTS_TOPIC": topic,
            "COLUMNS": "250",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = out.decode()
    assert proc.returncode == 0, text
    lines = [line for line in text.splitlines() if "deal T" in line]
    assert [line.split("deal ")[1].split()[0] for line in lines] == [
        f"T{i}" for i in reversed(range(6))
    ], text
    assert all("owner Ana Silva" in line for line in lines), text
    assert all("No activity for 21 days" in line for line in lines), text
    assert "threshold" not in text
