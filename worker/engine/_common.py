"""Small helpers shared by the account-level predictors (not the deal hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of the engine's pydantic inputs and results: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Result(Model):
    def to_dict(self) -> dict:
        """JSON-ready dict (for jsonb storage and CLI output)."""
        return self.model_dump(mode="json")


def clamp(x: float, lo: float = 0.0, hi: float = 100.0) -> float:
    return lo if x < lo else hi if x > hi else x


def round_half_up(x: float) -> int:
    """Integer score: halves round up (72.5 -> 73), unlike round()'s half-to-even."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def money(x: float) -> float:
    return round(x, 2)


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    return f"1 {noun}" if n == 1 else f"{n} {plural_form or noun + 's'}"


@dataclass(frozen=True, slots=True)
class Trend:
    """Recent half of a series against its earlier half (the middle point of an odd-length
    series belongs to neither). ``change`` = (recent_mean - earlier_mean) / earlier_mean;
    None when the earlier mean is 0."""

    periods: int  # points in each half
    earlier_mean: float
    recent_mean: float
    change: float | None


def trend(series: Sequence[float]) -> Trend | None:
    """The trend of ``series`` (oldest first), or None with fewer than 2 points."""
    n = len(series)
    if n < 2:
        return None
    half = n // 2
    earlier = sum(series[:half]) / half
    recent = sum(series[n - half :]) / half
    change = None if earlier == 0 else (recent - earlier) / earlier
    return Trend(half, earlier, recent, change)
