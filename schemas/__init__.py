"""Contracts of every message the worker reads and writes (pydantic models, JSON Schema)."""

from schemas.deal_events import (
    CLOSED_STAGES,
    DEAL_EVENT_TYPES,
    OPEN_STAGES,
    Activity,
    Closure,
    DealEvent,
    DealEventAdapter,
    DealFields,
    DealStage,
    StageChange,
)

__all__ = [
    "CLOSED_STAGES",
    "DEAL_EVENT_TYPES",
    "OPEN_STAGES",
    "Activity",
    "Closure",
    "DealEvent",
    "DealEventAdapter",
    "DealFields",
    "DealStage",
    "StageChange",
]
