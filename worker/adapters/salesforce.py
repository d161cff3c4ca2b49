"""Salesforce Change Data Capture (``OpportunityChangeEvent``) -> deal events.

Accepted bodies: the change event itself (``{"ChangeEventHeader": {...}, "Name": ...}``, as
decoded from the Pub/Sub API), the envelope ``{"schema": ..., "payload": {...}, "event":
{"replayId": N}}``, a CometD message ``{"channel": ..., "data": <envelope>}``, or a JSON array
of any of these. The header carries ``entityName``, ``recordIds``, ``changeType``,
``changedFields``, ``commitTimestamp`` (epoch ms), ``sequenceNumber``, ``transactionKey``,
``commitUser`` and ``changeOrigin``; field values are at the top level.

Mapping (one set of events per record id, since a bulk change lists several records):

- ``CREATE`` -> ``deal.created`` with every non-null tracked field (a deal created already
  closed also gets its closing event).
- ``UPDATE`` -> the fields named in ``changedFields`` (all non-null fields when absent, or
  when the Pub/Sub API delivers them as bitmaps such as ``"0x400800"``: Pub/Sub sends every
  unchanged field as null, so the non-null fields are the changed ones, whatever the schema's
  field order):
  ``StageName`` to an open stage -> ``deal.stage_changed``; to Closed Won/Lost ->
  ``deal.closed_won`` / ``deal.closed_lost`` (with the new ``Amount`` if it changed); other
  tracked fields -> ``deal.updated``; only untracked fields (``LastModifiedDate``,
  ``Probability``...) -> no event. The header's ``nulledFields`` (names) that we map to a
  field that can be empty are named in ``cleared``; as Pub/Sub bitmaps they are passed over.
- ``DELETE`` -> ``deal.closed_lost`` with reason ``"deleted in CRM"``.
- ``UNDELETE`` -> the full record again (reopens the deal through its ``StageName``).
- ``GAP_*`` (``GAP_CREATE``, ``GAP_UPDATE``, ``GAP_DELETE``, ``GAP_UNDELETE``,
  ``GAP_OVERFLOW``) -> AdapterError: they carry no field values and need a re-read of the
  records, so they go to the dead-letter topic with that reason.
- an entity other than ``Opportunity`` -> AdapterError.

A ``StageName`` the stage map lacks (a custom picklist value) is read through ``IsClosed`` /
``IsWon`` when the event carries them: closed and won -> closed_won, closed and not won ->
closed_lost; an open unknown stage is still an AdapterError naming the map to extend.

Fields: Name -> name, Amount -> amount, StageName -> stage (stage map ``[salesforce]``),
CloseDate -> expected_close_date, OwnerId -> owner, CurrencyIsoCode -> currency,
LastActivityDate -> last_activity_at (midnight UTC). AccountId is an id, not a company
name, and is not mapped.

Ids: the deal id is ``sf-<recordId>`` (Salesforce ids are case-sensitive: the 15- and
18-character forms of one record are different deal ids; CDC always sends 18). The change
event names no org, so two orgs feeding one worker need their own source topics' adapters
mapped apart upstream (HubSpot and Pipedrive ids carry the portal or company). The event id is
``sf-<recordId>-<commitTimestamp>-<transactionKey>-<sequenceNumber>``, or with
``r<replayId>`` when the header has no transaction key. The event time is ``commitTimestamp``
plus ``sequenceNumber`` microseconds, so changes of one transaction (same commit millisecond)
keep their order and an older change delivered late is stale for the merge.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from schemas.deal_events import DealEvent, DealStage
from worker.adapters import base
from worker.adapters.base import AdapterError, StageMap

SOURCE = "salesforce/cdc/Opportunity"


FIELDS = base.field_table(
    {
        "Name": "name",
        "Amount": "amount",
        "CloseDate": "expected_close_date",
        "OwnerId": "owner",
        "CurrencyIsoCode": "currency",
        "LastActivityDate": "last_activity_at",
    }
)
KNOWN_CHANGES = {"CREATE", "UPDATE", "DELETE", "UNDELETE"}


def _unwrap(item: Any) -> tuple[dict[str, Any], Any]:
    """(change event payload, replayId or None) of one delivered item."""
    if not isinstance(item, dict):
        raise AdapterError("change event is not a JSON object")
    if "ChangeEventHeader" in item:
        return item, None
    if isinstance(item.get("data"), dict) and "payload" in item["data"]:  # CometD message
        item = item["data"]
    if isinstance(item.get("payload"), dict):
        event = item.get("event")
        replay = event.get("replayId") if isinstance(event, dict) else None
        return item["payload"], replay
    raise AdapterError("change event has no ChangeEventHeader")


_BITMAP = re.compile(r"(\d+-)?0x[0-9A-Fa-f]+")


def _changed_names(change: str, header: dict[str, Any]) -> list[str] | None:
    """The field names of an UPDATE's ``changedFields``; None (read every non-null field) for
    another change, an absent list, or Pub/Sub bitmaps."""
    changed = header.get("changedFields")
    if change != "UPDATE" or not isinstance(changed, list) or not changed:
        return None
    if any(isinstance(n, str) and _BITMAP.fullmatch(n) for n in changed):
        return None  # Pub/Sub bitmaps: unchanged fields are null, so non-null = changed
    return [n for n in changed if isinstance(n, str)]


def _nulled(header: dict[str, Any]) -> list[str]:
    """Our fields of the header's ``nulledFields`` (the fields the change emptied), when given
    as names; Pub/Sub bitmaps cannot be read without the event schema and are passed over."""
    nulled = header.get("nulledFields")
    if not isinstance(nulled, list):
        return []
    names = [n for n in nulled if isinstance(n, str) and not _BITMAP.fullmatch(n)]
    return [FIELDS[n][0] for n in names if n in FIELDS]


def _closed_flag(payload: dict[str, Any]) -> DealStage | None:
    """The closed stage told by IsClosed/IsWon, for a custom StageName; None when open or
    unknown."""
    if payload.get("IsClosed") is not True:
        return None
    won = payload.get("IsWon")
    if won is None:
        return None
    return DealStage.closed_won if won is True else DealStage.closed_lost


def _fields(payload: dict[str, Any], names: list[str] | None, stages: StageMap) -> dict[str, Any]:
    def stage(value: Any, what: str) -> DealStage | None:
        name = base.text(value, what)
        if stages.find("salesforce", name) is None and (closed := _closed_flag(payload)):
            return closed  # a custom stage name, told closed by IsClosed/IsWon
        return stages.lookup("salesforce", name)  # None: unknown, recorded by a lenient map

    table = {**FIELDS, "StageName": ("stage", stage)}
    return base.map_fields(table, payload, list(payload) if names is None else names)


def _one(item: Any, stages: StageMap) -> list[DealEvent]:
    payload, replay = _unwrap(item)
    header = payload["ChangeEventHeader"]
    if not isinstance(header, dict):
        raise AdapterError("ChangeEventHeader is not a JSON object")
    entity = base.text(base.require(header, "entityName", "ChangeEventHeader"), "entityName")
    if entity != "Opportunity":
        raise AdapterError(f"entity {entity!r} is not Opportunity")
    change = base.text(
        base.require(header, "changeType", "ChangeEventHeader"), "changeType"
    ).upper()
    if change.startswith("GAP_"):
        raise AdapterError(
            f"{change} carries no field values: re-read the records from Salesforce "
            "(they cannot be applied as events)"
        )
    if change not in KNOWN_CHANGES:
        raise AdapterError(f"unknown changeType {change!r}")
    record_ids = base.require(header, "recordIds", "ChangeEventHeader")
    if not isinstance(record_ids, list) or not record_ids:
        raise AdapterError("ChangeEventHeader.recordIds is not a non-empty list")
    committed = base.to_datetime(
        base.require(header, "commitTimestamp", "ChangeEventHeader"), "commit"
    )
    sequence = header.get("sequenceNumber")
    seq = base.to_count(sequence, "sequenceNumber") if sequence is not None else 0
    at = committed + timedelta(microseconds=min(max(seq, 0), 999))
    txn = header.get("transactionKey")
    if not base.blank(txn):
        suffix = f"{base.ident(txn, 'transactionKey')}-{seq}"
    elif replay is not None and not base.blank(replay):
        suffix = f"r{base.ident(replay, 'replayId')}"
    else:
        raise AdapterError("change event has neither a transactionKey nor a replayId")

    names = _changed_names(change, header)
    fields = {} if change == "DELETE" else _fields(payload, names, stages)
    if change == "UPDATE":
        fields = base.with_cleared(fields, _nulled(header))
    if change == "UNDELETE" and "stage" not in fields:
        raise AdapterError("UNDELETE without StageName cannot reopen the deal")

    events: list[DealEvent] = []
    for record in record_ids:
        record_id = base.ident(record, "recordId")
        envelope = {
            "id": f"sf-{record_id}-{base.ms_of(committed)}-{suffix}",
            "source": SOURCE,
            "time": at,
            "subject": f"sf-{record_id}",
        }
        if change == "DELETE":
            events.append(base.deleted(**envelope))
        else:
            created = change == "CREATE"
            events.extend(base.change_events(created=created, fields=fields, **envelope))
    return events


to_events = base.item_adapter("salesforce", "change event", _one)
