"""Malformed messages scattered among the valid ones change nothing: every one is
dead-lettered, and the state and alert ids are those of the stream without them."""

from __future__ import annotations

import pytest

from tests.faults.conftest import assert_same
from tests.faults.stream import interleave, malformed, publish_records
from tests.services import read_all, unique
from worker.app import Worker
from worker.kafka.topics import dlq_topic, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.faults]
BAD = 10_000


async def test_malformed_messages_among_valid_ones(services, stream, undisturbed, new_run):
    topic = unique("faults.deal-events-bad")
    await ensure_topics(services.bootstrap, [topic], 3)
    await publish_records(services.bootstrap, topic, interleave(stream.records, malformed(BAD)))
    run = await new_run(topic)
    worker = Worker(run.settings)
    await worker.start()
    await worker.broker.start()
    try:
        outcome = await run.finished()
    finally:
        await worker.broker.stop()
        await worker.stop()
    assert_same(outcome, undisturbed)
    # every malformed record dead-lettered (a batch redelivered after a rebalance sends its
    # dead letters again: told apart by their source offset)
    dead = await read_all(services.bootstrap, dlq_topic(topic))
    sources = {
        (dict(r.headers)["dlq.source.partition"], dict(r.headers)["dlq.source.offset"])
        for r in dead
    }
    assert len(sources) == BAD
    assert {r.key for r in dead} == {f"bad-{i}".encode() for i in range(BAD)}
