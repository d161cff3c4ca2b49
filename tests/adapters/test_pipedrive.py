from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.deal_events import DealStage
from worker.adapters import DELETED_REASON, AdapterError, adapt

from .conftest import FIXTURES, fixture_bytes, replay


def test_create(events_of):
    (event,) = events_of("pipedrive", "create")
    assert event.type == "deal.created"
    assert event.subject == "pd-13414617-1201"
    assert event.id == "pd-13414617-1201-7a0f6c3e-2a57-4a70-9f0e-5c3f1d2b8e41"
    assert event.source == "pipedrive/13414617"
    assert event.time == datetime(2025, 6, 2, 9, 15, 4, 118000, tzinfo=UTC)
    assert event.data.model_dump(exclude_none=True) == {
        "name": "Initech - Analytics add-on",
        "owner": "20987654",
        "amount": Decimal("18000.00"),
        "currency": "USD",
        "stage": DealStage.prospecting,
        "expected_close_date": date(2025, 8, 29),
    }  # org_id 377 is a bare id, not a company name


def test_change_takes_only_the_fields_in_previous(events_of):
    (event,) = events_of("pipedrive", "change_value")
    assert event.type == "deal.updated"
    assert event.data.model_dump(exclude_none=True) == {
        "amount": Decimal("21500.00"),
        "expected_close_date": date(2025, 9, 15),
    }


def test_stage_change(events_of):
    (event,) = events_of("pipedrive", "stage_change")
    assert event.type == "deal.stage_changed"
    assert event.data.stage is DealStage.proposal


def test_won_with_its_final_value(events_of):
    (event,) = events_of("pipedrive", "won")
    assert event.type == "deal.closed_won"
    assert event.data.amount == Decimal("20000")


def test_lost_with_its_reason(events_of):
    (event,) = events_of("pipedrive", "lost")
    assert event.type == "deal.closed_lost"
    assert event.data.reason == "Went with a competitor"
    assert event.data.amount is None


def test_delete(events_of):
    (event,) = events_of("pipedrive", "delete")
    assert event.type == "deal.closed_lost"
    assert event.data.reason == DELETED_REASON


def test_the_whole_story_merges(events_of):
    names = ["create", "change_value", "stage_change", "won"]
    events = [e for n in names for e in events_of("pipedrive", n)]
    state = replay(events)
    assert state is not None
    assert state.stage is DealStage.closed_won
    assert state.amount == Decimal("20000")
    assert state.close_date_pushes == 1  # 2025-08-29 -> 2025-09-15


def test_reopen_goes_back_to_the_deal_stage(stages):
    body = json.loads((FIXTURES / "pipedrive" / "won.json").read_text())
    body["data"]["status"] = "open"
    body["previous"] = {"status": "won"}
    (event,) = adapt("pipedrive", json.dumps(body).encode(), stages)
    assert event.type == "deal.stage_changed"
    assert event.data.stage is DealStage.proposal  # stage_id 4


def test_created_won_gets_created_then_closed(stages):
    body = json.loads((FIXTURES / "pipedrive" / "create.json").read_text())
    body["data"]["status"] = "won"
    body["data"]["stage_id"] = 999  # not looked up for a closed deal
    created, won = adapt("pipedrive", json.dumps(body).encode(), stages)
    assert (created.type, won.type) == ("deal.created", "deal.closed_won")
    assert created.data.stage is None
    assert created.data.amount == Decimal("18000")
    assert won.id == created.id + "-close"


def test_a_v1_update_maps_the_fields_that_differ_from_previous(events_of):
    (event,) = events_of("pipedrive", "v1_updated")
    assert event.type == "deal.updated"
    assert event.subject == "pd-13414617-1201"
    assert event.id == "pd-13414617-1201-v1-1750428171402000"
    assert event.data.model_dump(exclude_none=True) == {"amount": Decimal("21500")}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("person_change", "entity 'person' is not a deal"),
        ("unknown_stage", "unknown pipedrive deal stage '42'"),
    ],
)
def test_unmappable_fixtures_raise(name, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("pipedrive", fixture_bytes("pipedrive", name), stages)
    assert fragment in err.value.reason


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda b: b["meta"].pop("entity_id"), "meta has no 'entity_id'"),
        (lambda b: b["meta"].update(action="merge"), "unsupported pipedrive action 'merge'"),
        (lambda b: b.update(data=None), "no deal in 'data'"),
        (lambda b: b["data"].update(status="archived"), "unknown pipedrive deal status"),
        (lambda b: b["meta"].update(timestamp="soon"), "meta.timestamp 'soon'"),
        (lambda b: b["data"].update(currency="dollars"), "currency"),
        (lambda b: b["data"].update(title=["a"]), "title ['a'] is not text"),
    ],
)
def test_bad_payloads_raise_with_a_reason(mutate, fragment, stages):
    body = json.loads((FIXTURES / "pipedrive" / "create.json").read_text())
    mutate(body)
    with pytest.raises(AdapterError) as err:
        adapt("pipedrive", json.dumps(body).encode(), stages)
    assert fragment in err.value.reason


def test_a_non_object_body_raises(stages):
    with pytest.raises(AdapterError, match="not a JSON object"):
        adapt("pipedrive", b"[]", stages)


def test_an_emptied_field_clears_and_two_companies_do_not_collide(stages):
    """Issue 10: cleared fields clear (a v2 change naming the close date in ``previous`` with
    null in ``data`` used to be ignored), and deal ids carry the company."""
    body = json.loads(fixture_bytes("pipedrive", "change_value"))
    body["previous"] = {"expected_close_date": "2025-09-15", "value": 18000}
    body["data"]["expected_close_date"] = None
    (event,) = adapt("pipedrive", json.dumps(body).encode(), stages)
    assert event.type == "deal.updated" and event.data.cleared == ["expected_close_date"]
    assert event.data.amount is not None
    body["meta"]["company_id"] = 99
    (other,) = adapt("pipedrive", json.dumps(body).encode(), stages)
    assert (event.subject, other.subject) == ("pd-13414617-1201", "pd-99-1201")


def test_a_delete_with_merged_to_id_is_a_merge(stages):
    """Issue 10: webhooks v2 sends a merge as the merged deal's delete, its meta naming
    merged_to_id (Pipedrive's v2 migration guide); it used to close the deal as lost."""
    body = json.loads(fixture_bytes("pipedrive", "delete"))
    body["meta"]["merged_to_id"] = "1187"
    (event,) = adapt("pipedrive", json.dumps(body).encode(), stages)
    assert (event.type, event.subject) == ("deal.merged", "pd-13414617-1201")
    assert event.data.into == "pd-13414617-1187"
