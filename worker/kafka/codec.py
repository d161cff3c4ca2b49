"""Turning raw Kafka records into validated events, or into dead letters with a reason.

Records on the deal and account topics carry our CloudEvents envelope. Records on a vendor's
raw topic (or with a ``revintel-source`` header naming an adapter) are normalised by that
adapter; one webhook body may hold several events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any, Union, get_args

from pydantic import Field, TypeAdapter, ValidationError

from schemas.account_events import ACCOUNT_EVENT_TYPES, AccountEvent
from schemas.clock import TICK_TYPE, ClockTick
from schemas.deal_events import DEAL_EVENT_TYPES, DealEvent, DealEventAdapter
from worker.adapters import ADAPTERS, AdapterError, StageMap, adapt_each, default_stage_map
from worker.domain.batch import Incoming, RecordRef, Rejected, SkippedItem
from worker.log import get_logger

CANONICAL = "cloudevents"
SOURCE_HEADER = "revintel-source"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def source_of(ref: RecordRef, topic_sources: dict[str, str]) -> str:
    """The adapter for a record: its ``revintel-source`` header, else its topic's."""
    for name, value in ref.headers:
        if name == SOURCE_HEADER:
            return value.decode(errors="replace")
    return topic_sources.get(ref.topic, CANONICAL)


def decode(
    record: Any,
    max_bytes: int,
    topic_sources: dict[str, str] | None = None,
    stages: StageMap | None = None,
    currencies: Mapping[str, str] | None = None,
) -> list[Incoming[DealEvent] | Rejected | SkippedItem] | Rejected:
    """A consumed deal record as validated deal events, or the reason it cannot be. A vendor
    batch keeps its good items' events; each bad item is a rejection of its own, its bytes
    alone (the dead letter holds the item, its headers the source offset): ``unmapped_stage``
    when only its stage is unknown (its other fields are applied), else ``unmappable``. Each
    item skipped as not ours (another object type) is a :class:`SkippedItem`, to be counted."""
    ref = RecordRef.of(record)
    raw = ref.value
    if rejected := precheck(ref, max_bytes):
        return rejected
    assert raw is not None
    source = source_of(ref, topic_sources or {})
    if source == CANONICAL:
        return _canonical(ref, raw)
    if source not in ADAPTERS:
        return Rejected(ref, "unknown_source", f"no adapter named {source!r}")
    try:
        events = adapt_each(source, raw, stages or default_stage_map())
    except AdapterError as exc:
        return Rejected(ref, "unmappable", f"{source}: {exc.reason}")
    failed: list[Incoming[DealEvent] | Rejected | SkippedItem] = [
        Rejected(
            replace(ref, value=f.raw),
            "unmapped_stage" if f.stage_only else "unmappable",
            f"{source} item [{f.index}]: {f.reason}",
        )
        for f in events.failed
    ]
    skipped = events.skipped
    if skipped:  # other objects sharing the vendor's one target URL: counted, not dead letters
        get_logger().info(
            "vendor_items_skipped",
            source=source,
            topic=ref.topic,
            partition=ref.partition,
            offset=ref.offset,
            count=len(skipped),
            reasons=sorted(set(skipped))[:5],
        )
    events = with_currency(events, source, (currencies or {}).get(source))
    return [
        *failed,
        *(SkippedItem(ref, reason) for reason in skipped),
        *(Incoming(e, ref) for e in events),
    ]


_UNSAID: set[str] = set()  # sources already reported as naming no currency


def with_currency(events: list[DealEvent], source: str, default: str | None) -> list[DealEvent]:
    """A new deal whose CRM names no currency gets the source's configured one
    (REVINTEL_SOURCE_CURRENCIES); without one it is stored in USD, said once per source in
    the log rather than silently."""
    out = []
    for event in events:
        if event.type == "deal.created" and event.data.currency is None:
            if default is None:
                if source not in _UNSAID:
                    _UNSAID.add(source)
                    get_logger().warning(
                        "deal_currency_unknown",
                        source=source,
                        detail="the CRM named no currency: stored as USD; set "
                        "REVINTEL_SOURCE_CURRENCIES to say which",
                    )
            else:
                data = event.data.model_copy(update={"currency": default.upper()})
                event = event.model_copy(update={"data": data})
        out.append(event)
    return out


def _with_ticks(union: Any) -> TypeAdapter[Any]:
    """The envelope union of a topic that also carries clock ticks."""
    members = get_args(get_args(union)[0])
    return TypeAdapter(Annotated[Union[(*members, ClockTick)], Field(discriminator="type")])


DEAL_TOPIC = _with_ticks(DealEvent)
DEAL_TOPIC_TYPES = (*DEAL_EVENT_TYPES, TICK_TYPE)
ACCOUNT_TOPIC = _with_ticks(AccountEvent)
ACCOUNT_TOPIC_TYPES = (*ACCOUNT_EVENT_TYPES, TICK_TYPE)


def _canonical(
    ref: RecordRef, raw: bytes, ticks: bool = False
) -> list[Incoming[DealEvent]] | Rejected:
    adapter, types = (
        (DEAL_TOPIC, DEAL_TOPIC_TYPES) if ticks else (DealEventAdapter, DEAL_EVENT_TYPES)
    )
    event = validate_envelope(ref, raw, adapter, types)
    return event if isinstance(event, Rejected) else [Incoming(event, ref)]


def decode_deal(
    record: Any, max_bytes: int, stages: StageMap | None = None
) -> list[Incoming[Any] | Rejected | SkippedItem] | Rejected:
    """A record of the deal topic: a deal event or a clock tick in our envelope (or, with a
    ``revintel-source`` header, a vendor body for that adapter)."""
    ref = RecordRef.of(record)
    if rejected := precheck(ref, max_bytes):
        return rejected
    if source_of(ref, {}) == CANONICAL:
        return _canonical(ref, ref.value or b"", ticks=True)
    return decode(record, max_bytes, {}, stages)


def decode_account(record: Any, max_bytes: int) -> list[Incoming[Any]] | Rejected:
    """A record of the account topic: an account event or a clock tick, or the reason it
    cannot be one."""
    ref = RecordRef.of(record)
    if rejected := precheck(ref, max_bytes):
        return rejected
    event = validate_envelope(ref, ref.value or b"", ACCOUNT_TOPIC, ACCOUNT_TOPIC_TYPES)
    return event if isinstance(event, Rejected) else [Incoming(event, ref)]


def precheck(ref: RecordRef, max_bytes: int) -> Rejected | None:
    """Rejects an empty or oversized payload before any parsing."""
    raw = ref.value
    if raw is None or not raw.strip():
        return Rejected(ref, "empty_payload", "message has no payload")
    if len(raw) > max_bytes:
        return Rejected(ref, "oversized", f"payload of {len(raw)} bytes exceeds {max_bytes}")
    return None


def validate_envelope(
    ref: RecordRef, raw: bytes, adapter: TypeAdapter[Any], types: Sequence[str]
) -> Any:
    """The event in ``raw`` (an envelope union discriminated by ``type``), or a rejection:
    malformed_json, unknown_event_type, schema_violation or key_mismatch (key != subject)."""
    try:
        event = adapter.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            return Rejected(ref, "malformed_json", first["msg"])
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            kind = first.get("input", {})
            kind = kind.get("type") if isinstance(kind, dict) else None
            return Rejected(
                ref, "unknown_event_type", f"event type {kind!r} is not one of {', '.join(types)}"
            )
        return Rejected(ref, "schema_violation", _describe(exc))
    if ref.key is not None and ref.key.decode(errors="replace") != event.subject:
        return Rejected(
            ref, "key_mismatch", f"record key {ref.key!r} differs from subject {event.subject!r}"
        )
    return event
