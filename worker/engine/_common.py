"""Small helpers shared by the predictors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of the engine's pydantic inputs and results: strict keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Result(Model):
    def to_dict(self) -> dict:
        """JSON-ready dict (for jsonb storage and CLI output)."""
        return self.model_dump(mode="json")


# How ``json_dict`` writes a field (``dataclasses.field(metadata=...)``); any other field as is.
ROUNDED = {"json": "round({}, 2)"}  # to 2 decimals (the builtin inline: no call of ours)
AS_LIST = {"json": "list({})"}  # a tuple
NESTED = {"json": "{}.to_dict()"}  # another result
OPTIONAL_NESTED = {"json": "None if {0} is None else {0}.to_dict()"}

_T = TypeVar("_T", bound="JsonDict")


class JsonDict:
    """Base of the result dataclasses whose ``to_dict()`` ``json_dict`` writes."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} lacks @json_dict")


def json_dict(cls: type[_T]) -> type[_T]:
    """Give a result dataclass ``to_dict()``: its fields in order, JSON-ready, each written as
    its metadata says. The method is generated once, as a dataclass's ``__init__`` is, so it
    costs what a hand-written one does (deal scores are written per stored deal)."""
    items = [
        f"{f.name!r}: " + f.metadata.get("json", "{}").format(f"self.{f.name}") for f in fields(cls)
    ]
    namespace: dict[str, Callable[..., Any]] = {}
    exec(f"def to_dict(self):\n    return {{{', '.join(items)}}}\n", namespace)
    cls.to_dict = namespace["to_dict"]  # type: ignore[method-assign]
    return cls


Confidence = Literal["low", "medium", "high"]


def grade_confidence(signals: int, high_min: int, medium_min: int) -> Confidence:
    """How much evidence a prediction stands on, from the count of its evidence signals (the
    thresholds: ``ProbabilityConfidence``, ``ValueConfidence``)."""
    if signals >= high_min:
        return "high"
    if signals >= medium_min:
        return "medium"
    return "low"


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
