"""The revenue forecast published to the forecasts topic (``revintel.forecasts``).

One message per forecast run: key = the run's as-of date (ISO, ``2026-03-14``), headers
``run_id`` and ``kind``. Delivery is at least once: consumers dedupe by ``run_id``. The same run
is stored in PostgreSQL (``forecast_runs`` / ``forecast_snapshots``, same ``run_id``).

Amounts are in the deals' currency (the forecast sums values as they are; one currency assumed).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

ForecastKind = Literal["scheduled", "daily", "manual"]
ForecastMethod = Literal[
    "deterministic", "exact", "simulation", "cornish_fisher", "hybrid", "learned"
]
AsOfSource = Literal["data", "explicit"]

__all__ = [
    "AsOfSource",
    "ForecastCoverageCounts",
    "ForecastKind",
    "ForecastMethod",
    "ForecastMonth",
    "ForecastParts",
    "ForecastPublished",
    "ForecastTotals",
]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ForecastParts(_Contract):
    """Where a learned month's won value comes from (``method`` "learned"). The month's
    figures combine the model's point (open_pipeline + overdue + new_business) with the
    seasonal forecast: weighted = p50 = model_weight x model point + (1 - model_weight) x
    seasonal."""

    open_pipeline: float = Field(
        ge=0, description="Expected won value from open deals not yet past their close date."
    )
    overdue: float = Field(
        ge=0, description="Expected won value from open deals already past their close date."
    )
    new_business: float = Field(ge=0, description="Expected won value from deals not created yet.")
    seasonal: float | None = Field(
        description="Won value of the same month of the latest complete quarter (scaled to the "
        "part of the month ahead); null without that history."
    )
    model_weight: float = Field(
        ge=0, le=1, description="Weight of the model's point against the seasonal forecast."
    )


class ForecastMonth(_Contract):
    """The forecast of one calendar month. With the learned deal model (``method``
    "learned") its figures are the total won value expected in the month (month 0: from the
    as-of to the month's end), the parts beside them; with the framework heuristic they cover
    the open deals expected to close in the month (overdue ones have their own line)."""

    month: date = Field(description="First day of the forecast month (expected close month).")
    deal_count: int = Field(
        ge=0,
        description="Open deals expected to close this month (the first month also holds "
        "deals whose expected close month had already passed at the as-of date).",
    )
    pipeline: float = Field(ge=0, description="Sum of the deals' values.")
    weighted: float = Field(
        ge=0, description="Probability-weighted value: sum of value x close probability."
    )
    p10: float = Field(
        ge=0, description="Won value at the 10th percentile: 90 % chance to win at least this."
    )
    p50: float = Field(ge=0, description="Median won value.")
    p90: float = Field(
        ge=0, description="Won value at the 90th percentile: 10 % chance to win more than this."
    )
    expected_wins: float = Field(
        ge=0, description="Expected number of deals won: sum of close probabilities."
    )
    method: ForecastMethod = Field(
        description="How p10/p50/p90 were obtained: deterministic (no uncertain deals), exact "
        "(all outcomes enumerated), simulation (seeded Monte-Carlo), cornish_fisher (moment-"
        "matched expansion, large months), hybrid (dominant deals simulated, rest expanded) "
        "or learned (the deal model's timing, new business and the seasonal forecast)."
    )
    parts: ForecastParts | None = Field(
        None, description="The parts of a learned month (null for the heuristic forecast)."
    )


class ForecastTotals(_Contract):
    """Sums over the horizon. Percentiles do not add up across months, so there are none."""

    deal_count: int = Field(ge=0, description="Deals counted in some month of the horizon.")
    pipeline: float = Field(ge=0, description="Sum of the months' pipeline.")
    weighted: float = Field(ge=0, description="Sum of the months' weighted value.")
    expected_wins: float = Field(ge=0, description="Sum of the months' expected wins.")


class ForecastCoverageCounts(_Contract):
    """Which open deals the forecast counted, and why the others were left out."""

    open_deals: int = Field(ge=0, description="Open deals read.")
    included: int = Field(ge=0, description="Deals counted in some month of the horizon.")
    no_close_date: int = Field(ge=0, description="Left out: no expected close date.")
    overdue_folded: int = Field(
        0,
        ge=0,
        description="Deprecated, always 0: overdue deals are no longer folded into the first "
        "month; see `overdue`.",
    )
    overdue: int = Field(
        0,
        ge=0,
        description="Open deals past their expected close date: counted in the overdue line, "
        "not in any month (nor in `included`).",
    )
    beyond_horizon: int = Field(ge=0, description="Left out: expected to close after the horizon.")
    no_amount: int = Field(ge=0, description="Counted deals with no amount (valued 0).")
    no_probability: int = Field(
        ge=0, description="Counted deals with no close probability (unscored, taken as 0)."
    )


class ForecastOverdue(_Contract):
    """Open deals past their expected close date, as a line of their own: they have not closed
    when they said they would, so their close probability decays with the time overdue (it
    halves every ``half_life_days``), and they are not presented as closing this month."""

    deal_count: int = Field(ge=0, description="Open deals with expected close date < as_of.")
    pipeline: float = Field(ge=0, description="Sum of their values.")
    weighted: float = Field(ge=0, description="Sum of value x decayed close probability.")
    p10: float = Field(ge=0, description="Won value at the 10th percentile (decayed).")
    p50: float = Field(ge=0, description="Median won value (decayed).")
    p90: float = Field(ge=0, description="Won value at the 90th percentile (decayed).")
    expected_wins: float = Field(ge=0, description="Sum of decayed close probabilities.")
    method: ForecastMethod
    half_life_days: float = Field(gt=0, description="Days overdue that halve a probability.")
    median_days_overdue: float | None = Field(description="How late the typical one is.")


class ForecastPublished(_Contract):
    """A forecast run: month-by-month pipeline, weighted value and won-value range."""

    run_id: UUID = Field(description="Id of the run (forecast_runs.run_id); dedupe by it.")
    as_of: date = Field(
        description="The forecast's today: month 0 is its calendar month, and overdue-ness is "
        "measured against it. The data's as-of date unless given explicitly (as_of_source)."
    )
    as_of_source: AsOfSource = Field(
        description="data: as_of is the UTC date of generated_from; explicit: it was given."
    )
    generated_from: datetime | None = Field(
        description="The data the forecast read, as of: the newest event time applied to any "
        "deal when the run read the deals (null: no deals at all)."
    )
    kind: ForecastKind = Field(
        description="scheduled (periodic), daily (the daily snapshot) or manual (on demand)."
    )
    horizon_months: int = Field(ge=1, description="Number of months forecast.")
    framework_version: str | None = Field(
        description="Scoring framework version behind the close probabilities."
    )
    seed: int = Field(description="Seed of the Monte-Carlo draws (same inputs, same output).")
    model_version: str = Field(
        "heuristic",
        description="The deal model version behind the months (model_versions.version), or "
        "'heuristic': the framework's close probabilities by expected close month.",
    )
    months: list[ForecastMonth] = Field(
        description="One entry per month, in order, from the as-of month; empty months are 0."
    )
    totals: ForecastTotals
    coverage: ForecastCoverageCounts
    overdue: ForecastOverdue | None = Field(
        None, description="Open deals past their expected close date (null: none were read)."
    )
