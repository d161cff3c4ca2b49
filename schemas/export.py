"""Writes the JSON Schema of every message contract to ``schemas/json/``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from schemas.alerts import AccountAlert, AlertAdapter, DealAlert
from schemas.deal_events import DealEvent
from schemas.forecasts import ForecastPublished
from schemas.metrics import WorkerMetrics

CONTRACTS: dict[str, TypeAdapter] = {
    "deal-event": TypeAdapter(DealEvent),
    "deal-alert": TypeAdapter(DealAlert),
    "account-alert": TypeAdapter(AccountAlert),
    "alert": AlertAdapter,  # any message of the alerts topic (by ``entity``)
    "forecast": TypeAdapter(ForecastPublished),
    "worker-metrics": TypeAdapter(WorkerMetrics),
}


def schema_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "schemas" / "json"


def render() -> dict[str, str]:
    """File name -> JSON text for each contract (deterministic, for a staleness test)."""
    return {
        f"{name}.schema.json": json.dumps(adapter.json_schema(), indent=2, sort_keys=True) + "\n"
        for name, adapter in CONTRACTS.items()
    }


def export(directory: Path | None = None) -> list[Path]:
    directory = directory or schema_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
