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


def test_bad_json_or_a_bad_value_in_a_single_body_raises_as_adapt_does(stages):
    bad_value = json.loads(fixture_bytes("pipedrive", "create"))
    bad_value["data"]["value"] = "12k"
    for source, raw in (("hubspot", b"{not json"), ("pipedrive", json.dumps(bad_value).encode())):
        try:
            adapt_each(source, raw, stages)
        except AdapterError:
            continue
        raise AssertionError("expected an AdapterError")


def test_an_unknown_pipedrive_stage_costs_only_the_stage(stages):
    body = json.loads(fixture_bytes("pipedrive", "create"))
    body["data"]["stage_id"] = 42  # a stage of another pipeline, not in the map
    out = adapt_each("pipedrive", json.dumps(body).encode(), stages)
    (created,) = out
    assert created.type == "deal.created" and created.data.stage is None
    assert created.data.name == "Initech - Analytics add-on" and created.data.amount == 18000
    (failure,) = out.failed
    assert "unknown pipedrive deal stage '42'" in failure.reason
    assert "other fields were applied" in failure.reason


def test_a_stage_only_change_to_an_unknown_stage_is_only_a_dead_letter(stages):
    for source in ("pipedrive", "salesforce", "hubspot"):
        out = adapt_each(source, fixture_bytes(source, "unknown_stage"), stages)
        assert list(out) == []
        (failure,) = out.failed
        assert f"unknown {source} deal stage" in failure.reason
        assert failure.raw == fixture_bytes(source, "unknown_stage")
