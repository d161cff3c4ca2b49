"""Vendor webhook payloads -> our deal events (``schemas.deal_events``).

``adapt(source, raw, stages)`` picks the adapter of ``source`` (a key of ``ADAPTERS``) and
returns the events of one webhook body, or raises :class:`AdapterError` with a reason (send
the body to the dead-letter topic with it). Adapters are pure: no I/O, no wall clock.

    stages = load_stage_map()                      # packaged defaults (stages.toml)
    stages = load_stage_map(Path("my-stages.toml"))  # defaults overridden by the user's tables
    events = adapt("hubspot", request_body, stages)

See ``base`` for the conventions shared by the adapters (deal id prefixes, event ids,
deletions) and each module for its vendor's mapping.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.deal_events import DealEvent
from worker.adapters import cloudevents, hubspot, pipedrive, salesforce
from worker.adapters.base import (
    DELETED_REASON,
    AdapterError,
    StageMap,
    default_stage_map,
    load_stage_map,
)

Adapter = Callable[[bytes, StageMap], list[DealEvent]]

ADAPTERS: dict[str, Adapter] = {
    "cloudevents": cloudevents.to_events,
    "hubspot": hubspot.to_events,
    "salesforce": salesforce.to_events,
    "pipedrive": pipedrive.to_events,
}


def adapt(source: str, raw: bytes, stages: StageMap) -> list[DealEvent]:
    """The deal events of one ``source`` webhook body (possibly none: an untracked change)."""
    adapter = ADAPTERS.get(source)
    if adapter is None:
        raise AdapterError(f"unknown source {source!r}: expected one of {', '.join(ADAPTERS)}")
    return adapter(raw, stages)


__all__ = [
    "ADAPTERS",
    "DELETED_REASON",
    "Adapter",
    "AdapterError",
    "StageMap",
    "adapt",
    "default_stage_map",
    "load_stage_map",
]
