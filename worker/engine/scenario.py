"""What-if calculator: ``run_scenario(inputs)`` -> baseline, projection and deltas.

Baseline (one forecast period)::

    forecast = pipeline_value * win_rate
    deals    = pipeline_value / avg_deal_size          (deals implied by the pipeline)

Changes are relative (+0.10 = +10 %, -0.20 = -20 %)::

    win_rate'      = min(1, win_rate * (1 + win_rate_change))
    avg_deal_size' = avg_deal_size * (1 + deal_size_change)
    cycle_factor   = 1 / (1 + sales_cycle_change)
    deals'         = deals * (1 + pipeline_growth) * cycle_factor
    pipeline'      = deals' * avg_deal_size'
                   = pipeline_value * (1 + pipeline_growth) * (1 + deal_size_change) * cycle_factor
    forecast'      = pipeline' * win_rate'

The sales-cycle model is the sales-velocity formula (value closed per day = deals * win rate *
deal size / cycle length): over a fixed period the pipeline worked through scales with
1 / cycle length, so a 20 % shorter cycle (-0.20) moves 1 / 0.8 = 1.25 times as much pipeline
into the period, and a 25 % longer one 1 / 1.25 = 0.8 times. ``pipeline'`` is that pipeline
worked through in the period.

Deltas are projected - baseline, and the percentage of the baseline (None when the baseline is
0). ``lever_effects`` gives each change's forecast delta applied alone; the levers multiply, so
these do not add up to the total delta.
"""

from __future__ import annotations

from pydantic import Field

from ._common import Model, Result

__all__ = ["ScenarioFigures", "ScenarioInput", "ScenarioResult", "run_scenario"]

_CHANGE = {"gt": -1, "le": 100}


class ScenarioInput(Model):
    pipeline_value: float = Field(ge=0, le=1e15, description="Total open pipeline value.")
    win_rate: float = Field(ge=0, le=1, description="Share of pipeline value won, 0-1.")
    avg_deal_size: float = Field(gt=0, le=1e15, description="Average deal value.")
    win_rate_change: float = Field(0.0, **_CHANGE, description="Relative win-rate change.")
    deal_size_change: float = Field(0.0, **_CHANGE, description="Relative deal-size change.")
    pipeline_growth: float = Field(0.0, **_CHANGE, description="Relative growth in deals.")
    sales_cycle_change: float = Field(
        0.0, **_CHANGE, description="Relative cycle-length change (-0.2 = 20 % shorter)."
    )


class ScenarioFigures(Model):
    pipeline_value: float
    win_rate: float
    avg_deal_size: float
    deals: float
    forecast: float


class Delta(Model):
    value: float
    percent: float | None


class ScenarioDeltas(Model):
    forecast: Delta
    pipeline_value: Delta
    win_rate: Delta
    avg_deal_size: Delta
    deals: Delta


class LeverEffects(Model):
    """Forecast delta of each change applied alone."""

    win_rate_change: float
    deal_size_change: float
    pipeline_growth: float
    sales_cycle_change: float


class ScenarioResult(Result):
    baseline: ScenarioFigures
    projected: ScenarioFigures
    delta: ScenarioDeltas
    cycle_factor: float = Field(description="1 / (1 + sales_cycle_change).")
    win_rate_capped: bool = Field(description="The projected win rate hit 100 %.")
    lever_effects: LeverEffects
    summary: str


def _figures(
    base: ScenarioInput, win: float, size: float, growth: float, cycle: float
) -> tuple[ScenarioFigures, bool]:
    deals0 = base.pipeline_value / base.avg_deal_size
    raw_rate = base.win_rate * (1.0 + win)
    rate = min(1.0, raw_rate)
    cycle_factor = 1.0 / (1.0 + cycle)
    deals = deals0 * (1.0 + growth) * cycle_factor
    avg = base.avg_deal_size * (1.0 + size)
    pipeline = deals * avg
    return (
        ScenarioFigures(
            pipeline_value=pipeline,
            win_rate=rate,
            avg_deal_size=avg,
            deals=deals,
            forecast=pipeline * rate,
        ),
        raw_rate > 1.0,
    )


def _delta(new: float, old: float) -> Delta:
    return Delta(value=new - old, percent=None if old == 0 else 100.0 * (new - old) / old)


def run_scenario(inputs: ScenarioInput) -> ScenarioResult:
    """Baseline and projected forecast (formulas: module docstring)."""
    baseline, _ = _figures(inputs, 0.0, 0.0, 0.0, 0.0)
    projected, capped = _figures(
        inputs,
        inputs.win_rate_change,
        inputs.deal_size_change,
        inputs.pipeline_growth,
        inputs.sales_cycle_change,
    )

    def alone(**changes: float) -> float:
        args = {"win": 0.0, "size": 0.0, "growth": 0.0, "cycle": 0.0} | changes
        return _figures(inputs, **args)[0].forecast - baseline.forecast

    delta = ScenarioDeltas(
        forecast=_delta(projected.forecast, baseline.forecast),
        pipeline_value=_delta(projected.pipeline_value, baseline.pipeline_value),
        win_rate=_delta(projected.win_rate, baseline.win_rate),
        avg_deal_size=_delta(projected.avg_deal_size, baseline.avg_deal_size),
        deals=_delta(projected.deals, baseline.deals),
    )
    pct = delta.forecast.percent
    summary = (
        f"Forecast {baseline.forecast:,.0f} -> {projected.forecast:,.0f} "
        f"({delta.forecast.value:+,.0f}" + ("" if pct is None else f", {pct:+.1f}%") + ")"
    )
    return ScenarioResult(
        baseline=baseline,
        projected=projected,
        delta=delta,
        cycle_factor=1.0 / (1.0 + inputs.sales_cycle_change),
        win_rate_capped=capped,
        lever_effects=LeverEffects(
            win_rate_change=alone(win=inputs.win_rate_change),
            deal_size_change=alone(size=inputs.deal_size_change),
            pipeline_growth=alone(growth=inputs.pipeline_growth),
            sales_cycle_change=alone(cycle=inputs.sales_cycle_change),
        ),
        summary=summary,
    )
