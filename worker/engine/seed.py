"""The seed's request bodies, read as ours. Pure: "now" is passed in.

The seed's close-probability body describes a deal by ages in days and its own names
(``deal_stage``, ``days_in_stage``, ``num_interactions``...); :func:`deal_input_from_seed` turns
it into the fields of :class:`~worker.engine.deal.DealInput` (absolute times counted back from
``as_of``). A body with none of the seed's own names is returned as it is (ours).

Seed names -> ours: deal_stage -> stage ("Closed Won" or "closed-won" as closed_won),
deal_value / deal_amount -> amount, num_interactions -> interactions, num_objections_handled
-> objections_handled, num_competitors / competitors -> competitors, days_in_stage ->
stage_entered_at, deal_age_days -> created_at (days_in_stage when absent),
days_since_last_activity -> last_activity_at, days_to_close -> expected_close_date,
close_date_changes -> close_date_pushes; lead_score, industry, has_champion,
budget_confirmed, decision_maker_engaged, amount are the same in both.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SEED_ONLY = frozenset(
    {
        "deal_stage",
        "days_in_stage",
        "num_interactions",
        "deal_value",
        "deal_amount",
        "num_objections_handled",
        "num_competitors",
        "deal_age_days",
        "days_since_last_activity",
        "days_to_close",
        "close_date_changes",
    }
)
RENAMED = {
    "deal_stage": "stage",
    "deal_value": "amount",
    "deal_amount": "amount",
    "num_interactions": "interactions",
    "num_objections_handled": "objections_handled",
    "num_competitors": "competitors",
    "close_date_changes": "close_date_pushes",
}
_DAYS = ("days_in_stage", "deal_age_days", "days_since_last_activity", "days_to_close")


def is_seed_body(body: dict[str, Any]) -> bool:
    return any(key in SEED_ONLY for key in body)


def _stage(value: Any) -> Any:
    if isinstance(value, str):
        return "_".join(value.replace("-", " ").split()).casefold()
    return value


def _days(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number of days (0 or more), got {value!r}")
    return float(value)


def deal_input_from_seed(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Our DealInput fields of a seed body (``as_of`` in it wins over ``now``); a body of
    ours is returned unchanged. Raises ValueError on a bad day count."""
    if not is_seed_body(body):
        return body
    as_of = datetime.fromisoformat(body["as_of"]) if isinstance(body.get("as_of"), str) else now
    days = {key: _days(body, key) for key in _DAYS}
    ours = {RENAMED.get(k, k): v for k, v in body.items() if k not in _DAYS}
    if "stage" in ours:
        ours["stage"] = _stage(ours["stage"])
    in_stage = days["days_in_stage"] or 0.0
    age = days["deal_age_days"] if days["deal_age_days"] is not None else in_stage
    ours["as_of"] = as_of.isoformat()
    ours["stage_entered_at"] = (as_of - timedelta(days=in_stage)).isoformat()
    ours["created_at"] = (as_of - timedelta(days=max(age, in_stage))).isoformat()
    if days["days_since_last_activity"] is not None:
        since = timedelta(days=days["days_since_last_activity"])
        ours["last_activity_at"] = (as_of - since).isoformat()
    if days["days_to_close"] is not None:
        close = as_of + timedelta(days=days["days_to_close"])
        ours["expected_close_date"] = close.date().isoformat()
    return ours
