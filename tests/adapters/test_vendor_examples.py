"""The vendors' own documented example payloads (``vendor_examples/README.md`` names each
source), through the adapters: each test is a defect those real shapes exposed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from worker.adapters import AdapterError, adapt

EXAMPLES = Path(__file__).parent / "vendor_examples"


def example(source: str, name: str) -> bytes:
    return (EXAMPLES / source / f"{name}.json").read_bytes()


def test_hubspots_documented_batch_is_skipped_not_dead_lettered(stages):
    """HubSpot's example names the type ``eventType`` and holds only contacts: it used to be
    rejected whole ("notification has no 'subscriptionType'"), so any deal change sharing such
    a batch went to the dead-letter topic with it."""
    events = adapt("hubspot", example("hubspot", "webhooks_api_example"), stages)
    assert events == []
    assert events.skipped == [
        "subscription type 'contact.propertyChange' is not about deals",
        "subscription type 'contact.creation' is not about deals",
    ]


def test_a_deal_in_hubspots_documented_shape_maps(stages):
    """The same documented notification, about a deal: ``eventType`` is read as the type."""
    raw = example("hubspot", "webhooks_api_example").replace(b"contact.", b"deal.")
    raw = raw.replace(b'"lifecyclestage"', b'"amount"').replace(b'"subscriber"', b'"1200"')
    created, updated = adapt("hubspot", raw, stages)
    assert (created.type, created.subject) == ("deal.created", "hs-33-1246978")
    assert (updated.type, updated.subject) == ("deal.updated", "hs-33-1246965")
    assert updated.data.amount == Decimal("1200")


def test_pubsub_bitmap_changed_fields_close_the_deal(stages):
    """Pub/Sub sends ``changedFields`` as bitmaps: the update used to yield no event at all
    (no dead letter, no log line) and a Closed Won stayed open. The custom stage name is read
    through IsClosed/IsWon."""
    (won,) = adapt("salesforce", example("salesforce", "pubsub_bitmap_closed_won"), stages)
    assert won.type == "deal.closed_won"
    assert won.subject == "sf-0065f00000BcDeFAAX"
    assert won.data.amount == Decimal("51000")


def test_an_unknown_open_custom_stage_is_still_reported(stages):
    raw = example("salesforce", "pubsub_bitmap_closed_won").replace(
        b'"IsClosed": true', b'"IsClosed": false'
    )
    with pytest.raises(AdapterError, match="unknown salesforce deal stage 'Signed - Awaiting PO'"):
        adapt("salesforce", raw, stages)


def test_the_stage_map_still_wins_over_the_flags(stages):
    raw = example("salesforce", "pubsub_bitmap_closed_won").replace(
        b"Signed - Awaiting PO", b"Closed Lost"
    )
    (lost,) = adapt("salesforce", raw, stages)
    assert lost.type == "deal.closed_lost"
