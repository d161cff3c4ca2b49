"""The registry, the stage maps and robustness of every adapter on arbitrary input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.deal_events import DealStage
from worker.adapters import ADAPTERS, AdapterError, StageMap, adapt, load_stage_map

from .conftest import FIXTURES, fixture_bytes


def test_registry_keys():
    assert set(ADAPTERS) == {"cloudevents", "hubspot", "salesforce", "pipedrive"}


def test_unknown_source(stages):
    with pytest.raises(AdapterError, match="unknown source 'zoho'"):
        adapt("zoho", b"{}", stages)


def test_default_stage_map_covers_the_vendor_defaults(stages):
    hubspot = [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ]
    salesforce = [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Value Proposition",
        "Id. Decision Makers",
        "Perception Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
        "Closed Won",
        "Closed Lost",
    ]
    assert [stages.lookup("hubspot", s) for s in hubspot][-2:] == [
        DealStage.closed_won,
        DealStage.closed_lost,
    ]
    assert [stages.lookup("salesforce", s) for s in salesforce][-2:] == [
        DealStage.closed_won,
        DealStage.closed_lost,
    ]
    assert stages.lookup("pipedrive", "5") is DealStage.negotiation


def test_lookup_ignores_case_and_spacing(stages):
    assert stages.lookup("salesforce", "  negotiation/REVIEW ") is DealStage.negotiation
    assert stages.lookup("hubspot", "ClosedWon") is DealStage.closed_won


def test_a_user_stage_map_overrides_and_extends_the_default(tmp_path: Path, stages):
    path = tmp_path / "stages.toml"
    path.write_text(
        '[hubspot]\n98765432 = "negotiation"\nPresentationScheduled = "qualification"\n'
        '[pipedrive]\n"42" = "proposal"\n'
    )
    custom = load_stage_map(path)
    assert custom.lookup("hubspot", "98765432") is DealStage.negotiation
    assert custom.lookup("hubspot", "presentationscheduled") is DealStage.qualification
    assert custom.lookup("hubspot", "contractsent") is DealStage.negotiation  # default kept
    assert custom.lookup("salesforce", "Closed Won") is DealStage.closed_won
    # the fixtures that failed with the defaults now map
    (event,) = adapt("hubspot", fixture_bytes("hubspot", "unknown_stage"), custom)
    assert event.data.stage is DealStage.negotiation
    (event,) = adapt("pipedrive", fixture_bytes("pipedrive", "unknown_stage"), custom)
    assert event.data.stage is DealStage.proposal
    with pytest.raises(AdapterError):
        adapt("hubspot", fixture_bytes("hubspot", "unknown_stage"), stages)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('[hubspot]\nfoo = "won"\n', "invalid stage map"),
        ('[zoho]\nfoo = "proposal"\n', "unknown stage map table(s): zoho"),
        ("[hubspot\n", "cannot read stage map"),
    ],
)
def test_bad_user_stage_maps_are_reported(tmp_path: Path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_stage_map(path)


def test_missing_user_stage_map(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot read stage map"):
        load_stage_map(tmp_path / "absent.toml")


def test_stage_map_model_validates():
    with pytest.raises(ValueError):
        StageMap.model_validate({"hubspot": {"x": "maybe"}})


def test_every_fixture_maps_or_fails_with_a_reason(stages):
    for path in sorted(FIXTURES.rglob("*.json")):
        try:
            events = adapt(path.parent.name, path.read_bytes(), stages)
        except AdapterError as exc:
            assert exc.reason
        else:
            assert all(e.time.tzinfo is not None for e in events)
            assert len({e.id for e in events}) == len(events), path


WORDS = [
    "deal.creation",
    "deal.propertyChange",
    "deal.deletion",
    "dealstage",
    "amount",
    "closedate",
    "closedwon",
    "Opportunity",
    "UPDATE",
    "CREATE",
    "GAP_UPDATE",
    "deal",
    "change",
    "create",
    "delete",
    "won",
    "2025-06-02T09:15:04Z",
]
KEYS = [
    "subscriptionType",
    "objectId",
    "eventId",
    "occurredAt",
    "propertyName",
    "propertyValue",
    "portalId",
    "ChangeEventHeader",
    "entityName",
    "recordIds",
    "changeType",
    "changedFields",
    "commitTimestamp",
    "sequenceNumber",
    "transactionKey",
    "StageName",
    "Amount",
    "CloseDate",
    "payload",
    "event",
    "replayId",
    "data",
    "meta",
    "previous",
    "entity",
    "entity_id",
    "action",
    "id",
    "timestamp",
    "status",
    "stage_id",
    "value",
    "title",
    "type",
    "time",
    "subject",
    "source",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=8)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(sorted(ADAPTERS)), body=json_values)
def test_arbitrary_json_maps_or_raises_adapter_error(source, body):
    stages = load_stage_map()
    try:
        events = adapt(source, json.dumps(body).encode(), stages)
    except AdapterError as exc:
        assert exc.reason
    else:
        assert isinstance(events, list)


@settings(max_examples=100, deadline=None)
@given(source=st.sampled_from(sorted(ADAPTERS)), raw=st.binary(max_size=64))
def test_arbitrary_bytes_map_or_raise_adapter_error(source, raw):
    with contextlib.suppress(AdapterError):
        adapt(source, raw, load_stage_map())
