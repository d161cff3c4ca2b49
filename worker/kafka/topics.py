"""Topics: their names, their creation, and waiting for a broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import BrokerResponseError, KafkaConnectionError, TopicAlreadyExistsError

from worker.kafka.client import KafkaClient, as_client
from worker.log import get_logger
from worker.settings import dlq_topic

__all__ = ["KafkaRefused", "dlq_topic", "ensure_topics", "kafka_answers", "wait_for_kafka"]


class KafkaRefused(Exception):
    """A broker answered but would not let us in (SASL credentials, TLS handshake): waiting
    does not help until the settings or the broker's users change."""


async def ensure_topics(kafka: str | KafkaClient, topics: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(**as_client(kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica was first
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            get_logger().info("topics_created", topics=missing, partitions=partitions)
    finally:
        await admin.close()


async def kafka_answers(kafka: str | KafkaClient, within: float = 5.0) -> None:
    """Raise unless a broker answers (and accepts our credentials) within ``within`` seconds;
    :class:`KafkaRefused` when it answered and said no."""
    options = as_client(kafka)
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(within * 1000))
    try:
        async with asyncio.timeout(within):
            await admin.start()
    except KafkaConnectionError:
        refused = await _refusal(options, within)
        if refused is not None:
            raise refused from None
        raise
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


# What a single connection takes of a client's options (worker.kafka.client.kafka_client).
_CONNECTION = (
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
)


async def _refusal(options: Mapping[str, Any], within: float) -> KafkaRefused | None:
    """Why the first bootstrap server refused us, if it did: aiokafka only logs the cause and
    raises "Unable to bootstrap", which reads as if no broker were there."""
    host, port, _ = collect_hosts(options["bootstrap_servers"], randomize=False)[0]
    where = f"{host}:{port}"
    kwargs = {k: options[k] for k in _CONNECTION if k in options}
    try:
        async with asyncio.timeout(within):
            conn = await create_conn(host, port, **kwargs)
    except BrokerResponseError as exc:  # the broker's answer to our SASL handshake
        user, mechanism = options.get("sasl_plain_username"), options.get("sasl_mechanism")
        return KafkaRefused(
            f"Kafka at {where} rejected the credentials of user {user!r} (SASL {mechanism}): {exc}"
        )
    except ssl.SSLError as exc:
        return KafkaRefused(f"TLS handshake with Kafka at {where} failed: {exc}")
    except (OSError, TimeoutError, KafkaConnectionError):
        return None
    conn.close()
    return None


async def wait_for_kafka(kafka: str | KafkaClient, within: float = 30.0) -> None:
    """Fail with a clear message when no broker answers (instead of hanging), at once when
    one answered and refused us. For the CLI: the message is the whole story, so aiokafka's
    own line per failed attempt is left out."""
    with _library_silent():
        await _wait_for_kafka(kafka, within)


@contextlib.contextmanager
def _library_silent() -> Iterator[None]:
    logger = logging.getLogger("aiokafka")  # its modules' loggers inherit this level
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _wait_for_kafka(kafka: str | KafkaClient, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    bootstrap = as_client(kafka)["bootstrap_servers"]
    while True:
        try:
            await kafka_answers(kafka)
            return
        except KafkaRefused as exc:
            raise RuntimeError(str(exc)) from exc
        except (KafkaConnectionError, TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"no Kafka broker at {bootstrap}: start one with `scripts/services.sh up`"
                ) from exc
            await asyncio.sleep(1.0)
