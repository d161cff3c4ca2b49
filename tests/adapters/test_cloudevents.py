from __future__ import annotations

import pytest

from worker.adapters import AdapterError, adapt

from .conftest import fixture_bytes, replay


def test_single_event(events_of):
    (event,) = events_of("cloudevents", "single")
    assert event.type == "deal.created"
    assert event.subject == "ACME-D-42"


def test_batch(events_of):
    events = events_of("cloudevents", "batch")
    assert [e.type for e in events] == [
        "deal.created",
        "deal.stage_changed",
        "deal.activity_logged",
        "deal.closed_won",
    ]
    state = replay(events)
    assert state is not None
    assert state.stage == "closed_won"
    assert state.interactions == 1


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("unknown_type", "'deal.archived'"),
        ("naive_time", "timestamp must carry a UTC offset"),
    ],
)
def test_invalid_envelopes_raise(name, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("cloudevents", fixture_bytes("cloudevents", name), stages)
    assert fragment in err.value.reason


@pytest.mark.parametrize(("raw", "fragment"), [(b"nope", "not valid JSON"), (b"[]", "empty")])
def test_garbage_raises(raw, fragment, stages):
    with pytest.raises(AdapterError, match=fragment):
        adapt("cloudevents", raw, stages)
