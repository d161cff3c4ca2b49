"""`revintel run` started while PostgreSQL or Kafka is away: it waits with backoff and says so,
/health answers 503 meanwhile, it consumes once the service answers, and a SIGTERM stops it
with exit 0; with a deadline it gives up with exit 1 and one line."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.factories import created
from tests.proxy import TcpGate, free_port
from tests.services import (
    assert_graceful_exit,
    eventually,
    publish,
    spawn,
    worker_env,
)

pytestmark = pytest.mark.integration


def _http_get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return 0, {}


async def health(port: int) -> tuple[int, dict]:
    return await asyncio.to_thread(_http_get, f"http://127.0.0.1:{port}/health")


def _gate_for_database(url: str) -> tuple[TcpGate, str]:
    parts = urlsplit(url)
    gate = TcpGate(parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{gate.port}"
    return gate, urlunsplit(parts._replace(netloc=netloc))


def _gate_for_kafka(bootstrap: str) -> TcpGate:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    return TcpGate(host, int(port))


async def _stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode()


async def _waits_then_consumes(
    settings, producer, db, env: dict, gate: TcpGate, name: str, health_says: str | None = None
):
    """``name``: what the log says is down; ``health_says``: what /health says (default the
    same)."""
    port = free_port()
    worker = await spawn("run", env={**env, "REVINTEL_HTTP_PORT": str(port)})
    try:

        async def unavailable() -> bool:
            status, report = await health(port)
            return status == 503 and report.get(health_says or name) == "unreachable"

        await eventually(unavailable, within=60)
        await asyncio.sleep(2)  # a few attempts, still 503, still alive
        assert (await health(port))[0] == 503 and worker.returncode is None

        await gate.open()
        deal = f"START-{name}"
        await publish(producer, settings.deal_topic, [created(deal, amount=5_000)])

        async def applied() -> bool:
            return await db.fetchval("SELECT count(*) FROM deals WHERE deal_id = $1", deal) == 1

        await eventually(applied, within=90)
        assert (await health(port))[0] == 200
    finally:
        log = await _stop(worker)
        await gate.close()
    assert_graceful_exit(worker, log)
    waiting = [json.loads(line) for line in log.splitlines() if "waiting_for_services" in line]
    assert len(waiting) >= 2 and all(w["unreachable"] == [name] for w in waiting), log[-3000:]
    assert waiting[1]["retry_in"] > waiting[0]["retry_in"]  # backoff


async def test_run_waits_for_postgres_then_consumes(settings, producer, db):
    gate, url = _gate_for_database(settings.database_url)
    env = worker_env(settings, DATABASE_URL=url)
    await _waits_then_consumes(settings, producer, db, env, gate, "postgres")


async def test_run_waits_for_the_migration_database_then_consumes(settings, producer, db):
    """The owner's URL (REVINTEL_MIGRATE_DATABASE_URL) down while the worker's answers: it
    waits for it too (no worker runs before its migrations), /health 503."""
    gate, url = _gate_for_database(settings.migration_url)
    env = worker_env(settings, REVINTEL_MIGRATE_DATABASE_URL=url)
    await _waits_then_consumes(settings, producer, db, env, gate, "migrations", "postgres")


async def test_run_waits_for_kafka_then_consumes(settings, producer, db):
    gate = _gate_for_kafka(settings.kafka_bootstrap_servers)
    env = worker_env(settings, KAFKA_BOOTSTRAP_SERVERS=gate.address)
    await _waits_then_consumes(settings, producer, db, env, gate, "kafka")


async def _until_line(proc: asyncio.subprocess.Process, text: str, within: float = 60) -> str:
    """The process's output up to its first line holding ``text`` (a loaded machine can take
    seconds to import and install the signal handlers: a fixed sleep raced them)."""
    seen: list[str] = []

    async def read() -> None:
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AssertionError("the worker exited first: " + "".join(seen)[-3000:])
            seen.append(line)
            if text in line:
                return

    await asyncio.wait_for(read(), within)
    return "".join(seen)


async def test_sigterm_while_waiting_exits_0(settings):
    _closed, url = _gate_for_database(settings.database_url)  # never opened
    worker = await spawn("run", env=worker_env(settings, DATABASE_URL=url))
    before = await _until_line(worker, "waiting_for_services")
    assert worker.returncode is None
    log = before + await _stop(worker)
    assert_graceful_exit(worker, log)


@pytest.mark.parametrize("down", ["postgres", "kafka", "migrations"])
async def test_deadline_exits_1_with_one_line(settings, down):
    _closed, url = _gate_for_database(settings.database_url)
    _closed_too, owner_url = _gate_for_database(settings.migration_url)
    kafka = _gate_for_kafka(settings.kafka_bootstrap_servers)
    env = worker_env(settings, REVINTEL_STARTUP_DEADLINE="3")
    if down == "postgres":
        env["DATABASE_URL"] = url
    elif down == "migrations":
        env["REVINTEL_MIGRATE_DATABASE_URL"] = owner_url
    else:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.address
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, err.decode()[-3000:]
    lines = [line for line in err.decode().splitlines() if line.strip()]
    not_logs = [line for line in lines if not line.startswith("{")]
    assert len(not_logs) == 1, err.decode()[-3000:]
    service = {
        "postgres": "PostgreSQL at ",
        "kafka": "Kafka at ",
        "migrations": "PostgreSQL for the migrations (REVINTEL_MIGRATE_DATABASE_URL) at ",
    }[down]
    assert not_logs[0].startswith("error: cannot start the worker: " + service), not_logs
    assert "not reachable after 3 s" in not_logs[0] and "Traceback" not in err.decode()
    assert out.decode().strip() == ""
