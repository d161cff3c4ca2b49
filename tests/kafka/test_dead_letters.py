"""Every kind of bad input lands in the dead-letter topic with its reason; the rest applies."""

from __future__ import annotations

import json

import pytest

from tests.factories import created
from tests.services import eventually, publish, read_topic, unique

pytestmark = pytest.mark.integration


def mutated(deal: str, **changes) -> bytes:
    raw = created(deal).model_dump(mode="json")
    for path, value in changes.items():
        target = raw
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return json.dumps(raw).encode()


async def test_bad_inputs_are_dead_lettered_with_reasons(settings, start_worker, producer, db):
    p = unique("DL")
    settings = settings.model_copy(update={"max_message_bytes": 2048})
    bad: dict[str, tuple[bytes, str, bytes]] = {
        # name: (payload, expected error class, fragment of the reason)
        "malformed": (b'{"id": "x", "type": ', "malformed_json", b"EOF"),
        "schema": (mutated(f"{p}-s", data__lead_score=180), "schema_violation", b"lead_score"),
        "unknown": (
            mutated(f"{p}-u", type="deal.archived"),
            "unknown_event_type",
            b"deal.archived",
        ),
        "oversized": (mutated(f"{p}-o") + b" " * 3000, "oversized", b"exceeds 2048"),
        "negative": (mutated(f"{p}-n", data__amount=-250), "schema_violation", b"amount"),
        "absurd_date": (
            mutated(f"{p}-d", data__expected_close_date="3024-02-30"),
            "schema_violation",
            b"expected_close_date",
        ),
        "ancient_time": (
            mutated(f"{p}-t", time="1850-01-01T00:00:00Z"),
            "schema_violation",
            b"outside",
        ),
    }
    good = [created(f"{p}-ok{i}", amount=500 * (i + 1)) for i in range(len(bad) + 1)]
    await start_worker(settings)
    for i, (payload, _, _) in enumerate(bad.values()):
        await publish(producer, settings.deal_topic, [good[i]])
        await producer.send_and_wait(settings.deal_topic, payload, key=f"{p}-{i}".encode())
    await publish(producer, settings.deal_topic, [good[-1]])

    async def all_good_applied():
        return await db.fetchval(
            "SELECT count(*) FROM deals WHERE deal_id LIKE $1 || '-ok%'", p
        ) == len(good)

    await eventually(all_good_applied)
    dead = await read_topic(settings.kafka_bootstrap_servers, settings.deal_dlq_topic, len(bad))
    assert len(dead) == len(bad)
    by_value = {r.value: dict(r.headers) for r in dead}
    for name, (payload, error, fragment) in bad.items():
        headers = by_value[payload]
        assert headers["dlq.error"].decode() == error, name
        assert fragment in headers["dlq.reason"], (name, headers["dlq.reason"])
        assert headers["dlq.source.topic"].decode() == settings.deal_topic
        assert int(headers["dlq.source.offset"]) >= 0
    assert not await db.fetchval(
        "SELECT count(*) FROM deals WHERE deal_id LIKE $1 || '%' AND deal_id NOT LIKE $1 || '-ok%'",
        p,
    )
