"""How every Kafka client connects: bootstrap servers plus TLS and SASL (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), the same for the worker's consumers, its producer, the admin client and the CLI.

Clients take a :data:`KafkaClient` (keyword arguments of the aiokafka clients) or, as before,
a bare bootstrap string (plaintext).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, TypeVar

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from worker.settings import Settings

KafkaClient = Mapping[str, Any]


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_C = TypeVar("_C", bound=_Startable)


@contextlib.asynccontextmanager
async def running(client: _C) -> AsyncIterator[_C]:
    """An aiokafka producer or consumer, started, and stopped on the way out; also when its
    start failed, which aiokafka leaves open ("Unclosed AIOKafkaConsumer" at exit)."""
    try:
        await client.start()
        yield client
    finally:
        await client.stop()


_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def kafka_client(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if _uses_tls(settings):
        options["ssl_context"] = tls_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def as_client(kafka: str | KafkaClient) -> dict[str, Any]:
    """A bootstrap string means plaintext, as every client did before security settings."""
    return {"bootstrap_servers": kafka} if isinstance(kafka, str) else dict(kafka)


def broker_security(settings: Settings) -> BaseSecurity | None:
    """The same settings for FastStream's broker (it builds its clients from these)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = tls_context(settings) if _uses_tls(settings) else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_sasl_password
    return _SASL[settings.kafka_sasl_mechanism](
        username=settings.kafka_sasl_username or "",
        password=password.get_secret_value() if password else "",
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )


def tls_context(settings: Settings) -> ssl.SSLContext:
    key_password = settings.kafka_ssl_key_password
    context = create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        password=key_password.get_secret_value() if key_password else None,
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")
