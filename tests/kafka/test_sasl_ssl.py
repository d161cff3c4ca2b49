"""Kafka security through a real broker: a broker of the test's own that only speaks SASL_SSL
(certificates made in the test, SCRAM users created at format time; tests/secure_broker.py),
and `revintel run` configured only by the REVINTEL_KAFKA_* settings. The sample stream goes in
with `revintel produce-sample` (SCRAM-SHA-512), the worker (SCRAM-SHA-256) scores it into
PostgreSQL, its alerts are read back with `revintel alerts tail` (PLAIN) and its metrics by
the test (PLAIN). A wrong password fails `run` with one line saying the broker rejected the
credentials, and every other command that reads or writes Kafka says so at once, in one line.
No output carries a password, the worker's DEBUG log (the SASL exchange included) neither."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import quote

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from tests.secure_broker import SecureBroker, secure_broker, wait_until_answering
from tests.services import (
    WORKER_ROLE,
    Services,
    as_role,
    assert_graceful_exit,
    ensure_worker_role,
    fresh_database,
    spawn,
    unique,
)
from worker.kafka.client import kafka_client
from worker.testdata.sample import sample_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with secure_broker(tmp_path_factory.mktemp("sasl-ssl-broker")) as found:
        yield found


@pytest.fixture(scope="module")
async def broker(started: tuple) -> SecureBroker:
    await wait_until_answering(*started)
    return started[0]


@pytest.fixture
async def database(services: Services) -> AsyncIterator[str]:
    """A database of this test's own (the sample's deal ids are fixed), owner's URL."""
    await ensure_worker_role(services.database_url)
    async with fresh_database(services.database_url, "revintel_sasl", WORKER_ROLE) as url:
        yield url


def _env(database: str, broker: SecureBroker, topics: dict[str, str], **extra: str) -> dict:
    """A `revintel` process on the secure broker, the worker as its least-privilege role."""
    return {
        **os.environ,
        "DATABASE_URL": as_role(database),
        "REVINTEL_MIGRATE_DATABASE_URL": database,
        **broker.env(),
        **topics,
        "REVINTEL_HTTP_PORT": "0",
        "REVINTEL_LOG_JSON": "true",
        "REVINTEL_FORECAST_ENABLED": "false",
        "REVINTEL_RETRAIN_CRON": "",
        "REVINTEL_METRICS_INTERVAL_SECONDS": "1",
        "REVINTEL_BATCH_TIMEOUT_MS": "50",
        "COLUMNS": "200",
        **extra,
    }


def _topics() -> dict[str, str]:
    return {
        "REVINTEL_DEAL_TOPIC": unique("sasl.deal-events"),
        "REVINTEL_ACCOUNT_TOPIC": unique("sasl.account-events"),
        "REVINTEL_ALERTS_TOPIC": unique("sasl.alerts"),
        "REVINTEL_METRICS_TOPIC": unique("sasl.metrics"),
        "REVINTEL_SOURCE_TOPICS": json.dumps({unique("sasl.hubspot"): "hubspot"}),
        "REVINTEL_CONSUMER_GROUP": unique("sasl-group"),
    }


async def _revintel(*args: str, env: dict, within: float = 120) -> tuple[int, str]:
    proc = await spawn(*args, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, out.decode()


async def _read_until(
    broker: SecureBroker, topic: str, enough: Callable[[list], bool], within: float = 30
) -> list:
    """Records of ``topic`` read over SASL_SSL with SASL PLAIN, until they are ``enough``."""
    client = kafka_client(broker.settings("PLAIN"))
    consumer = AIOKafkaConsumer(topic, **client, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(within):
            while not enough(records):
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    records += recs
    except TimeoutError:
        raise AssertionError(f"{topic}: not what was awaited in {records}") from None
    finally:
        await consumer.stop()
    return records


def _after_a_batch(records: list) -> bool:
    """A metrics message published after the worker applied a batch."""
    return any(json.loads(r.value)["batches"] >= 1 for r in records)


def _assert_no_password(output: str, *passwords: str) -> None:
    for password in passwords:
        for form in {password, quote(password, safe=""), json.dumps(password)[1:-1]}:
            assert form not in output, f"a password was printed: {output[-3000:]}"


async def test_worker_scores_events_through_sasl_ssl(broker, database):
    topics = _topics()
    env = _env(database, broker, topics, REVINTEL_LOG_LEVEL="DEBUG")
    log_path = broker.log.parent / f"worker-{topics['REVINTEL_CONSUMER_GROUP']}.log"
    with log_path.open("wb") as out:  # a file: DEBUG output would fill a pipe nobody reads
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker.cli", "run", env=env, stdout=out, stderr=out
        )
    try:
        code, produced = await _revintel(
            "produce-sample",
            "--timeout",
            "90",
            env={**env, "REVINTEL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
        )
        assert code == 0 and "applied all 59 events" in produced, produced
        await _read_until(broker, topics["REVINTEL_METRICS_TOPIC"], _after_a_batch)
        code, tailed = await _revintel(
            *("alerts", "tail", "--from-beginning", "--json", "--limit", "1"),
            env={**env, "REVINTEL_KAFKA_SASL_MECHANISM": "PLAIN"},
        )
        assert code == 0, tailed
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 60)
    log = log_path.read_text(errors="replace")
    assert_graceful_exit(worker, log)

    deals = {e.subject for e in sample_events()}
    conn = await asyncpg.connect(database)
    try:
        scored = await conn.fetch(
            "SELECT deal_id FROM deals WHERE health_score IS NOT NULL "
            "AND close_probability IS NOT NULL"
        )
    finally:
        await conn.close()
    assert {r["deal_id"] for r in scored} == deals
    alerts = [json.loads(line) for line in tailed.splitlines() if line.startswith("{")]
    assert len(alerts) == 1 and alerts[0]["deal_id"] in deals, tailed
    # it logged in with SCRAM (the broker has no other listener) and DEBUG logged the exchange
    assert f"Authenticated as {broker.username} via SCRAM-SHA-256" in log
    assert "SaslAuthenticate" in log, log[-3000:]
    _assert_no_password(log + produced + tailed, broker.password)


async def test_wrong_password_fails_with_one_line(broker, database):
    wrong = "Wrong-s3cret-5150"
    env = _env(database, broker, _topics(), REVINTEL_STARTUP_DEADLINE="3")
    env["REVINTEL_KAFKA_SASL_PASSWORD"] = wrong
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = (s.decode() for s in await asyncio.wait_for(proc.communicate(), 60))
    assert proc.returncode == 1, err[-3000:]
    not_logs = [line for line in err.splitlines() if line.strip() and not line.startswith("{")]
    assert len(not_logs) == 1, err[-3000:]
    # it was there and said no: not "not reachable"
    refused = f"Kafka at {broker.bootstrap} rejected the credentials of user {broker.username!r}"
    assert not_logs[0].startswith(f"error: cannot start the worker: {refused} (SASL SCRAM-SHA-256)")
    assert "not reachable" not in not_logs[0] and "after 3 s" in not_logs[0], not_logs
    _assert_no_password(out + err, wrong, broker.password)


# every other command that reads or writes Kafka, with arguments that make it do so at once
KAFKA_COMMANDS = [
    ["alerts", "tail", "--limit", "1", "--idle-exit", "3"],
    ["tick", "--at", "2026-01-01"],
    ["produce-sample", "--no-wait"],
    ["seed", "--deals", "2"],
    ["forecast", "--publish", "--as-of", "2026-01-01"],
    ["ingest"],
]


async def test_wrong_password_is_one_line_from_every_kafka_command(broker, database):
    """Each fails at once with one line saying the broker rejected the credentials: not
    aiokafka's own lines, "Unable to bootstrap" or "start one with", nor a client left open
    ("Unclosed AIOKafkaConsumer")."""
    wrong = "Wrong-s3cret-5150"
    env = {**_env(database, broker, _topics()), "REVINTEL_KAFKA_SASL_PASSWORD": wrong}
    refused = f"Kafka at {broker.bootstrap} rejected the credentials of user {broker.username!r}"
    runs = [_revintel_apart(*args, env=env) for args in KAFKA_COMMANDS]
    for args, (code, out, err) in zip(KAFKA_COMMANDS, await asyncio.gather(*runs), strict=True):
        shown = f"revintel {' '.join(args)} (exit {code}):\n{out}\n{err}"[-3000:]
        assert code != 0, shown
        not_logs = [line for line in err.splitlines() if line.strip() and line[0] != "{"]
        assert len(not_logs) == 1 and not_logs[0].startswith("error: "), shown
        assert refused in not_logs[0] and "(SASL SCRAM-SHA-256)" in not_logs[0], shown
        for wrong_words in ("Unable to bootstrap", "start one with", "Unclosed", "Traceback"):
            assert wrong_words not in out + err, shown
        _assert_no_password(out + err, wrong, broker.password)


async def _revintel_apart(*args: str, env: dict, within: float = 60) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a `revintel` command."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode, out.decode(), err.decode()
