"""The deal fold's fast paths give what the slow ones gave: a state after an event holds its
fields as validation holds them (``apply_event`` builds it without ``model_copy``), and the
facts scored are ``DealFacts.from_record``'s (``facts_of`` builds them positionally)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.domain.deal import DealState, apply_event
from worker.domain.deal_batch import facts_of
from worker.engine import DealFacts
from worker.testdata.seed import generate_deals

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _states() -> list[DealState]:
    """Every state a fold of 300 generated deals' histories passes through."""
    current: dict[str, DealState] = {}
    seen = []
    for event in generate_deals(300, 7, AS_OF):
        after = apply_event(current.get(event.subject), event)
        if after is not None:
            current[event.subject] = after
            seen.append(after)
    return seen


STATES = _states()


def test_states_hold_their_fields_as_validation_does():
    assert len(STATES) > 1000
    for state in STATES:
        valid = DealState.model_validate(dict(state.__dict__))
        assert valid == state
        assert [type(v) for v in valid.__dict__.values()] == [
            type(v) for v in state.__dict__.values()
        ]
        assert state.model_fields_set <= set(DealState.model_fields)


def test_an_event_changes_a_copy_and_leaves_the_state_before_as_it_was():
    created = STATES[0]
    before = dict(created.__dict__)
    event = next(e for e in generate_deals(300, 7, AS_OF) if e.subject == created.deal_id)
    later = apply_event(created, event.model_copy(update={"id": "x", "time": AS_OF}))
    assert later is not None and later is not created
    assert created.__dict__ == before
    assert later.last_event_id == "x"
    assert "last_event_id" in later.model_fields_set


def test_facts_are_from_records():
    for state in STATES:
        assert facts_of(state) == DealFacts.from_record(state)
