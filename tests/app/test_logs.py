"""With REVINTEL_LOG_JSON=true every line a worker prints is JSON: its own, FastStream's,
aiokafka's and uvicorn's (they used to come out as plain, coloured text between ours)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import pytest

from tests.factories import created
from tests.proxy import TcpGate
from tests.services import assert_graceful_exit, eventually, publish, worker_env

pytestmark = pytest.mark.integration


async def test_every_line_is_json_including_the_libraries(settings, producer, db, tmp_path):
    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    gate = TcpGate(host, int(port))  # closed at first: aiokafka logs its failed connections
    env = worker_env(
        settings,
        KAFKA_BOOTSTRAP_SERVERS=gate.address,
        REVINTEL_LOG_JSON="true",
        REVINTEL_LOG_LEVEL="DEBUG",
    )
    # DEBUG is verbose: to a file, so a full pipe cannot stall the worker
    with (tmp_path / "worker.log").open("wb") as out:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker.cli", "run", env=env, stdout=out, stderr=out
        )
    try:
        await asyncio.sleep(3)
        await gate.open()
        await publish(producer, settings.deal_topic, [created("LOGS-1", amount=1_000)])

        async def applied() -> bool:
            return await db.fetchval("SELECT count(*) FROM deals WHERE deal_id = 'LOGS-1'") == 1

        await eventually(applied, within=90)
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
        await gate.close()
    log = (tmp_path / "worker.log").read_text()
    assert_graceful_exit(worker, log)
    lines = [line for line in log.splitlines() if line.strip()]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, "\n".join(not_json[:20])
    loggers = {json.loads(line).get("logger", "") for line in lines}
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    assert any("faststream" in name for name in loggers), loggers
