from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from schemas.deal_events import OPEN_STAGES, DealEventAdapter, DealStage
from worker.cli.data import (
    plan_batches,
    register,
    summary_table,
    to_message,
    write_jsonl,
)
from worker.testdata.seed import ARCHETYPES, final_states, generate_deals, summarize

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events():
    return generate_deals(40, seed=7, as_of=AS_OF)


@pytest.fixture(scope="module")
def states(events):
    return final_states(events)


def test_deterministic_for_a_seed(events):
    assert generate_deals(40, seed=7, as_of=AS_OF) == events
    assert generate_deals(40, seed=8, as_of=AS_OF) != events


def test_ids_derive_from_seed_and_index(events):
    assert len({e.id for e in events}) == len(events)
    assert {e.subject for e in events} == {f"seed7-{i:04d}" for i in range(40)}
    assert all(e.id.startswith(f"{e.subject}-e") for e in events)
    # deal i does not depend on n: a bigger run only adds deals
    smaller = generate_deals(15, seed=7, as_of=AS_OF)
    by_id = {e.id: e for e in events}
    assert all(by_id[e.id] == e for e in smaller)
    # a second run with the same seed has the same ids (the worker dedupes them)
    later = generate_deals(40, seed=7, as_of=AS_OF + timedelta(days=3))
    assert {e.id for e in later} == {e.id for e in events}


def test_events_are_valid_ordered_and_before_as_of(events):
    keys = [(e.time, e.id) for e in events]
    assert keys == sorted(keys)
    assert all(e.time < AS_OF for e in events)
    by_deal = defaultdict(list)
    for e in events:
        by_deal[e.subject].append(e)
    for deal_events in by_deal.values():
        assert deal_events[0].type == "deal.created"
        times = [e.time for e in deal_events]
        assert times == sorted(set(times))  # strictly increasing per deal
    for e in events:
        assert DealEventAdapter.validate_json(e.model_dump_json(exclude_none=True)) == e


def test_every_stage_is_represented(states):
    assert {s.stage for s in states.values()} == set(DealStage)
    assert {s.stage for s in generate_deals_states(7)} == set(DealStage)


def generate_deals_states(n: int):
    return final_states(generate_deals(n, seed=1, as_of=AS_OF)).values()


def test_at_risk_cases_are_present(states):
    open_deals = [s for s in states.values() if s.stage in OPEN_STAGES]
    stagnant = [s for s in open_deals if AS_OF - s.stage_entered_at > timedelta(days=50)]
    quiet = [
        s
        for s in open_deals
        if s.last_activity_at is None or AS_OF - s.last_activity_at > timedelta(days=30)
    ]
    slipping = [s for s in open_deals if s.close_date_pushes >= 3]
    whales = [s for s in open_deals if s.amount is not None and s.amount >= 500_000]
    healthy = [
        s
        for s in open_deals
        if s.last_activity_at and AS_OF - s.last_activity_at < timedelta(days=5)
    ]
    assert stagnant and quiet and slipping and whales and healthy
    assert any(s.competitors for s in open_deals)
    assert any(s.has_champion and s.decision_maker_engaged for s in open_deals)


def test_closed_deals_have_outcomes(states, events):
    lost = [e for e in events if e.type == "deal.closed_lost"]
    assert lost
    assert all(e.data.reason for e in lost)
    won = [s for s in states.values() if s.stage is DealStage.closed_won]
    assert all(s.closed_at is not None and s.amount for s in won)


def test_summarize(events, states):
    summary = summarize(events)
    assert summary.deals == 40
    assert summary.events == len(events)
    assert sum(summary.by_stage.values()) == 40
    assert summary.by_stage[DealStage.closed_won] == 4 * 2  # two won archetypes in ten
    expected_open = sum(
        (s.amount or Decimal(0) for s in states.values() if s.stage in OPEN_STAGES), Decimal(0)
    )
    assert summary.open_pipeline == expected_open > 0
    assert summary.open_deals == sum(1 for s in states.values() if s.stage in OPEN_STAGES)
    assert summary.last_event is not None and summary.last_event < AS_OF


def test_summarize_dedupes_event_ids(events):
    assert summarize(events + events[:50]).by_stage == summarize(events).by_stage


def test_rejects_a_naive_as_of():
    with pytest.raises(ValueError, match="UTC offset"):
        generate_deals(3, seed=1, as_of=datetime(2026, 3, 1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**9), n=st.integers(0, 12))
def test_any_seed_gives_valid_histories(seed, n):
    events = generate_deals(n, seed=seed, as_of=AS_OF)
    states = final_states(events)
    assert len(states) == n
    assert len({e.id for e in events}) == len(events)
    assert all(e.time < AS_OF for e in events)
    outcome = {"won": DealStage.closed_won, "won_big": DealStage.closed_won}
    outcome["lost"] = DealStage.closed_lost
    for i in range(n):
        stage = states[f"seed{seed}-{i:04d}"].stage
        archetype = ARCHETYPES[i % len(ARCHETYPES)]
        if archetype in outcome:
            assert stage is outcome[archetype]
        else:
            assert stage in OPEN_STAGES


# --------------------------------------------------------------------------- command helpers


def test_plan_batches_full_speed_and_paced():
    full = list(plan_batches(1200, None, max_batch=500))
    assert [(due, s.start, s.stop) for due, s in full] == [
        (0.0, 0, 500),
        (0.0, 500, 1000),
        (0.0, 1000, 1200),
    ]
    paced = list(plan_batches(100, 50.0))
    assert [s.stop - s.start for _, s in paced] == [5] * 20  # ~10 batches a second
    assert paced[-1][0] == pytest.approx(95 / 50)
    slow = list(plan_batches(3, 0.5))
    assert [(due, s.start) for due, s in slow] == [(0.0, 0), (2.0, 1), (4.0, 2)]
    assert list(plan_batches(0, None)) == []
    with pytest.raises(ValueError, match=r"^rate must be positive$"):
        list(plan_batches(3, 0))


def test_to_message_is_keyed_by_deal(events):
    key, value, headers = to_message(events[0])
    assert key == events[0].subject.encode()
    assert DealEventAdapter.validate_json(value) == events[0]
    assert headers == ()


def test_write_jsonl_and_summary_table(events, tmp_path):
    path = tmp_path / "out.jsonl"
    with path.open("w") as f:
        assert write_jsonl(events, f) == len(events)
    lines = path.read_text().splitlines()
    assert [DealEventAdapter.validate_json(line) for line in lines] == events
    table = summary_table(summarize(events), "t")
    assert table.row_count == len(DealStage) + 2


def test_seed_command_writes_jsonl():
    app = typer.Typer()
    register(app)
    args = ["seed", "--deals", "12", "--seed", "3", "--as-of", "2026-03-01", "--jsonl", "-"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    expected = generate_deals(12, seed=3, as_of=datetime(2026, 3, 1, tzinfo=UTC))
    assert [line["id"] for line in lines] == [e.id for e in expected]
    assert "Seeded 12 deals (seed 3)" in result.stderr


class FakeProducer:
    """Stands in for the durable aiokafka producer: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic, value=None, key=None, headers=None):
        self.sent.append((topic, key, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@pytest.fixture
def fake_kafka(monkeypatch) -> FakeProducer:
    import worker.kafka.producer as producers
    import worker.kafka.topics as topics

    producer = FakeProducer()

    async def nothing(*args, **kwargs) -> None:
        return None

    monkeypatch.setattr(topics, "wait_for_kafka", nothing)
    monkeypatch.setattr(topics, "ensure_topics", nothing)
    monkeypatch.setattr(producers, "durable_producer", lambda bootstrap: producer)
    return producer


def test_publish_sends_in_order_keyed_by_deal(fake_kafka, events):
    from worker.cli.data import publish
    from worker.settings import get_settings

    counted: list[int] = []
    topic = asyncio.run(publish(events, rate=5_000.0, on_sent=counted.append))
    assert topic == get_settings().deal_topic
    assert fake_kafka.started and fake_kafka.stopped
    assert sum(counted) == len(events) == len(fake_kafka.sent)
    assert [json.loads(v)["id"] for _, _, v in fake_kafka.sent] == [e.id for e in events]
    assert all(k == json.loads(v)["subject"].encode() for _, k, v in fake_kafka.sent)


def test_seed_command_publishes(fake_kafka):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["seed", "--deals", "10", "--as-of", "2026-03-01"])
    assert result.exit_code == 0, result.output
    assert len({k for _, k, _ in fake_kafka.sent}) == 10
    assert "Seeded 10 deals (seed 1)" in result.output
    assert "open pipeline" in result.output
