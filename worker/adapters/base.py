"""Shared pieces of the vendor adapters: the error, the stage map, parsing, field mapping and
event building.

An adapter turns one vendor webhook body (bytes) into zero or more of our deal events, or
raises :class:`AdapterError` with a reason fit for a dead-letter record. It is pure: no I/O,
no clock; the event time always comes from the vendor's own timestamp.

Conventions shared by every adapter (see the adapter modules for the per-vendor details):

- Deal ids keep a vendor prefix (``hs-``, ``sf-``, ``pd-``) so two CRMs can feed one worker.
- Event ids are derived from the vendor's event identity, never from the delivery attempt, so
  a redelivered webhook yields the same id and the worker dedupes it.
- A property we do not track yields no event (not an error). A tracked property the change
  empties (empty/null) is named in ``DealFields.cleared`` when our field can be empty (name,
  company, owner, amount, close date...): the merge clears it.
- A change to a closed stage becomes ``deal.closed_won`` / ``deal.closed_lost`` (carrying the
  amount when it changed in the same change); the other changed fields ride on a
  ``deal.updated`` emitted just before it, at the same time.
- A deal deleted in the CRM becomes ``deal.closed_lost`` with reason ``"deleted in CRM"``: the
  pipeline must stop counting it, and our contract has no deletion event. A deal merged into
  another (a Pipedrive delete naming ``merged_to_id``, a HubSpot ``deal.merge``) becomes
  ``deal.merged``: it is not a loss, which would skew the win rates.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from schemas.deal_events import (
    CLOSED_STAGES,
    ClearableField,
    DealEvent,
    DealEventAdapter,
    DealStage,
)

DELETED_REASON = "deleted in CRM"
Source = Literal["hubspot", "salesforce", "pipedrive"]


class AdapterError(Exception):
    """A payload that cannot be mapped to deal events. ``reason`` says why, for the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skipped(Exception):
    """An item that is fine but not ours (a contact in a HubSpot batch): it yields no event
    and no dead letter, only a count. ``reason`` says what it was."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """An item of a batch that cannot be mapped: its index, why, and its own JSON bytes (what
    goes to the dead-letter topic, without the good items beside it)."""

    index: int
    reason: str
    raw: bytes
    stage_only: bool = False  # an unmapped stage: the change's other fields were applied


class Adapted(list[DealEvent]):
    """The events of one body, with the reasons of the items skipped as not ours (one app's
    single target URL receives every object type HubSpot sends) and, from ``adapt_each``, the
    items that failed."""

    def __init__(
        self,
        events: Iterable[DealEvent] = (),
        skipped: Iterable[str] = (),
        failed: Iterable[ItemFailure] = (),
    ) -> None:
        super().__init__(events)
        self.skipped: list[str] = list(skipped)
        self.failed: list[ItemFailure] = list(failed)


# --------------------------------------------------------------------------- stage maps


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


class StageMap(BaseModel):
    """Vendor stage name or id -> our stage, one table per source; lookups ignore case and
    repeated whitespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hubspot: dict[str, DealStage] = {}
    salesforce: dict[str, DealStage] = {}
    pipedrive: dict[str, DealStage] = {}

    @field_validator("hubspot", "salesforce", "pipedrive", mode="after")
    @classmethod
    def _normalise_keys(cls, table: dict[str, DealStage]) -> dict[str, DealStage]:
        return {_norm(k): v for k, v in table.items()}

    def find(self, source: Source, vendor_stage: Any) -> DealStage | None:
        """Our stage of ``vendor_stage``, or None when the table lacks it."""
        table: dict[str, DealStage] = getattr(self, source)
        return table.get(_norm(vendor_stage))

    def lookup(self, source: Source, vendor_stage: Any) -> DealStage:
        stage = self.find(source, vendor_stage)
        if stage is None:
            raise AdapterError(
                f"unknown {source} deal stage {str(vendor_stage)!r}: map it in the "
                f"[{source}] table of the stage map"
            )
        return stage

    def overridden_by(self, other: Mapping[str, Mapping[str, Any]]) -> StageMap:
        """This map with ``other``'s entries added or replacing ours, table by table."""
        merged = {
            src: {**getattr(self, src), **dict(other.get(src, {}))}
            for src in ("hubspot", "salesforce", "pipedrive")
        }
        unknown = set(other) - set(merged)
        if unknown:
            raise ValueError(f"unknown stage map table(s): {', '.join(sorted(unknown))}")
        return StageMap.model_validate(merged)


class LenientStages:
    """A stage map that records an unknown stage instead of rejecting the change: ``lookup``
    answers None, the adapter maps what else the change carries, and ``adapt_each``
    dead-letters the stage part with the reason (a custom pipeline must not cost a deal its
    name, amount and close date)."""

    def __init__(self, stages: StageMap) -> None:
        self.stages = stages
        self.misses: list[str] = []

    def find(self, source: Source, vendor_stage: Any) -> DealStage | None:
        return self.stages.find(source, vendor_stage)

    def lookup(self, source: Source, vendor_stage: Any) -> DealStage | None:
        try:
            return self.stages.lookup(source, vendor_stage)
        except AdapterError as exc:
            self.misses.append(exc.reason)
            return None


def default_stage_map() -> StageMap:
    text = resources.files("worker.adapters").joinpath("stages.toml").read_text("utf-8")
    return StageMap.model_validate(tomllib.loads(text))


def load_stage_map(path: Path | None = None) -> StageMap:
    """The packaged defaults (``worker/adapters/stages.toml``), overridden entry by entry by
    the tables of the user's TOML file at ``path`` when given. Raises ``ValueError`` with the
    file name on a missing file, bad TOML or an unknown stage."""
    defaults = default_stage_map()
    if path is None:
        return defaults
    try:
        user = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read stage map {path}: {exc}") from exc
    try:
        return defaults.overridden_by(user)
    except (ValidationError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"invalid stage map {path}: {exc}") from exc


# --------------------------------------------------------------------------- parsing


def parse_json(raw: bytes | str, source: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{source} payload is not valid JSON: {exc}") from exc


def require(obj: Any, key: str, what: str) -> Any:
    """``obj[key]``, or an AdapterError naming what is missing."""
    if not isinstance(obj, dict):
        raise AdapterError(f"{what} is not a JSON object")
    value = obj.get(key)
    if value is None or value == "":
        raise AdapterError(f"{what} has no {key!r}")
    return value


def ident(value: Any, what: str) -> str:
    """A vendor id (string or integer) as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AdapterError(f"{what} must be a string or an integer, got {value!r}")
    text = str(value).strip()
    if not text or len(text) > 120 or not re.fullmatch(r"[\w.:@+/=-]+", text):
        raise AdapterError(f"{what} {value!r} is not a usable id")
    return text


_MS_THRESHOLD = 10**11  # below: seconds since epoch; above: milliseconds


def epoch_ms(value: int | float) -> datetime:
    try:
        if abs(value) < _MS_THRESHOLD:
            return datetime.fromtimestamp(value, UTC)
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise AdapterError(f"timestamp {value!r} is out of range") from exc


def ms_of(at: datetime) -> int:
    """Epoch milliseconds of a tz-aware datetime, exactly (no float rounding)."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def to_datetime(value: Any, what: str) -> datetime:
    """A timestamp given as epoch milliseconds (number or digit string; seconds when small),
    an ISO 8601 date-time (``Z`` or offset; naive means UTC) or a date (midnight UTC)."""
    if isinstance(value, bool):
        raise AdapterError(f"{what} {value!r} is not a timestamp")
    if isinstance(value, int | float):
        return epoch_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return epoch_ms(int(text))
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return datetime.combine(date.fromisoformat(text), time(), UTC)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise AdapterError(f"{what} {value!r} is not a timestamp") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise AdapterError(f"{what} {value!r} is not a timestamp")


def to_date(value: Any, what: str) -> date:
    """A calendar date: ISO ``YYYY-MM-DD`` (or a date-time, whose UTC date is taken), epoch
    milliseconds, or days since 1970-01-01 (Avro ``date``, as the Salesforce Pub/Sub API
    delivers it) when the number is small."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1_000_000:
        return date(1970, 1, 1) + timedelta(days=value)
    return to_datetime(value, what).astimezone(UTC).date()


def to_amount(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AdapterError(f"{what} {value!r} is not a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise AdapterError(f"{what} {value!r} is not a number") from exc
    if not amount.is_finite():
        raise AdapterError(f"{what} {value!r} is not a number")
    return amount.quantize(Decimal("0.01"))


def to_currency(value: Any, what: str) -> str:
    """An ISO 4217 code, upper-cased (vendors send "usd" as often as "USD")."""
    return text(value, what).upper()


def to_count(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise AdapterError(f"{what} {value!r} is not a count")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise AdapterError(f"{what} {value!r} is not a count") from exc
    if not number.is_finite() or number != number.to_integral_value():
        raise AdapterError(f"{what} {value!r} is not a count")
    return int(number)


def text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AdapterError(f"{what} {value!r} is not text")
    return str(value).strip()


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


Converter = Callable[[Any, str], Any]
"""``convert(value, vendor_name)``: one of the converters above, or one of a vendor's own."""
FieldTable = Mapping[str, tuple[str, Converter]]
"""Vendor field name -> (our ``DealFields`` name, converter)."""


# Our DealFields name -> the converter of a vendor's value for it (a vendor's own, for a field
# it sends in another form, goes in ``field_table``'s ``special``).
CONVERTERS: dict[str, Converter] = {
    "name": text,
    "company": text,
    "owner": text,
    "amount": to_amount,
    "currency": to_currency,
    "expected_close_date": to_date,
    "last_activity_at": to_datetime,
    "interactions": to_count,
}


def field_table(
    ours: Mapping[str, str], special: Mapping[str, Converter] | None = None
) -> FieldTable:
    """A vendor's field table from vendor field -> our field, in that order, each converted
    by our field's converter unless ``special`` gives the vendor field its own."""
    own = special or {}
    return {vendor: (field, own.get(vendor, CONVERTERS[field])) for vendor, field in ours.items()}


CLEARABLE = frozenset(get_args(ClearableField))


def map_fields(
    table: FieldTable, values: Mapping[str, Any], names: Iterable[str], *, clears: bool = False
) -> dict[str, Any]:
    """Our ``DealFields`` values of the vendor fields ``names`` of ``values``, converted in that
    order through ``table`` (a later field mapped to the same one of ours wins). A name the
    table lacks and a value its converter turns into None yield nothing. A blank value yields
    nothing either, unless ``clears`` (``names`` are the fields the change really changed):
    then our field is named in ``cleared`` when clearable and not set by another name."""
    fields: dict[str, Any] = {}
    cleared: list[str] = []
    for name in names:
        if name not in table:
            continue
        value = values.get(name)
        field, convert = table[name]
        if blank(value):
            if clears and field in CLEARABLE:
                cleared.append(field)
            continue
        converted = convert(value, name)
        if converted is not None:
            fields[field] = converted
    return with_cleared(fields, cleared)


def with_cleared(fields: dict[str, Any], cleared: Iterable[str]) -> dict[str, Any]:
    """``fields`` with ``cleared`` naming the clearable ones of ``cleared`` it does not set."""
    emptied = [f for f in dict.fromkeys(cleared) if f in CLEARABLE and f not in fields]
    return {**fields, "cleared": emptied} if emptied else fields


# --------------------------------------------------------------------------- building events


def describe(exc: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` errors of ``exc`` on one line, with a count of the rest."""
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def build(
    *, kind: str, id: str, source: str, time: datetime, subject: str, data: dict[str, Any]
) -> DealEvent:
    """One validated event; a value our contract rejects becomes an AdapterError."""
    try:
        return DealEventAdapter.validate_python(
            {
                "id": id,
                "source": source,
                "type": f"deal.{kind}",
                "time": time,
                "subject": subject,
                "data": data,
            }
        )
    except ValidationError as exc:
        raise AdapterError(f"deal.{kind} for {subject}: {describe(exc)}") from exc


def deleted(*, id: str, source: str, time: datetime, subject: str) -> DealEvent:
    """The event of a deal deleted in the CRM: ``deal.closed_lost`` with DELETED_REASON."""
    data = {"reason": DELETED_REASON}
    return build(kind="closed_lost", id=id, source=source, time=time, subject=subject, data=data)


def merged(*, id: str, source: str, time: datetime, subject: str, into: str) -> DealEvent:
    """The event of a deal merged into ``into`` in the CRM: neither won nor lost."""
    data = {"into": into}
    return build(kind="merged", id=id, source=source, time=time, subject=subject, data=data)


def change_events(
    *,
    created: bool,
    id: str,
    source: str,
    time: datetime,
    subject: str,
    fields: dict[str, Any],
    closure: dict[str, Any] | None = None,
) -> list[DealEvent]:
    """The events of one CRM change of a deal.

    ``fields`` are mapped DealFields values (``stage`` included when it changed). A closed
    stage is taken out of them and becomes a closing event (``closure``: amount/reason), the
    amount of the same change (unless ``created``) moving into the closure; what remains goes on a
    ``deal.created`` (when ``created``), a ``deal.stage_changed`` (an open stage changed) or a
    ``deal.updated``. Ids: ``id`` for the first event, ``id + "-close"`` for a closing event
    that follows another one.
    """
    fields = dict(fields)
    stage = fields.get("stage")
    closing = stage in CLOSED_STAGES
    close_data = dict(closure or {})
    if closing:
        del fields["stage"]
        if not created and "amount" in fields and "amount" not in close_data:
            close_data["amount"] = fields.pop("amount")
    envelope = {"source": source, "time": time, "subject": subject}
    events: list[DealEvent] = []
    if created:
        events.append(build(kind="created", id=id, data=fields, **envelope))
    elif stage is not None and not closing:
        events.append(build(kind="stage_changed", id=id, data=fields, **envelope))
    elif fields:
        events.append(build(kind="updated", id=id, data=fields, **envelope))
    if closing:
        kind = "closed_won" if stage is DealStage.closed_won else "closed_lost"
        close_id = f"{id}-close" if events else id
        events.append(build(kind=kind, id=close_id, data=close_data, **envelope))
    return events


def guarded(source: str) -> Callable[[Callable[..., list[DealEvent]]], Any]:
    """Turn the unexpected failures of an adapter on odd input (a wrong JSON type somewhere)
    into AdapterErrors, so a webhook body never crashes the caller."""

    def decorate(fn: Callable[..., list[DealEvent]]) -> Callable[..., list[DealEvent]]:
        @wraps(fn)
        def wrapper(raw: bytes, stages: StageMap) -> list[DealEvent]:
            try:
                return fn(raw, stages)
            except Skipped as skip:  # a whole body that is not ours: no event, no dead letter
                return Adapted(skipped=[skip.reason])
            except AdapterError:
                raise
            except ValidationError as exc:
                raise AdapterError(f"{source} payload: {describe(exc)}") from exc
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise AdapterError(
                    f"malformed {source} payload: {type(exc).__name__}: {exc}"
                ) from exc

        return wrapper

    return decorate


def each_item(
    raw: bytes,
    stages: StageMap,
    source: str,
    item: str,
    events_of: Callable[[Any, StageMap], list[DealEvent]],
) -> list[DealEvent]:
    """The events of a body that is one ``item`` or a JSON array of them, ``events_of`` each
    in turn. The whole body fails with the first item that fails, its index in the reason; an
    item that raises :class:`Skipped` is counted in ``skipped`` and the others go on."""
    body = parse_json(raw, source)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise AdapterError(f"{source} payload is an empty array")
    events = Adapted()
    for i, one in enumerate(items):
        try:
            events.extend(events_of(one, stages))
        except Skipped as skip:
            events.skipped.append(skip.reason)
        except AdapterError as exc:
            where = f"{item} [{i}]" if len(items) > 1 else item
            raise AdapterError(f"{source} {where}: {exc.reason}") from exc
    return events


def item_adapter(
    source: str,
    item: str,
    events_of: Callable[[Any, StageMap], list[DealEvent]],
    *,
    by_time: bool = False,
) -> Callable[[bytes, StageMap], list[DealEvent]]:
    """The adapter of a vendor whose body is one ``item`` or a JSON array of them (``each_item``
    with ``events_of``, guarded), its events sorted by time when the vendor's batches are not
    ordered (``by_time``)."""

    @guarded(source)
    def to_events(raw: bytes, stages: StageMap) -> list[DealEvent]:
        events = each_item(raw, stages, source, item, events_of)
        return sort_by_time(events) if by_time else events

    return to_events


def sort_by_time(events: Adapted) -> Adapted:
    """Stable sort on the event time, a creation first among equal times (vendors batch
    changes out of order); the skipped items stay counted."""
    ordered = sorted(events, key=lambda e: (e.time, e.type != "deal.created"))
    return Adapted(ordered, events.skipped, events.failed)
