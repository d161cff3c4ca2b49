"""Our own envelope (``schemas.deal_events``), as a single JSON object or an array of them.

Used when the CRM side already speaks our contract (an integration platform, another
revenue-intelligence instance, ``revintel replay --jsonl`` output re-posted). The stage map is
not used: the events already carry our stages.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.deal_events import DealEvent, DealEventAdapter
from worker.adapters.base import AdapterError, StageMap, describe, guarded, parse_json

_Many: TypeAdapter[list[DealEvent]] = TypeAdapter(list[DealEvent])


@guarded("cloudevents")
def to_events(raw: bytes, stages: StageMap) -> list[DealEvent]:
    body: Any = parse_json(raw, "cloudevents")
    try:
        if isinstance(body, list):
            if not body:
                raise AdapterError("cloudevents payload is an empty array")
            return _Many.validate_python(body)
        return [DealEventAdapter.validate_python(body)]
    except ValidationError as exc:
        raise AdapterError(f"cloudevents payload: {describe(exc)}") from exc
