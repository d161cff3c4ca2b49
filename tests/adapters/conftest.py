from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.deal_events import DealEvent
from worker.adapters import StageMap, adapt, load_stage_map
from worker.domain.deal import DealState, apply_event

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(source: str, name: str) -> bytes:
    return (FIXTURES / source / f"{name}.json").read_bytes()


@pytest.fixture(scope="session")
def stages() -> StageMap:
    return load_stage_map()


@pytest.fixture
def events_of(stages: StageMap) -> Callable[[str, str], list[DealEvent]]:
    def run(source: str, name: str) -> list[DealEvent]:
        return adapt(source, fixture_bytes(source, name), stages)

    return run


def replay(events: list[DealEvent], state: DealState | None = None) -> DealState | None:
    """Apply events as the worker does: skip seen ids and stale events."""
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            continue
        new = apply_event(state, event)
        if new is not None:
            state = new
            seen.add(event.id)
    return state
