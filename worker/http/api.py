"""The seed's HTTP API under /api/revenue (OpenAPI at /docs), served by `revintel run`.

Reads come from the projection in PostgreSQL (the SQL views); a write is an event on the deal
topic (the database stays a projection of the log, so a replay rebuilds it exactly); the
predictions run the engine with the worker's framework. Auth: bearer API keys from
``REVINTEL_API_KEYS`` (key -> "read" or "write"; write implies read); with none configured,
only loopback clients are answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.deal_events import DealFields
from worker.adapters.base import AdapterError, change_events
from worker.engine import (
    ChurnInput,
    DealInput,
    DealValueInput,
    ExpansionInput,
    Framework,
    ScenarioInput,
    predict_deal_value,
    run_scenario,
    score_churn,
    score_deal,
    score_expansion,
)
from worker.engine.seed import deal_input_from_seed
from worker.forecast.dashboard import load_dashboard
from worker.http.webhooks import Publish
from worker.log import get_logger

API_SOURCE = "revintel/api"
Scope = Literal["read", "write"]


# --------------------------------------------------------------------------- auth


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def authorizer(keys: dict[str, Scope]) -> Callable[[Scope], Any]:
    """``Depends(need("write"))``: a bearer key with that scope, or a loopback client when
    no key is configured."""

    def need(scope: Scope) -> Any:
        async def check(request: Request) -> None:
            if not keys:
                if not _loopback(request.client.host if request.client else None):
                    raise HTTPException(403, "no REVINTEL_API_KEYS: only loopback clients")
                return
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            granted = next(
                (s for k, s in keys.items() if hmac.compare_digest(k.encode(), token.encode())),
                None,
            )
            if granted is None:
                raise HTTPException(
                    401, "a valid bearer API key is required", {"WWW-Authenticate": "Bearer"}
                )
            if scope == "write" and granted != "write":
                raise HTTPException(403, "this API key may only read")

        return Depends(check)

    return need


# --------------------------------------------------------------------------- bodies


class ScenarioDeltas(BaseModel):
    """What-if levers only: the baseline is the live pipeline."""

    model_config = ConfigDict(extra="forbid")

    win_rate_change: float = Field(0.0, ge=-1, le=10, description="Relative, e.g. 0.1: +10 %.")
    deal_size_change: float = Field(0.0, ge=-1, le=10, description="Relative deal-size change.")
    pipeline_growth: float = Field(0.0, ge=-1, le=10, description="Relative growth in deals.")
    sales_cycle_change: float = Field(0.0, ge=-0.9, le=10, description="Relative cycle change.")


class Baseline(BaseModel):
    pipeline_value: float
    win_rate: float
    avg_deal_size: float
    win_rate_source: Literal["closed_deals", "open_probabilities"]


class Queued(BaseModel):
    """The change is on the deal topic; the projection applies it shortly."""

    status: str = "accepted"
    event_ids: list[str]
    deal_id: str


# --------------------------------------------------------------------------- queries

_BASELINE = """
SELECT coalesce(sum(amount) FILTER (WHERE open), 0) AS pipeline,
       avg(amount) FILTER (WHERE open) AS avg_open,
       coalesce(sum(amount) FILTER (WHERE stage = 'closed_won'), 0) AS won,
       coalesce(sum(amount) FILTER (WHERE stage = 'closed_lost'), 0) AS lost,
       sum(amount * close_probability) FILTER (WHERE open) AS weighted
FROM (SELECT *, stage NOT IN ('closed_won', 'closed_lost') AS open FROM deals
      WHERE amount IS NOT NULL) d
"""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in records]


async def live_baseline(conn: asyncpg.Connection) -> Baseline:
    r = await conn.fetchrow(_BASELINE)
    pipeline = float(r["pipeline"])
    closed = float(r["won"]) + float(r["lost"])
    if closed > 0:
        win_rate, source = float(r["won"]) / closed, "closed_deals"
    else:  # no outcome yet: the open deals' own probabilities, value-weighted
        win_rate = float(r["weighted"] or 0) / pipeline if pipeline else 0.0
        source = "open_probabilities"
    avg = float(r["avg_open"]) if r["avg_open"] is not None else 0.0
    return Baseline(
        pipeline_value=pipeline,
        win_rate=min(max(win_rate, 0.0), 1.0),
        avg_deal_size=avg,
        win_rate_source=source,
    )


# --------------------------------------------------------------------------- the router


def _engine(compute: Callable[[], Any]) -> Any:
    """Engine errors about the input (ValueError, a ValidationError) are 422s."""
    try:
        return compute()
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Backend:
    """What the API needs of the process serving it."""

    framework: Framework
    pool: Callable[[], asyncpg.Pool | None]  # None while the worker starts
    publish: Publish
    deal_topic: str

    def db(self) -> asyncpg.Pool:
        running = self.pool()
        if running is None:
            raise HTTPException(503, "the worker is starting: PostgreSQL is not connected yet")
        return running


def api_router(
    *,
    keys: dict[str, Scope],
    framework: Framework,
    pool: Callable[[], asyncpg.Pool | None],
    publish: Publish,
    deal_topic: str,
) -> APIRouter:
    need = authorizer(keys)
    backend = Backend(framework, pool, publish, deal_topic)
    api = APIRouter(prefix="/api/revenue", tags=["revenue"])
    _reads(api, need("read"), backend)
    _what_if(api, need("read"), backend)
    _writes(api, need("write"), backend)
    _predictions(api, need("read"), backend.framework)
    return api


def _reads(api: APIRouter, read: Any, b: Backend) -> None:
    @api.get("/dashboard", dependencies=[read])
    async def dashboard() -> dict[str, Any]:
        """KPIs, pipeline by stage and the monthly forecast (as `revintel dashboard`)."""
        data = await load_dashboard(b.db())
        return data.model_dump(mode="json")

    @api.get("/alerts/at-risk", dependencies=[read])
    async def at_risk(
        min_deal_value: float = Query(0, ge=0, description="Only deals worth at least this."),
    ) -> list[dict[str, Any]]:
        """Open deals at risk (warning or critical health, at or above the alert threshold)."""
        rows = await b.db().fetch(
            "SELECT * FROM at_risk_deals WHERE amount >= $1", Decimal(str(min_deal_value))
        )
        return _rows(rows)

    @api.get("/forecast/monthly", dependencies=[read])
    async def forecast_monthly() -> list[dict[str, Any]]:
        """Pipeline and weighted forecast by expected close month, and the overdue line."""
        return _rows(await b.db().fetch("SELECT * FROM revenue_forecast_monthly"))

    @api.get("/won-deals/summary", dependencies=[read])
    async def won_deals() -> list[dict[str, Any]]:
        """Won deals by close month: count, value, average size and cycle."""
        return _rows(await b.db().fetch("SELECT * FROM won_deals_summary"))

    @api.get("/health-check", dependencies=[read])
    async def health_check() -> dict[str, Any]:
        """Whether the projection answers, and how fresh its data is."""
        row = await b.db().fetchrow(
            "SELECT data_as_of() AS data_as_of, count(*) AS deals FROM deals"
        )
        return {"status": "ok", "data_as_of": row["data_as_of"], "deals": row["deals"]}


def _what_if(api: APIRouter, read: Any, b: Backend) -> None:
    @api.post("/scenario-calculator", dependencies=[read])
    async def scenario(levers: ScenarioDeltas | None = None) -> Any:
        """What-if: the levers applied to the live pipeline's baseline."""
        levers = levers or ScenarioDeltas()
        async with b.db().acquire() as conn:
            base = await live_baseline(conn)
        if base.avg_deal_size <= 0:
            raise HTTPException(409, "no open deal with an amount: there is no baseline")
        inputs = ScenarioInput(
            pipeline_value=base.pipeline_value,
            win_rate=base.win_rate,
            avg_deal_size=base.avg_deal_size,
            **levers.model_dump(),
        )
        result = _engine(lambda: run_scenario(inputs))
        return {"baseline_source": base.model_dump(), **result.to_dict()}


def _writes(api: APIRouter, write: Any, b: Backend) -> None:
    @api.patch("/deals/{deal_id}", status_code=202, dependencies=[write])
    async def patch_deal(deal_id: str, fields: DealFields) -> Queued:
        """A change of a deal, published as its event(s) on the deal topic (202): the
        projection applies it like any CRM change."""
        changed = fields.model_dump(exclude_unset=True)
        if not changed:
            raise HTTPException(422, "no field to change")
        if await b.db().fetchval("SELECT 1 FROM deals WHERE deal_id = $1", deal_id) is None:
            raise HTTPException(404, f"no deal {deal_id!r}")
        events = _engine(lambda: _change(deal_id, changed))
        for event in events:
            value = event.model_dump_json().encode()
            try:
                await b.publish(b.deal_topic, deal_id.encode(), value, [])
            except Exception as exc:
                raise HTTPException(503, "Kafka did not acknowledge the change: retry") from exc
        ids = [e.id for e in events]
        get_logger().info("api_deal_patched", deal_id=deal_id, event_ids=ids)
        return Queued(event_ids=ids, deal_id=deal_id)


def _change(deal_id: str, changed: dict[str, Any]) -> list[Any]:
    try:
        return change_events(
            created=False,
            id=f"api-{uuid.uuid4()}",
            source=API_SOURCE,
            time=datetime.now(UTC),
            subject=deal_id,
            fields=changed,
        )
    except AdapterError as exc:
        raise ValueError(exc.reason) from exc


def _predictions(api: APIRouter, read: Any, framework: Framework) -> None:
    @api.post("/predict/deal-value", dependencies=[read])
    async def deal_value(body: DealValueInput) -> dict[str, Any]:
        """Predicted deal value from plan, users, price, discount, billing and term."""
        return _engine(lambda: predict_deal_value(body, framework)).to_dict()

    @api.post("/predict/close-probability", dependencies=[read])
    async def close_probability(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Close probability of a deal: our DealInput, or the seed's body (deal_stage,
        days_in_stage, num_interactions...; "now" is the request's time unless as_of)."""
        deal = _engine(
            lambda: DealInput.model_validate(deal_input_from_seed(body, datetime.now(UTC)))
        )
        score = _engine(lambda: score_deal(deal.to_facts(), deal.as_of, framework))
        return {"framework_version": score.framework_version, **score.probability.to_dict()}

    @api.post("/accounts/churn-risk", dependencies=[read])
    async def churn_risk(body: ChurnInput) -> dict[str, Any]:
        """Churn risk of an account from usage, support, financial, sentiment and renewal."""
        return _engine(lambda: score_churn(body, framework)).to_dict()

    @api.post("/accounts/expansion-score", dependencies=[read])
    async def expansion_score(body: ExpansionInput) -> dict[str, Any]:
        """Expansion score and recommended motion of an account."""
        return _engine(lambda: score_expansion(body, framework)).to_dict()
