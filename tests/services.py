"""Real PostgreSQL and Kafka for integration tests (fixtures, loaded by tests/conftest.py).

Services come from the environment (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS; defaults are what
`scripts/services.sh up` starts); failing that, from testcontainers where a Docker engine is
reachable; failing that, the tests fail and say how to start them. They never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.deal_events import DealEvent
from worker.app import Worker
from worker.settings import Settings
from worker.store.migrations import migrate

HINT = (
    "start them with `bash scripts/services.sh up` (installs and runs PostgreSQL and a KRaft "
    "Kafka broker locally), or point DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS at running ones"
)


@dataclass(frozen=True)
class Services:
    database_url: str
    bootstrap: str


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def _from_testcontainers() -> tuple[Services, list]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    pg = PostgresContainer(
        "postgres:16", username="revintel", password="revintel", dbname="revintel", driver=None
    ).start()
    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft().start()
    return Services(pg.get_connection_url(), kafka.get_bootstrap_server()), [pg, kafka]


@pytest.fixture(scope="session")
def services() -> Services:
    settings = Settings()
    db = urlsplit(settings.database_url)
    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    db_up = _port_open(db.hostname or "127.0.0.1", db.port or 5432)
    kafka_up = _port_open(host, int(port))
    if db_up and kafka_up:
        yield Services(settings.database_url, settings.kafka_bootstrap_servers)
        return
    if _docker_reachable():
        found, containers = _from_testcontainers()
        yield found
        for c in containers:
            c.stop()
        return
    missing = [
        name
        for name, up in (
            ("PostgreSQL at " + settings.database_url, db_up),
            ("Kafka at " + settings.kafka_bootstrap_servers, kafka_up),
        )
        if not up
    ]
    pytest.fail(f"{' and '.join(missing)} not reachable: {HINT}", pytrace=False)


# The worker's least-privilege role (scripts/services.sh creates it: LOGIN, nothing else). The
# session's workers run as it: DML on the tables, granted by the migrations, and no DDL.
WORKER_ROLE = os.environ.get("PG_WORKER_ROLE", "revintel_worker")
WORKER_PASSWORD = os.environ.get("PG_WORKER_PASSWORD", WORKER_ROLE)


def as_role(url: str, role: str = WORKER_ROLE, password: str = WORKER_PASSWORD) -> str:
    """``url`` logging in as another role."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def ensure_worker_role(server_url: str) -> None:
    """The worker role exists (created here where the owner may, e.g. a container's
    superuser), else the tests fail saying how to get it."""
    conn = await asyncpg.connect(server_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", WORKER_ROLE):
            return
        password = WORKER_PASSWORD.replace("'", "''")
        try:
            await conn.execute(f"CREATE ROLE \"{WORKER_ROLE}\" LOGIN PASSWORD '{password}'")
        except asyncpg.InsufficientPrivilegeError:
            pytest.fail(
                f"no PostgreSQL role {WORKER_ROLE} (the worker's): run `bash scripts/services.sh "
                "up`, which creates it, or create it (LOGIN only) as an administrator",
                pytrace=False,
            )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(
    server_url: str, prefix: str = "revintel_test", grant_to: str | None = None
) -> AsyncIterator[str]:
    """A new database on the server of ``server_url``, migrated as its role (the owner; with
    ``grant_to``, that role gets DML on the tables); dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
        await migrate(url, grant_to=grant_to)
        yield url
    finally:
        await _drop(admin, name)
        await admin.close()


async def _drop(admin: asyncpg.Connection, name: str, attempts: int = 120) -> None:
    """Drop a test database. FORCE ends our own connections, but not an autovacuum worker
    (a superuser's process) that may have just started on its new tables: wait it out."""
    for attempt in range(attempts):
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)


@pytest.fixture(scope="session")
async def database_url(services: Services) -> AsyncIterator[str]:
    """A fresh database for this test session (shared by its tests), dropped afterwards; the
    owner's URL (the worker's: ``settings.database_url``)."""
    await ensure_worker_role(services.database_url)
    async with fresh_database(services.database_url, grant_to=WORKER_ROLE) as url:
        yield url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    yield pool
    await pool.close()


@pytest.fixture
async def own_db(services: Services) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A database of this test's own (migrated, the worker role granted) and a pool on it: for
    a worker process whose ticks and outbox relay reach every deal, account and alert of its
    database, where the session database holds the other tests' (the model tests' exports)."""
    async with fresh_database(
        services.database_url, prefix="revintel_own", grant_to=WORKER_ROLE
    ) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            yield url, pool
        finally:
            await pool.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(services: Services, database_url: str) -> Settings:
    """Settings with a topic and consumer group of this test's own; the worker logs in as its
    least-privilege role, migrations as the owner."""
    return Settings(
        database_url=as_role(database_url),
        migrate_database_url=database_url,
        kafka_bootstrap_servers=services.bootstrap,
        deal_topic=unique("test.deal-events"),
        account_topic=unique("test.account-events"),
        alerts_topic=unique("test.alerts"),
        source_topics={unique("test.hubspot"): "hubspot", unique("test.salesforce"): "salesforce"},
        consumer_group=unique("test-group"),
        batch_size=50,
        batch_timeout_ms=50,
    )


@pytest.fixture
async def start_worker() -> AsyncIterator[Callable[[Settings], Awaitable[Worker]]]:
    """Start in-process workers (real consumer group, real database); stopped at teardown."""
    running: list[Worker] = []

    async def start(s: Settings) -> Worker:
        worker = Worker(s)
        await worker.start()
        await worker.broker.start()
        running.append(worker)
        return worker

    yield start
    for worker in reversed(running):
        await worker.broker.stop()
        await worker.stop()


@pytest.fixture
async def producer(services: Services) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=services.bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def publish(producer: AIOKafkaProducer, topic: str, events: list[DealEvent]) -> None:
    for e in events:
        await producer.send_and_wait(topic, e.model_dump_json().encode(), key=e.subject.encode())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.2)


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"]:  # unknown topic: nothing there yet
        return []
    return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])


async def group_caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed offsets at the end of every partition of ``topic``."""
    partitions = await partitions_of(bootstrap, topic)
    if not partitions:
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def read_all(bootstrap: str, topic: str) -> list:
    """Every record currently in ``topic`` (up to its end offsets at the time of the call)."""
    partitions = await partitions_of(bootstrap, topic)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list = []

        async def behind() -> bool:
            positions = [await consumer.position(tp) for tp in ends]
            return any(pos < end for pos, end in zip(positions, ends.values(), strict=True))

        async with asyncio.timeout(30):
            while await behind():
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(recs)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a `revintel` subprocess using these settings."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REVINTEL_MIGRATE_DATABASE_URL": settings.migration_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REVINTEL_DEAL_TOPIC": settings.deal_topic,
        "REVINTEL_ACCOUNT_TOPIC": settings.account_topic,
        "REVINTEL_ALERTS_TOPIC": settings.alerts_topic,
        "REVINTEL_CONSUMER_GROUP": settings.consumer_group,
        "REVINTEL_BATCH_TIMEOUT_MS": str(settings.batch_timeout_ms),
        "REVINTEL_HTTP_PORT": "0",  # any free port: tests run several workers
        "COLUMNS": "200",
        **extra,
    }


async def spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def assert_graceful_exit(proc: asyncio.subprocess.Process, log: str) -> None:
    """A worker stopped by SIGTERM finishes its batch and shuts down cleanly, with status 0."""
    assert proc.returncode == 0, log[-3000:]
    assert "shut down gracefully" in log, log[-3000:]


async def read_topic(bootstrap: str, topic: str, count: int, within: float = 30.0) -> list:
    """Read ``count`` records of a topic from the beginning (fails if fewer arrive)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(within):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    records.extend(recs)
    except TimeoutError:
        raise AssertionError(f"only {len(records)} of {count} records on {topic}") from None
    finally:
        await consumer.stop()
    return records
