"""What every event family's batch shares: where a record came from, a validated event with
its record, a rejection, and the bookkeeping of one batch. Pure: no I/O.

``fold`` is the one loop over a batch: it skips event ids already applied (before or earlier in
the batch), asks the family to apply each remaining event, and files the event as applied,
stale or failed. A family (deals, accounts, ...) only says how one event changes its state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Generic, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record came from; bound to every log line about it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, record: Any) -> RecordRef:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers or ()),
        )

    def log_context(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class Event(Protocol):
    """What the bookkeeping needs of any event: the envelope's id, subject, type and time."""

    @property
    def id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> Any: ...


E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class Incoming(Generic[E]):
    """A validated event and the record it came in."""

    event: E
    ref: RecordRef


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An item of a vendor batch that is fine but not ours (a contact beside deal changes on
    HubSpot's one target URL): no event, no dead letter, only a count."""

    ref: RecordRef
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be applied. ``error`` is a short class, ``reason`` the detail."""

    ref: RecordRef
    error: str
    reason: str


@dataclass(slots=True)
class BatchOutcome(Generic[E]):
    """What happened to each event of a batch. Families subclass it to add their states."""

    applied: list[Incoming[E]] = field(default_factory=list)
    stale: list[Incoming[E]] = field(default_factory=list)
    duplicates: list[Incoming[E]] = field(default_factory=list)
    failed: list[Rejected] = field(default_factory=list)  # deterministic processing failures
    # the partition each changed subject's events arrived on (a tick there ages it)
    partitions: dict[str, int] = field(default_factory=dict)

    def merge(self, later: BatchOutcome[E]) -> None:
        """Fold the outcome of a later part of the same batch into this one (lists extend,
        maps take the later value)."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(later, f.name)
            if isinstance(mine, list):
                mine.extend(theirs)
            elif isinstance(mine, dict):
                mine.update(theirs)
            elif isinstance(mine, int):
                setattr(self, f.name, mine + theirs)

    def summary(self) -> dict[str, int]:
        """Family-specific counts for the batch's log line and tallies."""
        return {}

    def event_context(self, item: Incoming[E]) -> dict[str, Any]:
        """Family-specific fields of the per-event debug line (e.g. the new scores)."""
        return {}


S = TypeVar("S")  # a family's state
C = TypeVar("C")  # its score
T = TypeVar("T")  # its alert track
A = TypeVar("A")  # its alert


@dataclass(frozen=True, slots=True)
class Stored(Generic[S, T]):
    """A subject as the store holds it: its state and its alert track."""

    state: S
    track: T


@dataclass(slots=True)
class ScoredOutcome(BatchOutcome[E], Generic[E, S, C, T, A]):
    """The outcome of a family whose subjects are scored and alerted on (deals, accounts):
    their final states, scores and alert tracks, the alerts raised, and how many a tick aged."""

    states: dict[str, S] = field(default_factory=dict)  # changed subjects, final state
    scores: dict[str, C] = field(default_factory=dict)
    tracks: dict[str, T] = field(default_factory=dict)
    alerts: list[A] = field(default_factory=list)
    aged: int = 0  # subjects rescored by clock ticks
    noun: ClassVar[str] = "subjects"

    def latest(
        self, stored: Mapping[str, Stored[S, T]], subject: str, new_track: Callable[[], T]
    ) -> tuple[S | None, T]:
        """The subject's state and alert track as of the batch so far: after its last event
        applied here, else as stored (no state and ``new_track()`` for a subject never seen)."""
        kept = stored.get(subject)
        state = self.states.get(subject) or (kept.state if kept else None)
        track = self.tracks.get(subject) or (kept.track if kept else new_track())
        return state, track

    def record(self, subject: str, state: S, score: C, track: T, alert: A | None) -> None:
        """Keep the subject's new state, score and alert track, and the alert raised, if any.
        Call it once nothing can fail any more: a failure files the event as failed."""
        self.states[subject] = state
        self.scores[subject] = score
        self.tracks[subject] = track
        if alert is not None:
            self.alerts.append(alert)

    def summary(self) -> dict[str, int]:
        return {self.noun: len(self.states), "aged": self.aged, "alerts": len(self.alerts)}

    def event_context(self, item: Incoming[E]) -> dict[str, Any]:
        score = self.scores.get(item.event.subject)
        return {} if score is None else self.score_context(score)  # None: a tick

    def score_context(self, score: C) -> dict[str, Any]:
        """The score's fields worth a per-event debug line."""
        return {}


Out = TypeVar("Out", bound=BatchOutcome[Any])


def fold(
    out: Out,
    seen_event_ids: Iterable[str],
    incoming: Iterable[Incoming[Any]],
    apply_one: Callable[[Incoming[Any]], bool],
) -> Out:
    """Apply ``incoming`` in record order. ``apply_one`` applies one event to ``out`` and
    returns False when the event is stale; it must change ``out`` only once nothing can fail
    any more, since an exception files the event as failed (dead-lettered) and goes on."""
    seen = set(seen_event_ids)
    for item in incoming:
        if item.event.id in seen:
            out.duplicates.append(item)
            continue
        seen.add(item.event.id)
        try:
            applied = apply_one(item)
            if applied:
                out.partitions[item.event.subject] = item.ref.partition
        except Exception as exc:  # a bug or an impossible combination: dead-letter, go on
            out.failed.append(Rejected(item.ref, "processing_failed", repr(exc)))
            continue
        (out.applied if applied else out.stale).append(item)
    return out
