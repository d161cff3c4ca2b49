"""Retrying what fails transiently (database or broker unavailable) with capped backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError

from worker.log import get_logger

T = TypeVar("T")

# Failures that go away by themselves: retried, never dead-lettered.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    KafkaError,
)


async def retry_transient(op: Callable[[], Awaitable[T]], what: str, max_delay: float = 5.0) -> T:
    """Run ``op`` until it succeeds or fails with a non-transient error."""
    delay = 0.1
    while True:
        try:
            return await op()
        except TRANSIENT as exc:
            get_logger().warning(
                "transient_failure", operation=what, error=repr(exc), retry_in=delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
