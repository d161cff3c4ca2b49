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

import json
from collections.abc import Callable

from schemas.deal_events import DealEvent
from worker.adapters import cloudevents, hubspot, pipedrive, salesforce
from worker.adapters.base import (
    DELETED_REASON,
    Adapted,
    AdapterError,
    ItemFailure,
    LenientStages,
    StageMap,
    default_stage_map,
    load_stage_map,
    sort_by_time,
)

Adapter = Callable[[bytes, StageMap], list[DealEvent]]

ADAPTERS: dict[str, Adapter] = {
    "cloudevents": cloudevents.to_events,
    "hubspot": hubspot.to_events,
    "salesforce": salesforce.to_events,
    "pipedrive": pipedrive.to_events,
}


def adapt(source: str, raw: bytes, stages: StageMap) -> list[DealEvent]:
    """The deal events of one ``source`` webhook body (possibly none: an untracked change).
    Strict: one unmappable item rejects the body (its index in the reason)."""
    adapter = ADAPTERS.get(source)
    if adapter is None:
        raise AdapterError(f"unknown source {source!r}: expected one of {', '.join(ADAPTERS)}")
    return adapter(raw, stages)


def adapt_each(source: str, raw: bytes, stages: StageMap) -> Adapted:
    """As :func:`adapt`, for the worker: a JSON array of several items is mapped item by item,
    an item that fails is returned in ``failed`` (to dead-letter alone) and the others' events
    are kept, in the order ``adapt`` gives them (by time where the vendor's batches are
    unordered); and an unknown stage costs only the stage: the change's other fields are
    mapped and the stage part is in ``failed`` with its reason. A single body that fails
    otherwise (bad JSON, a bad value) raises as ``adapt`` does."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    several = isinstance(body, list) and len(body) > 1
    items = [json.dumps(item).encode() for item in body] if several else [raw]
    out = Adapted()
    for index, item_raw in enumerate(items):
        lenient = LenientStages(stages)
        try:
            events = adapt(source, item_raw, lenient)  # type: ignore[arg-type]
        except AdapterError as exc:
            if not several:
                raise
            out.failed.append(ItemFailure(index, exc.reason, item_raw))
            continue
        out.extend(events)
        out.skipped.extend(getattr(events, "skipped", ()))
        for miss in lenient.misses:  # the stage part alone goes to the dead-letter topic
            reason = f"{miss} (the change's other fields were applied)"
            out.failed.append(ItemFailure(index, reason, item_raw, stage_only=True))
    return sort_by_time(out) if source == "hubspot" and several else out


__all__ = [
    "ADAPTERS",
    "DELETED_REASON",
    "Adapted",
    "Adapter",
    "AdapterError",
    "ItemFailure",
    "StageMap",
    "adapt",
    "adapt_each",
    "default_stage_map",
    "load_stage_map",
]
