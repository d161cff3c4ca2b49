from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from schemas.deal_events import DealStage
from worker.adapters import DELETED_REASON, AdapterError, adapt

from .conftest import fixture_bytes, replay

OPP = "sf-0065g00000XyZ12AAB"


def test_create_pubsub_style_maps_all_tracked_fields(events_of):
    (event,) = events_of("salesforce", "create")
    assert event.type == "deal.created"
    assert event.subject == OPP
    assert event.source == "salesforce/cdc/Opportunity"
    assert event.id == f"{OPP}-1748855704000-0002343d-9d90-e395-ed20-cf416ba652ad-1"
    assert event.data.model_dump(exclude_none=True) == {
        "name": "Globex - Data warehouse migration",
        "owner": "0055g00000AbCdEAAZ",
        "amount": Decimal("120000.00"),
        "currency": "EUR",
        "stage": DealStage.prospecting,
        "expected_close_date": date(2025, 9, 30),  # Avro date: days since 1970-01-01
    }
    # commitTimestamp plus the sequence number in microseconds
    assert event.time == datetime(2025, 6, 2, 9, 15, 4, 1, tzinfo=UTC)


def test_update_cometd_message_takes_the_changed_fields(events_of):
    (event,) = events_of("salesforce", "update_cometd")
    assert event.type == "deal.updated"
    assert event.data.model_dump(exclude_none=True) == {
        "amount": Decimal("125000.00"),
        "expected_close_date": date(2025, 10, 31),
    }


def test_stage_change_envelope(events_of):
    (event,) = events_of("salesforce", "stage_change")
    assert event.type == "deal.stage_changed"
    assert event.data.stage is DealStage.proposal  # "Id. Decision Makers"


def test_closed_won_carries_the_final_amount(events_of):
    events = events_of("salesforce", "closed_won")
    assert [e.type for e in events] == ["deal.updated", "deal.closed_won"]
    assert events[0].data.expected_close_date == date(2025, 8, 14)
    assert events[1].data.amount == Decimal("118500")
    assert events[1].id == events[0].id + "-close"
    created = events_of("salesforce", "create")
    state = replay(created + events)
    assert state is not None
    assert state.stage is DealStage.closed_won
    assert state.amount == Decimal("118500")


def test_closed_lost(events_of):
    (event,) = events_of("salesforce", "closed_lost")
    assert event.type == "deal.closed_lost"
    assert event.subject == "sf-0065g00000XyZ99AAB"


def test_delete_closes_the_deal_as_lost(events_of):
    (event,) = events_of("salesforce", "delete")
    assert event.type == "deal.closed_lost"
    assert event.data.reason == DELETED_REASON


def test_bulk_update_yields_one_event_per_record(events_of):
    events = events_of("salesforce", "bulk_update")
    assert [e.subject for e in events] == [
        "sf-0065g00000XyZ12AAB",
        "sf-0065g00000XyZ13AAB",
        "sf-0065g00000XyZ14AAB",
    ]  # the second change event only touched LastModifiedDate: nothing
    assert {e.data.owner for e in events} == {"0055g00000ZzYyXAAV"}
    assert len({e.id for e in events}) == 3


def test_changes_of_one_transaction_keep_their_order(stages):
    def change(seq: int, stage: str) -> dict:
        return {
            "ChangeEventHeader": {
                "entityName": "Opportunity",
                "recordIds": ["006A"],
                "changeType": "UPDATE",
                "changedFields": ["StageName"],
                "commitTimestamp": 1751365800000,
                "sequenceNumber": seq,
                "transactionKey": "t1",
            },
            "StageName": stage,
        }

    later, earlier = adapt(
        "salesforce",
        json.dumps([change(2, "Negotiation/Review"), change(1, "Qualification")]).encode(),
        stages,
    )
    assert earlier.time < later.time
    state = replay([earlier, later])
    assert state is not None
    assert state.stage is DealStage.negotiation


def test_undelete_reopens_through_the_stage(stages):
    raw = json.dumps(
        {
            "ChangeEventHeader": {
                "entityName": "Opportunity",
                "recordIds": ["006A"],
                "changeType": "UNDELETE",
                "commitTimestamp": 1751365800000,
                "sequenceNumber": 1,
                "transactionKey": "t9",
            },
            "Name": "Back again",
            "StageName": "Negotiation/Review",
        }
    ).encode()
    (event,) = adapt("salesforce", raw, stages)
    assert event.type == "deal.stage_changed"
    assert event.data.stage is DealStage.negotiation


def test_replay_id_is_the_fallback_identity(stages):
    raw = json.dumps(
        {
            "payload": {
                "ChangeEventHeader": {
                    "entityName": "Opportunity",
                    "recordIds": ["006A"],
                    "changeType": "UPDATE",
                    "changedFields": ["Name"],
                    "commitTimestamp": 1751365800000,
                },
                "Name": "Renamed",
            },
            "event": {"replayId": 42},
        }
    ).encode()
    (event,) = adapt("salesforce", raw, stages)
    assert event.id == "sf-006A-1751365800000-r42"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("gap_update", "GAP_UPDATE carries no field values: re-read"),
        ("account_create", "entity 'Account' is not Opportunity"),
        ("unknown_stage", "unknown salesforce deal stage 'Legal Review'"),
    ],
)
def test_unmappable_fixtures_raise(name, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("salesforce", fixture_bytes("salesforce", name), stages)
    assert fragment in err.value.reason


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"Name": "x"}, "no ChangeEventHeader"),
        ({"ChangeEventHeader": "x"}, "not a JSON object"),
        (
            {"ChangeEventHeader": {"entityName": "Opportunity", "changeType": "UPDATE"}},
            "no 'recordIds'",
        ),
        (
            {
                "ChangeEventHeader": {
                    "entityName": "Opportunity",
                    "changeType": "UPSERT",
                    "recordIds": ["006A"],
                    "commitTimestamp": 1,
                }
            },
            "unknown changeType 'UPSERT'",
        ),
        (
            {
                "ChangeEventHeader": {
                    "entityName": "Opportunity",
                    "changeType": "UPDATE",
                    "recordIds": ["006A"],
                    "commitTimestamp": 1751365800000,
                },
                "Name": "x",
            },
            "neither a transactionKey nor a replayId",
        ),
        (
            {
                "ChangeEventHeader": {
                    "entityName": "Opportunity",
                    "changeType": "UNDELETE",
                    "recordIds": ["006A"],
                    "commitTimestamp": 1751365800000,
                    "transactionKey": "t",
                },
            },
            "UNDELETE without StageName",
        ),
    ],
)
def test_bad_payloads_raise_with_a_reason(body, fragment, stages):
    with pytest.raises(AdapterError) as err:
        adapt("salesforce", json.dumps(body).encode(), stages)
    assert fragment in err.value.reason


def test_nulled_fields_clear(stages):
    """Issue 10: cleared fields clear. The header's nulledFields names what the change emptied
    (the close date here); it used to be ignored and the old date kept."""
    body = json.loads(fixture_bytes("salesforce", "update_cometd"))
    header = body["data"]["payload"]["ChangeEventHeader"]
    header["changedFields"] = ["Amount", "CloseDate", "OwnerId", "LastModifiedDate"]
    header["nulledFields"] = ["CloseDate", "OwnerId"]
    body["data"]["payload"].update(CloseDate=None, OwnerId=None)
    (event,) = adapt("salesforce", json.dumps(body).encode(), stages)
    assert event.type == "deal.updated"
    assert event.data.amount == Decimal("125000.00")
    assert event.data.cleared == ["expected_close_date", "owner"]
    header["nulledFields"] = ["0x02"]  # a Pub/Sub bitmap: not readable without the schema
    (event,) = adapt("salesforce", json.dumps(body).encode(), stages)
    assert event.data.cleared is None
