"""The registry, the stage maps and robustness of every adapter on arbitrary input."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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
    with pytest.raises(AdapterError, match=r"unknown hubspot deal stage '98765432': map it"):
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
    with pytest.raises(ValidationError, match=r"(?s)hubspot\.x.*'maybe'"):
        StageMap.model_validate({"hubspot": {"x": "maybe"}})


# Every fixture and what it must give: ("maps", the event types in order) or ("rejected", a
# fragment of the reason).
FIXTURE_OUTCOMES: dict[str, tuple[str, tuple[str, ...] | str]] = {
    "cloudevents/batch": (
        "maps",
        ("deal.created", "deal.stage_changed", "deal.activity_logged", "deal.closed_won"),
    ),
    "cloudevents/naive_time": ("rejected", "deal.created.time: Value error, timestamp must carry"),
    "cloudevents/single": ("maps", ("deal.created",)),
    "cloudevents/unknown_type": ("rejected", "Input tag 'deal.archived' found using 'type'"),
    "hubspot/closed_lost": ("maps", ("deal.closed_lost",)),
    "hubspot/closed_won": ("maps", ("deal.updated", "deal.closed_won")),
    "hubspot/contact_creation": ("maps", ()),  # skipped and counted, not dead-lettered
    "hubspot/creation": (
        "maps",
        ("deal.created", "deal.updated", "deal.updated", "deal.stage_changed")
        + ("deal.updated",) * 3,  # closedate, owner, currency; 2 untracked properties: none
    ),
    "hubspot/deletion": ("maps", ("deal.closed_lost",)),
    "hubspot/merge": ("maps", ("deal.merged",)),
    "hubspot/property_change": ("maps", ("deal.updated",) * 4),
    "hubspot/property_change_retry": ("maps", ("deal.updated",)),
    "hubspot/stage_change": ("maps", ("deal.stage_changed",)),
    "hubspot/unknown_stage": ("rejected", "unknown hubspot deal stage '98765432'"),
    "pipedrive/change_value": ("maps", ("deal.updated",)),
    "pipedrive/create": ("maps", ("deal.created",)),
    "pipedrive/delete": ("maps", ("deal.closed_lost",)),
    "pipedrive/lost": ("maps", ("deal.closed_lost",)),
    "pipedrive/person_change": ("rejected", "pipedrive entity 'person' is not a deal"),
    "pipedrive/stage_change": ("maps", ("deal.stage_changed",)),
    "pipedrive/unknown_stage": ("rejected", "unknown pipedrive deal stage '42'"),
    "pipedrive/v1_updated": ("maps", ("deal.updated",)),
    "pipedrive/won": ("maps", ("deal.closed_won",)),
    "salesforce/account_create": ("rejected", "entity 'Account' is not Opportunity"),
    "salesforce/bulk_update": ("maps", ("deal.updated",) * 3),
    "salesforce/closed_lost": ("maps", ("deal.closed_lost",)),
    "salesforce/closed_won": ("maps", ("deal.updated", "deal.closed_won")),
    "salesforce/create": ("maps", ("deal.created",)),
    "salesforce/delete": ("maps", ("deal.closed_lost",)),
    "salesforce/gap_update": (
        "rejected",
        "GAP_UPDATE carries no field values: re-read the records",
    ),
    "salesforce/stage_change": ("maps", ("deal.stage_changed",)),
    "salesforce/unknown_stage": ("rejected", "unknown salesforce deal stage 'Legal Review'"),
    "salesforce/update_cometd": ("maps", ("deal.updated",)),
}


def test_the_fixture_table_lists_every_fixture():
    on_disk = {f"{p.parent.name}/{p.stem}" for p in FIXTURES.rglob("*.json")}
    assert on_disk == set(FIXTURE_OUTCOMES)


@pytest.mark.parametrize("name", sorted(FIXTURE_OUTCOMES))
def test_each_fixture_maps_or_is_rejected_as_expected(name, stages):
    source, _, stem = name.partition("/")
    kind, detail = FIXTURE_OUTCOMES[name]
    if kind == "rejected":
        with pytest.raises(AdapterError) as err:
            adapt(source, fixture_bytes(source, stem), stages)
        assert isinstance(detail, str)
        assert detail in err.value.reason
        return
    events = adapt(source, fixture_bytes(source, stem), stages)
    assert tuple(e.type for e in events) == detail
    assert all(e.time.tzinfo is not None for e in events)
    assert len({e.id for e in events}) == len(events)
