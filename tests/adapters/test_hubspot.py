from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.deal_events import DealStage
from worker.adapters import DELETED_REASON, AdapterError, adapt

from .conftest import fixture_bytes, replay

DEAL = "hs-62515-15829437081"


def test_creation_batch_builds_the_deal(events_of):
    events = events_of("hubspot", "creation")
    assert [e.type for e in events] == [
        "deal.created",
        "deal.updated",
        "deal.updated",
        "deal.stage_changed",
        "deal.updated",
        "deal.updated",
        "deal.updated",
    ]  # pipeline and hs_deal_stage_probability are not tracked: no events
    assert {e.subject for e in events} == {DEAL}
    assert {e.source for e in events} == {"hubspot/portal/62515"}
    assert events[0].time == datetime(2025, 6, 2, 9, 15, 4, 211000, tzinfo=UTC)
    assert len({e.id for e in events}) == len(events)

    state = replay(events)
    assert state is not None
    assert state.name == "Acme Corp - Platform rollout"
    assert state.amount == Decimal("48000")
    assert state.stage is DealStage.prospecting
    assert state.expected_close_date == date(2025, 8, 29)
    assert state.owner == "52550153"
    assert state.currency == "USD"  # sent lower case


def test_property_changes_are_sorted_by_time_and_mapped(events_of):
    events = events_of("hubspot", "property_change")
    assert [e.time for e in events] == sorted(e.time for e in events)
    data = [e.data.model_dump(exclude_none=True, exclude_defaults=True) for e in events]
    assert data == [
        {"amount": Decimal("52500.50")},
        {"expected_close_date": date(2025, 9, 30)},  # ISO date-time value accepted
        {"last_activity_at": datetime(2025, 6, 20, 13, 45, tzinfo=UTC)},
        {"interactions": 4},
    ]  # hs_lastmodifieddate: untracked, no event
    assert all(e.type == "deal.updated" for e in events)


def test_a_retried_notification_has_the_same_event_id(events_of):
    first = events_of("hubspot", "property_change")[0]
    (retry,) = events_of("hubspot", "property_change_retry")
    assert retry.id == first.id
    assert retry == first


def test_stage_change_goes_through_the_stage_map(events_of):
    (event,) = events_of("hubspot", "stage_change")
    assert event.type == "deal.stage_changed"
    assert event.data.stage is DealStage.proposal


def test_closedwon_becomes_closed_won_after_the_amount_update(events_of):
    events = events_of("hubspot", "closed_won")
    assert [e.type for e in events] == ["deal.updated", "deal.closed_won"]
    assert events[0].data.amount == Decimal("51000")
    state = replay(events)
    assert state is not None
    assert state.stage is DealStage.closed_won
    assert state.amount == Decimal("51000")


def test_closedlost_becomes_closed_lost(events_of):
    (event,) = events_of("hubspot", "closed_lost")
    assert event.type == "deal.closed_lost"
    assert event.subject == "hs-62515-15829437999"


def test_deletion_closes_the_deal_as_lost(events_of):
    (event,) = events_of("hubspot", "deletion")
    assert event.type == "deal.closed_lost"
    assert event.data.reason == DELETED_REASON == "deleted in CRM"


def test_a_late_older_change_is_stale_for_the_merge(events_of):
    newer = events_of("hubspot", "closed_won")
    older = events_of("hubspot", "property_change")
    state = replay(newer)
    from worker.domain.deal import apply_event

    assert apply_event(state, older[0]) is None


def test_a_contact_notification_is_skipped_not_dead_lettered(stages):
    events = adapt("hubspot", fixture_bytes("hubspot", "contact_creation"), stages)
    assert events == []
    assert events.skipped == ["subscription type 'contact.creation' is not about deals"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("unknown_stage", "unknown hubspot deal stage '98765432'"),
    ],
)
def test_unmappable_fixtures_raise(name, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("hubspot", fixture_bytes("hubspot", name), stages)
    assert fragment in err.value.reason


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[{", "not valid JSON"),
        (b"[]", "empty array"),
        (b"[1]", "not a JSON object"),
        (b'[{"subscriptionType": "deal.creation", "eventId": 1, "occurredAt": 1}]', "objectId"),
        (
            b'[{"subscriptionType": "deal.creation", "objectId": 5, "occurredAt": 1}]',
            "'eventId'",
        ),
        (
            b'[{"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 1,'
            b' "occurredAt": 1748855704211, "propertyName": "amount", "propertyValue": "lots"}]',
            "amount 'lots' is not a number",
        ),
        (
            b'[{"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 1,'
            b' "occurredAt": 1748855704211, "propertyName": "amount", "propertyValue": "-5"}]',
            "greater than or equal to 0",
        ),
        (
            b'[{"subscriptionType": "deal.creation", "objectId": 5, "eventId": 1,'
            b' "occurredAt": "yesterday"}]',
            "occurredAt 'yesterday' is not a timestamp",
        ),
    ],
)
def test_bad_payloads_raise_with_a_reason(raw, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("hubspot", raw, stages)
    assert fragment in err.value.reason


def test_one_bad_notification_rejects_the_batch_and_names_its_index(stages):
    raw = (
        b'[{"subscriptionType": "deal.creation", "objectId": 5, "eventId": 1,'
        b' "occurredAt": 1748855704211}, {"subscriptionType": "deal.creation",'
        b' "objectId": "6 6", "eventId": 2, "occurredAt": 1748855704211}]'
    )
    with pytest.raises(AdapterError, match=r"notification \[1\]"):
        adapt("hubspot", raw, stages)


def test_a_company_beside_a_deal_is_skipped_and_the_deal_kept(stages):
    raw = (
        b'[{"subscriptionType": "deal.creation", "objectId": 5, "eventId": 1,'
        b' "occurredAt": 1748855704211}, {"subscriptionType": "company.creation",'
        b' "objectId": 6, "eventId": 2, "occurredAt": 1748855704211}]'
    )
    events = adapt("hubspot", raw, stages)
    assert [e.subject for e in events] == ["hs-5"]
    assert events.skipped == ["subscription type 'company.creation' is not about deals"]


def test_untracked_properties_and_empty_stages_yield_nothing(stages):
    raw = (
        b'[{"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 1,'
        b' "occurredAt": 1748855704211, "propertyName": "dealstage", "propertyValue": ""},'
        b' {"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 2,'
        b' "occurredAt": 1748855704211, "propertyName": "description", "propertyValue": "x"},'
        b' {"subscriptionType": "deal.associationChange", "objectId": 5, "eventId": 3,'
        b' "occurredAt": 1748855704211},'
        b' {"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 4,'
        b' "occurredAt": 1748855704211, "propertyName": "deal_currency_code",'
        b' "propertyValue": null}]'
    )
    assert adapt("hubspot", raw, stages) == []


def test_an_emptied_property_clears_the_field(stages):
    """Issue 10: cleared fields clear (an emptied amount used to be ignored, the old amount
    kept)."""
    raw = (
        b'[{"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 1,'
        b' "occurredAt": 1748855704211, "propertyName": "amount", "propertyValue": ""},'
        b' {"subscriptionType": "deal.propertyChange", "objectId": 5, "eventId": 2,'
        b' "occurredAt": 1748855704212, "propertyName": "closedate", "propertyValue": null}]'
    )
    events = adapt("hubspot", raw, stages)
    assert [(e.type, e.data.cleared) for e in events] == [
        ("deal.updated", ["amount"]),
        ("deal.updated", ["expected_close_date"]),
    ]
    state = replay([*adapt("hubspot", fixture_bytes("hubspot", "creation"), stages)])
    assert state is not None and state.amount is not None
    cleared = replay([e.model_copy(update={"subject": state.deal_id}) for e in events], state)
    assert cleared is not None and (cleared.amount, cleared.expected_close_date) == (None, None)


def test_two_portals_do_not_collide(stages):
    """Issue 10: ids include the portal (the same objectId in two portals is two deals)."""
    note = json.loads(fixture_bytes("hubspot", "creation"))[0]
    one = adapt("hubspot", json.dumps({**note, "portalId": 1}).encode(), stages)
    two = adapt("hubspot", json.dumps({**note, "portalId": 2}).encode(), stages)
    assert (one[0].subject, two[0].subject) == (
        f"hs-1-{note['objectId']}",
        f"hs-2-{note['objectId']}",
    )
    assert one[0].id != two[0].id


def test_a_single_object_body_is_accepted(stages):
    raw = (
        b'{"subscriptionType": "deal.creation", "objectId": 7, "eventId": 9,'
        b' "occurredAt": 1748855704211}'
    )
    (event,) = adapt("hubspot", raw, stages)
    assert event.type == "deal.created"
    assert event.subject == "hs-7"
    assert event.source == "hubspot"


def test_a_merge_is_a_merge_not_a_loss(events_of, stages):
    """Issue 10: deal.merge used to be dead-lettered; the merged deal stayed open."""
    (event,) = events_of("hubspot", "merge")
    assert (event.type, event.subject) == ("deal.merged", "hs-62515-15829437999")
    assert event.data.into == "hs-62515-15829437081"
    note = json.loads(fixture_bytes("hubspot", "merge"))[0]
    note["newObjectId"] = 777  # HubSpot made a new deal of both
    events = adapt("hubspot", json.dumps(note).encode(), stages)
    assert [(e.subject, e.data.into) for e in events] == [
        ("hs-62515-15829437081", "hs-62515-777"),
        ("hs-62515-15829437999", "hs-62515-777"),
    ]
    state = replay(events_of("hubspot", "creation"))
    gone = replay([event.model_copy(update={"subject": state.deal_id})], state)
    assert gone.merged_into == "hs-62515-15829437081" and gone.stage == state.stage
    assert replay(events_of("hubspot", "closed_won"), gone) == gone  # later events: stale
