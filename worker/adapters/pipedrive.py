"""Pipedrive webhooks v2 (and v1) -> deal events.

Body: ``{"meta": {"action": "create"|"change"|"delete", "entity": "deal", "entity_id": "123",
"id": "<uuid>", "timestamp": "...Z", "version": "2.0", "company_id", "user_id", "attempt",
...}, "data": {<the deal now>}, "previous": {<old values of the changed fields>}}``.

Mapping:

- ``create`` -> ``deal.created`` with every tracked field; a deal created won or lost also
  gets its closing event.
- ``change`` -> the fields present in ``previous`` (all of ``data`` when ``previous`` is
  empty), read from ``data``: ``status`` won/lost -> ``deal.closed_won`` (amount = ``value``
  when it changed too) / ``deal.closed_lost`` (reason = ``lost_reason``); ``status`` back to
  open -> ``deal.stage_changed`` to the deal's stage (a reopen); ``stage_id`` of an open
  deal -> ``deal.stage_changed``; other tracked fields -> ``deal.updated``; untracked fields
  (``update_time``, ``probability``, ``label_ids``, custom fields...) -> no event.
- ``delete`` (or ``status`` ``deleted``) -> ``deal.closed_lost`` with reason
  ``"deleted in CRM"``; a ``delete`` whose meta names ``merged_to_id`` (webhooks v2 sends a
  merge as the merged deal's delete and the survivor's change) -> ``deal.merged`` into
  that deal.
- an entity other than ``deal`` -> AdapterError.
- webhooks v1 bodies (``meta.object``, ``current`` / ``previous``) are accepted too: see
  ``_v1``.

Fields: title -> name, value -> amount, currency, stage_id -> stage (stage map
``[pipedrive]``, ids as strings; only looked up while the deal is open), expected_close_date,
owner_name or owner_id -> owner, org_name (or an expanded ``org_id.name``) -> company (a bare
organisation id is not a name and is skipped), last_activity_date -> last_activity_at,
done_activities_count -> interactions.

Cleared fields: a changed field (named in ``previous``) that is now empty (null or "") is named
in ``cleared`` when ours can be empty (title, value, close date, owner, organisation).

Ids: the deal id is ``pd-<company_id>-<entity_id>`` (``pd-<entity_id>`` when the meta names no
company: deal ids are unique within one Pipedrive company account only); the event id is
``<deal id>-<meta.id>`` (a redelivery, ``meta.attempt`` > 1, keeps ``meta.id``). The event time
is ``meta.timestamp``.
"""

from __future__ import annotations

from typing import Any

from schemas.deal_events import DealEvent, DealStage
from worker.adapters import base
from worker.adapters.base import AdapterError, StageMap

SOURCE_PREFIX = "pipedrive"


def _expanded_name(value: Any, what: str) -> str | None:
    """The name of an expanded object (``{"id": 5, "name": "Acme"}``); None for a bare id."""
    if isinstance(value, dict) and not base.blank(value.get("name")):
        return base.text(value["name"], what)
    return None


def _owner(value: Any, what: str) -> str | None:
    """An owner id, or the name of an expanded user object (v1 style)."""
    return _expanded_name(value, what) if isinstance(value, dict) else base.text(value, what)


# Applied in this order, so that owner_name wins over owner_id and org_name over org_id.
FIELDS = base.field_table(
    {
        "title": "name",
        "value": "amount",
        "currency": "currency",
        "expected_close_date": "expected_close_date",
        "owner_id": "owner",
        "owner_name": "owner",
        "org_id": "company",
        "org_name": "company",
        "last_activity_date": "last_activity_at",
        "done_activities_count": "interactions",
    },
    special={"owner_id": _owner, "org_id": _expanded_name},
)


@base.guarded("pipedrive")
def to_events(raw: bytes, stages: StageMap) -> list[DealEvent]:
    body = base.parse_json(raw, "pipedrive")
    if not isinstance(body, dict):
        raise AdapterError("pipedrive payload is not a JSON object")
    meta = base.require(body, "meta", "pipedrive payload")
    if meta.get("v") == 1 or "object" in meta:
        return _v1(body, meta, stages)
    if "current" in body or str(meta.get("version", "2")).startswith("1"):
        raise AdapterError(
            "pipedrive webhooks v1 payload without a v1 meta (meta.v, meta.object): "
            "neither v1 nor v2"
        )
    entity = base.text(base.require(meta, "entity", "meta"), "meta.entity")
    if entity != "deal":
        raise AdapterError(f"pipedrive entity {entity!r} is not a deal")
    action = base.text(base.require(meta, "action", "meta"), "meta.action")
    deal_id = base.ident(base.require(meta, "entity_id", "meta"), "meta.entity_id")
    at = base.to_datetime(base.require(meta, "timestamp", "meta"), "meta.timestamp")
    envelope = _envelope(meta, deal_id, base.ident(base.require(meta, "id", "meta"), "meta.id"), at)
    if action == "delete" and not base.blank(meta.get("merged_to_id")):
        into = _envelope(meta, base.ident(meta["merged_to_id"], "meta.merged_to_id"), "", at)
        return [base.merged(**envelope, into=into["subject"])]
    if action == "delete":
        return [base.deleted(**envelope)]
    if action not in ("create", "change"):
        raise AdapterError(f"unsupported pipedrive action {action!r}")
    deal = body.get("data")
    if not isinstance(deal, dict):
        raise AdapterError(f"pipedrive {action} has no deal in 'data'")
    previous = body.get("previous")
    if action == "create" or not isinstance(previous, dict) or not previous:
        return _mapped(action, deal, set(deal), envelope, stages)
    return _mapped(action, deal, set(previous), envelope, stages, clears=True)


# webhooks v1 ``meta.action`` -> the v2 action it is mapped as (a v1 merge reports the
# surviving deal, changed)
V1_ACTIONS = {"added": "create", "updated": "change", "merged": "change", "deleted": "delete"}


def _v1(body: dict[str, Any], meta: dict[str, Any], stages: StageMap) -> list[DealEvent]:
    """A webhooks v1 body: ``meta.object`` / ``meta.action`` (added, updated, merged,
    deleted), the deal in ``current`` and its whole previous state in ``previous`` (the
    changed fields are those that differ). ``meta.id`` is the deal id; the event id is
    ``<deal id>-v1-<timestamp_micro>`` (a retry, ``retry`` > 0, repeats the meta)."""
    entity = base.text(base.require(meta, "object", "meta"), "meta.object")
    if entity != "deal":
        raise AdapterError(f"pipedrive entity {entity!r} is not a deal")
    verb = base.text(base.require(meta, "action", "meta"), "meta.action")
    action = V1_ACTIONS.get(verb)
    if action is None:
        raise AdapterError(f"unsupported pipedrive v1 action {verb!r}")
    deal_id = base.ident(base.require(meta, "id", "meta"), "meta.id")
    micro = meta.get("timestamp_micro")
    if micro is not None and not base.blank(micro):
        stamp = base.to_count(micro, "meta.timestamp_micro")
        at = base.to_datetime(stamp // 1000, "meta.timestamp_micro")
    else:
        at = base.to_datetime(base.require(meta, "timestamp", "meta"), "meta.timestamp")
        stamp = base.to_count(meta["timestamp"], "meta.timestamp")
    envelope = _envelope(meta, deal_id, f"v1-{stamp}", at)
    if action == "delete":
        return [base.deleted(**envelope)]
    deal = body.get("current")
    if not isinstance(deal, dict):
        raise AdapterError(f"pipedrive v1 {verb} has no deal in 'current'")
    previous = body.get("previous")
    if action == "create" or not isinstance(previous, dict):
        return _mapped(action, deal, set(deal), envelope, stages)
    changed = {k for k, v in deal.items() if previous.get(k) != v}
    return _mapped(action, deal, changed, envelope, stages, clears=True)


def _envelope(meta: dict[str, Any], deal_id: str, event_id: str, at: Any) -> dict[str, Any]:
    """The events' id, source, time and deal id (``pd-<company_id>-<id>``: Pipedrive deal ids
    are unique within a company account only)."""
    company = meta.get("company_id")
    company_id = base.ident(company, "company_id") if company else None
    source = f"{SOURCE_PREFIX}/{company_id}" if company_id else SOURCE_PREFIX
    subject = f"pd-{company_id}-{deal_id}" if company_id else f"pd-{deal_id}"
    return {"id": f"{subject}-{event_id}", "source": source, "time": at, "subject": subject}


def _mapped(
    action: str,
    deal: dict[str, Any],
    changed: set[str],
    envelope: dict[str, Any],
    stages: StageMap,
    clears: bool = False,
) -> list[DealEvent]:
    """The events of a created or changed deal, ``changed`` naming its changed fields (with
    ``clears``, exactly: an emptied one is cleared)."""
    fields = base.map_fields(FIELDS, deal, [key for key in FIELDS if key in changed], clears=clears)
    status = deal.get("status", "open")
    closure: dict[str, Any] = {}
    if status == "deleted" and "status" in changed:
        return [base.deleted(**envelope)]
    if status == "won" and (action == "create" or "status" in changed):
        fields["stage"] = DealStage.closed_won
    elif status == "lost" and (action == "create" or "status" in changed):
        fields["stage"] = DealStage.closed_lost
        if not base.blank(deal.get("lost_reason")):
            closure["reason"] = base.text(deal["lost_reason"], "lost_reason")[:500]
    elif status == "open" and ("stage_id" in changed or "status" in changed):
        stage_id = base.require(deal, "stage_id", "pipedrive deal")
        stage = stages.lookup("pipedrive", base.text(stage_id, "stage_id"))
        if stage is not None:  # None: unknown, recorded by a lenient map
            fields["stage"] = stage
    elif status not in ("open", "won", "lost", "deleted"):
        raise AdapterError(f"unknown pipedrive deal status {status!r}")
    return base.change_events(
        created=action == "create", fields=fields, closure=closure, **envelope
    )
