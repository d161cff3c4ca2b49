import json

import pytest
from pydantic import ValidationError

from schemas.deal_events import DealEventAdapter, DealStage
from schemas.export import render, schema_dir

BASE = {"id": "e1", "source": "crm", "time": "2026-03-01T10:00:00Z", "subject": "D1"}


def parse(**overrides):
    return DealEventAdapter.validate_python({**BASE, **overrides})


def test_created_event_parses_with_typed_fields():
    ev = parse(
        type="deal.created",
        data={"amount": "1200.50", "stage": "proposal", "expected_close_date": "2026-05-01"},
    )
    assert ev.data.stage is DealStage.proposal
    assert str(ev.data.amount) == "1200.50"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"type": "deal.created", "data": {"amount": -1}}, "greater than or equal"),
        ({"type": "deal.created", "data": {"expected_close_date": "2999-01-01"}}, "outside"),
        ({"type": "deal.created", "data": {"stage": "maybe"}}, "stage"),
        ({"type": "deal.created", "data": {"surprise": 1}}, "Extra inputs"),
        ({"type": "deal.created", "data": {}, "time": "2026-03-01T10:00:00"}, "UTC offset"),
        ({"type": "deal.stage_changed", "data": {}}, "stage"),
        ({"type": "deal.exploded", "data": {}}, "deal.exploded"),
        ({"type": "deal.created", "data": {"currency": "usd"}}, "pattern"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(overrides, fragment):
    with pytest.raises(ValidationError) as info:
        parse(**overrides)
    assert fragment in str(info.value)


def test_closing_events_need_no_data():
    assert parse(type="deal.closed_won").data.amount is None


def test_exported_json_schemas_are_up_to_date():
    rendered = render()
    for name, text in rendered.items():
        path = schema_dir() / name
        assert path.exists(), f"run `revintel export-schemas --out schemas/json` ({name} missing)"
        assert path.read_text() == text, (
            f"{name} is stale: run `revintel export-schemas --out schemas/json`"
        )
    schema = json.loads(rendered["deal-event.schema.json"])
    assert set(schema["discriminator"]["mapping"]) >= {"deal.created", "deal.closed_lost"}
