"""A vendor batch is mapped item by item for the worker (``adapt_each``): a bad item is
dead-lettered alone, the deals beside it are kept (issue 10: an unknown stage in one HubSpot
notification used to send the whole batch, name, amount and close date with it, to the
dead-letter topic)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from worker.adapters import AdapterError, adapt, adapt_each

from .conftest import fixture_bytes
from .test_mutated_payloads import STAGES, Rejected, by_time, hubspot_notes, summary


@given(notes=st.lists(hubspot_notes(), min_size=2, max_size=5))
def test_each_good_notification_keeps_its_events_and_each_bad_one_is_reported(notes):
    body = json.dumps([note for note, _ in notes]).encode()
    out = adapt_each("hubspot", body, STAGES)
    good = [e for _, expected in notes if not isinstance(expected, Rejected) for e in expected]
    assert [summary(e) for e in out] == by_time(good)
    bad = [i for i, (_, expected) in enumerate(notes) if isinstance(expected, Rejected)]
    assert [f.index for f in out.failed] == bad
    for failure in out.failed:
        assert json.loads(failure.raw) == notes[failure.index][0]
        for part in notes[failure.index][1].parts:
            assert part in failure.reason


def test_the_creation_batch_with_an_unknown_stage_keeps_the_rest(stages):
    notes = json.loads(fixture_bytes("hubspot", "creation"))
    stage = next(n for n in notes if n.get("propertyName") == "dealstage")
    stage["propertyValue"] = "98765432"  # a custom pipeline's stage id, not in the map
    body = json.dumps(notes).encode()
    try:
        adapt("hubspot", body, stages)
    except AdapterError:
        pass  # the strict form still rejects the body as a whole
    else:
        raise AssertionError("adapt must stay strict")
    out = adapt_each("hubspot", body, stages)
    (failure,) = out.failed
    assert "unknown hubspot deal stage '98765432'" in failure.reason
    fields = {k for e in out for k, v in e.data.model_dump().items() if v is not None}
    assert {"name", "amount", "expected_close_date"} <= fields


def test_a_single_item_or_bad_json_is_as_strict_as_adapt(stages):
    one = fixture_bytes("hubspot", "unknown_stage")
    for raw in (one, b"{not json"):
        try:
            adapt_each("hubspot", raw, stages)
        except AdapterError:
            continue
        raise AssertionError("expected an AdapterError")
