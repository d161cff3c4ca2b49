"""HubSpot webhook subscriptions (Webhooks API v3) -> deal events.

The POST body is a JSON array of notifications (up to 100, not ordered); a single object is
accepted too. Each carries ``eventId``, ``subscriptionId``, ``portalId``, ``appId``,
``occurredAt`` (epoch ms), ``subscriptionType``, ``attemptNumber``, ``objectId``,
``changeSource`` and, for property changes, ``propertyName`` / ``propertyValue``.

Mapping:

- ``deal.creation`` -> ``deal.created`` with no fields (HubSpot sends the properties set at
  creation as separate ``deal.propertyChange`` notifications).
- ``deal.propertyChange`` of a tracked property -> ``deal.updated``; of ``dealstage`` ->
  ``deal.stage_changed`` or, for a stage mapped to closed_won/closed_lost,
  ``deal.closed_won`` / ``deal.closed_lost``. Untracked properties (``hs_deal_stage_probability``,
  ``pipeline``, ``hs_lastmodifieddate``...) -> no event; an emptied tracked property ->
  ``deal.updated`` naming it in ``cleared`` (an empty ``dealstage`` -> no event).
- ``deal.deletion`` (and ``deal.privacyDeletion``) -> ``deal.closed_lost`` with reason
  ``"deleted in CRM"``: the deal leaves the open pipeline; our contract has no deletion.
- ``deal.merge`` -> ``deal.merged`` of the primary and each of ``mergedObjectIds`` into
  ``newObjectId`` (except itself): HubSpot keeps the primary or creates a new deal.
- ``deal.associationChange`` -> no event. ``deal.restore`` -> AdapterError: it cannot be
  applied without re-reading the deal from the HubSpot API.
- any other object type (``contact.*``, ``company.*``...) -> no event, counted as skipped:
  an app has one target URL, so a batch mixes object types, and a contact beside deal
  changes must not send them to the dead-letter topic.

The type is read from ``subscriptionType`` or, as in HubSpot's own documented example
payload, ``eventType``. The generic format (``object.creation``, ``object.propertyChange``...)
names the object in ``objectTypeId``: ``0-3`` is a deal, any other id is skipped.

Ids: the deal id is ``hs-<portalId>-<objectId>`` (HubSpot object ids are unique only within
a portal, so two portals feeding one worker cannot collide); ``hs-<objectId>`` when a
notification names no portal. HubSpot documents ``eventId`` as *not* guaranteed unique, so the
event id combines it with the deal id, the occurrence time and the property:
``<deal id>-<occurredAt>-<eventId>[-<propertyName>]``; retries
(``attemptNumber`` > 0) keep the same id and are deduplicated by the worker. The event time is
``occurredAt``, so a late retry of an older change is recognised as stale by the merge.

One unmappable deal notification rejects the whole body, with its index in the reason.
"""

from __future__ import annotations

from typing import Any

from schemas.deal_events import DealEvent
from worker.adapters import base
from worker.adapters.base import AdapterError, Skipped, StageMap

SOURCE_PREFIX = "hubspot"


# HubSpot property -> our field. ``dealstage`` is handled through the stage map.
PROPERTIES = base.field_table(
    {
        "dealname": "name",
        "amount": "amount",
        "closedate": "expected_close_date",
        "hubspot_owner_id": "owner",
        "deal_currency_code": "currency",
        "notes_last_contacted": "last_activity_at",
        "notes_last_updated": "last_activity_at",
        "num_contacted_notes": "interactions",
    }
)
IGNORED_TYPES = {"deal.associationChange"}
REREAD_TYPES = {"deal.restore"}
DELETION_TYPES = {"deal.deletion", "deal.privacyDeletion"}
DEAL_OBJECT_TYPE_ID = "0-3"  # HubSpot's objectTypeId of deals in the generic object.* format


def _kind(note: dict[str, Any]) -> str:
    """The notification's type as ``deal.<action>``; Skipped for another object's."""
    key = "subscriptionType" if "subscriptionType" in note else "eventType"
    kind = base.text(base.require(note, key, "notification"), key)
    obj, _, action = kind.partition(".")
    if obj == "object":
        type_id = str(note.get("objectTypeId", "")).strip()
        if type_id != DEAL_OBJECT_TYPE_ID:
            raise Skipped(f"{kind} of objectTypeId {type_id!r} is not about deals")
        return f"deal.{action}"
    if obj != "deal":
        raise Skipped(f"subscription type {kind!r} is not about deals")
    return kind


def _one(note: Any, stages: StageMap) -> list[DealEvent]:
    if not isinstance(note, dict):
        raise AdapterError("notification is not a JSON object")
    kind = _kind(note)
    if kind in IGNORED_TYPES:
        return []
    if kind in REREAD_TYPES:
        raise AdapterError(f"{kind} cannot be applied without re-reading the deal from HubSpot")
    object_id = base.ident(base.require(note, "objectId", "notification"), "objectId")
    event_id = base.ident(base.require(note, "eventId", "notification"), "eventId")
    occurred_raw = base.require(note, "occurredAt", "notification")
    at = base.to_datetime(occurred_raw, "occurredAt")
    portal = note.get("portalId")
    portal_id = base.ident(portal, "portalId") if portal else None
    source = f"{SOURCE_PREFIX}/portal/{portal_id}" if portal_id else SOURCE_PREFIX
    subject = f"hs-{portal_id}-{object_id}" if portal_id else f"hs-{object_id}"
    base_id = f"{subject}-{base.ms_of(at)}-{event_id}"
    envelope = {"source": source, "time": at, "subject": subject}

    if kind == "deal.creation":
        return [base.build(kind="created", id=base_id, data={}, **envelope)]
    if kind == "deal.merge":
        return _merge(note, portal_id, base_id, envelope)
    if kind in DELETION_TYPES:
        return [base.deleted(id=base_id, **envelope)]
    if kind != "deal.propertyChange":
        raise AdapterError(f"unsupported subscription type {kind!r}")

    prop = base.text(base.require(note, "propertyName", "notification"), "propertyName")
    value = note.get("propertyValue")
    if prop.casefold() == "dealstage":
        if base.blank(value):
            return []  # a deal always has a stage: an empty one tells nothing
        stage = stages.lookup("hubspot", base.text(value, "dealstage"))
        if stage is None:
            return []  # an unknown stage, recorded by a lenient map
        fields: dict[str, Any] = {"stage": stage}
    elif prop.casefold() in PROPERTIES:
        fields = base.map_fields(
            PROPERTIES, {prop.casefold(): value}, [prop.casefold()], clears=True
        )
    else:
        return []  # not a property we track
    if not fields:
        return []  # emptied, and ours cannot be empty (a currency, a count)
    prop_id = f"{base_id}-{prop.casefold()}"
    return base.change_events(created=False, id=prop_id, fields=fields, **envelope)


def _merge(
    note: dict[str, Any], portal_id: str | None, base_id: str, envelope: dict[str, Any]
) -> list[DealEvent]:
    """``deal.merge``: the primary and ``mergedObjectIds`` went into ``newObjectId`` (the
    primary itself, or a new deal): each other one is ``deal.merged`` into it."""

    def deal(object_id: Any, what: str) -> str:
        oid = base.ident(object_id, what)
        return f"hs-{portal_id}-{oid}" if portal_id else f"hs-{oid}"

    into = deal(base.require(note, "newObjectId", "notification"), "newObjectId")
    merged_ids = note.get("mergedObjectIds") or []
    if not isinstance(merged_ids, list):
        raise AdapterError("mergedObjectIds is not a list")
    primary = deal(base.require(note, "primaryObjectId", "notification"), "primaryObjectId")
    gone = dict.fromkeys([primary, *(deal(m, "mergedObjectIds") for m in merged_ids)])
    return [
        base.merged(id=f"{base_id}-merged-{subject}", **{**envelope, "subject": subject}, into=into)
        for subject in gone
        if subject != into
    ]


to_events = base.item_adapter("hubspot", "notification", _one, by_time=True)
