"""Fixtures of the fault suite: the stream (built once), published once to a topic every
scenario consumes with a group and database of its own, and the outcome of an undisturbed run
of it (the reference every scenario must equal)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.stream import Outcome, Stream, build_stream, outcome_of, progress, publish_records
from tests.services import (
    WORKER_ROLE,
    Services,
    as_role,
    ensure_worker_role,
    eventually,
    fresh_database,
    unique,
    worker_env,
)
from worker.app import Worker
from worker.kafka.topics import ensure_topics
from worker.settings import Settings

# Seconds a whole run of the stream may take (2 shared cores in CI: about 30 s undisturbed).
RUN_WITHIN = 240.0


def run_settings(services: Services, database_url: str, topic: str) -> Settings:
    """A worker of its own on ``topic`` (as the least-privilege role; migrations as the owner of
    ``database_url``): own group, other topics unique, no clock publisher, no forecast job or
    metrics publisher (the stream's ticks are the only clock)."""
    return Settings(
        database_url=as_role(database_url),
        migrate_database_url=database_url,
        kafka_bootstrap_servers=services.bootstrap,
        deal_topic=topic,
        account_topic=unique("faults.account-events"),
        alerts_topic=unique("faults.alerts"),
        source_topics={unique("faults.hubspot"): "hubspot"},
        consumer_group=unique("faults-group"),
        batch_size=500,
        batch_timeout_ms=100,
        tick_interval=0,
        forecast_enabled=False,
        metrics_interval_seconds=0,
    )


def process_env(s: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `revintel run` process with these settings."""
    return worker_env(
        s,
        REVINTEL_SOURCE_TOPICS=json.dumps(s.source_topics),
        REVINTEL_BATCH_SIZE=str(s.batch_size),
        REVINTEL_TICK_INTERVAL="0",
        REVINTEL_FORECAST_ENABLED="false",
        REVINTEL_METRICS_INTERVAL_SECONDS="0",
        REVINTEL_LOG_LEVEL="WARNING",
        **extra,
    )


@dataclass
class WorkerProcess:
    """A `revintel run` process and its log file (a file, not a pipe: an outage makes the
    libraries log a lot, and a pipe nobody reads would block the worker)."""

    proc: asyncio.subprocess.Process
    log_path: Path

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def spawn_worker(env: dict[str, str]) -> WorkerProcess:
    """`revintel run` as a process (through tests/faults/route.py: its Kafka may be gated)."""
    fd, name = tempfile.mkstemp(prefix="faults-worker-", suffix=".log")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from tests.faults.route import main; main()",
            "run",
            env=env,
            stdout=fd,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        os.close(fd)
    return WorkerProcess(proc, Path(name))


async def kill_worker(worker: WorkerProcess) -> None:
    """SIGKILL: no shutdown at all."""
    worker.proc.send_signal(signal.SIGKILL)
    await worker.proc.wait()
    worker.log_path.unlink(missing_ok=True)


async def stop_worker(worker: WorkerProcess) -> str:
    """SIGTERM, then its log; it must have exited 0 (a graceful stop)."""
    if worker.proc.returncode is None:
        worker.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(worker.proc.wait(), 60)
    log = worker.log()
    worker.log_path.unlink(missing_ok=True)
    assert worker.proc.returncode == 0, log[-3000:]
    return log


@dataclass
class Run:
    """One scenario's run of the stream: its settings (own database and group) and the
    stream, with waits on its progress."""

    settings: Settings
    stream: Stream

    async def applied(self) -> int:
        return (await progress(self.settings.database_url, self.stream.last_tick))[0]

    async def reached(self, share: float) -> None:
        """Wait until ``share`` of the stream's events are applied."""
        target = int(self.stream.events * share)

        async def there() -> bool:
            return await self.applied() >= target

        await eventually(there, within=RUN_WITHIN)

    async def finished(self) -> Outcome:
        """Wait until every partition applied the stream's last tick (after all its events),
        then the outcome."""

        async def done() -> bool:
            _, at_end = await progress(self.settings.database_url, self.stream.last_tick)
            return at_end == self.settings.topic_partitions

        await eventually(done, within=RUN_WITHIN)
        return await outcome_of(self.settings.database_url)


@pytest.fixture(scope="session")
def stream() -> Stream:
    return build_stream()


@pytest.fixture(scope="session")
async def stream_topic(services: Services, stream: Stream) -> str:
    topic = unique("faults.deal-events")
    await ensure_topics(services.bootstrap, [topic], 3)
    await publish_records(services.bootstrap, topic, stream.records)
    return topic


@pytest.fixture(scope="session")
async def undisturbed(services: Services, stream: Stream, stream_topic: str) -> Outcome:
    """The outcome of an in-process worker consuming the stream without disturbance."""
    await ensure_worker_role(services.database_url)
    async with fresh_database(services.database_url, "revintel_faults", WORKER_ROLE) as url:
        s = run_settings(services, url, stream_topic)
        worker = Worker(s)
        await worker.start()
        await worker.broker.start()
        try:
            outcome = await Run(s, stream).finished()
        finally:
            await worker.broker.stop()
            await worker.stop()
    assert len(outcome.deals) > 500 and len(outcome.alerts) > 100, "a stream worth testing"
    return outcome


@pytest.fixture
async def new_run(
    services: Services, stream: Stream, stream_topic: str
) -> AsyncIterator[Callable[..., Run]]:
    """Make a run on a fresh database (dropped at teardown) of the stream's topic, or of
    another ``topic`` carrying the same stream."""
    cleanup: list = []

    async def make(topic: str | None = None) -> Run:
        await ensure_worker_role(services.database_url)
        db = fresh_database(services.database_url, "revintel_faults", WORKER_ROLE)
        url = await db.__aenter__()
        cleanup.append(db)
        return Run(run_settings(services, url, topic or stream_topic), stream)

    yield make
    for db in reversed(cleanup):
        await db.__aexit__(None, None, None)


def assert_same(outcome: Outcome, reference: Outcome) -> None:
    """The same deals, snapshots, stage history and alert ids as the undisturbed run."""
    assert len(outcome.deals) == len(reference.deals)
    assert outcome.deals == reference.deals
    assert outcome.history == reference.history
    assert outcome.snapshots == reference.snapshots
    assert [a["alert_id"] for a in outcome.alerts] == [a["alert_id"] for a in reference.alerts]
    for got, want in zip(outcome.alerts, reference.alerts, strict=True):
        assert payload_of(got) == payload_of(want), got["alert_id"]


def payload_of(alert: dict) -> dict:
    """An alert's payload as data (the stored JSON's key order is not part of it)."""
    return json.loads(alert["payload"])
