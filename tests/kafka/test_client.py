"""`running`: an aiokafka client whose start failed is closed all the same (aiokafka leaves it
open, and the command that used it ended with an "Unclosed AIOKafkaConsumer" warning)."""

from __future__ import annotations

import gc
import warnings

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from worker.kafka.client import running

CLOSED_PORT = "127.0.0.1:1"


@pytest.mark.parametrize("kind", [AIOKafkaConsumer, AIOKafkaProducer], ids=lambda k: k.__name__)
async def test_a_client_whose_start_failed_is_closed(kind):
    client = kind(bootstrap_servers=CLOSED_PORT)
    with pytest.raises(KafkaConnectionError):
        async with running(client):
            raise AssertionError("started against a closed port")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
