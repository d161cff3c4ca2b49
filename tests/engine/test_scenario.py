from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.engine import ScenarioInput, run_scenario

from ._errors import one_validation_error


def test_baseline() -> None:
    result = run_scenario(
        ScenarioInput(pipeline_value=2_000_000, win_rate=0.25, avg_deal_size=40_000)
    )
    assert result.baseline.forecast == 500_000
    assert result.baseline.deals == 50
    assert result.projected == result.baseline
    assert result.delta.forecast.value == 0
    assert result.delta.forecast.percent == 0


def test_worked_example() -> None:
    inputs = ScenarioInput(
        pipeline_value=1_000_000,
        win_rate=0.2,
        avg_deal_size=20_000,
        win_rate_change=0.10,
        deal_size_change=0.05,
        pipeline_growth=0.20,
        sales_cycle_change=-0.20,
    )
    result = run_scenario(inputs)
    cycle_factor = 1 / (1 - 0.20)
    deals = 1_000_000 / 20_000 * 1.20 * cycle_factor
    size = 20_000 * 1.05
    pipeline = deals * size
    rate = 0.2 * 1.10
    forecast = pipeline * rate
    p = result.projected
    assert result.cycle_factor == pytest.approx(1.25)
    assert p.deals == pytest.approx(deals)
    assert p.avg_deal_size == pytest.approx(size)
    assert p.pipeline_value == pytest.approx(pipeline)
    assert p.win_rate == pytest.approx(rate)
    assert p.forecast == pytest.approx(forecast)
    assert result.delta.forecast.value == pytest.approx(forecast - 200_000)
    assert result.delta.forecast.percent == pytest.approx(100 * (forecast - 200_000) / 200_000)
    # each lever alone
    assert result.lever_effects.win_rate_change == pytest.approx(200_000 * 0.10)
    assert result.lever_effects.sales_cycle_change == pytest.approx(200_000 * 0.25)
    assert result.summary.startswith("Forecast 200,000 -> ")


def test_longer_cycle_moves_pipeline_out_of_the_period() -> None:
    result = run_scenario(
        ScenarioInput(
            pipeline_value=100_000, win_rate=0.5, avg_deal_size=10_000, sales_cycle_change=0.25
        )
    )
    assert result.cycle_factor == pytest.approx(0.8)
    assert result.projected.forecast == pytest.approx(40_000)


def test_win_rate_is_capped_at_one() -> None:
    result = run_scenario(
        ScenarioInput(pipeline_value=100, win_rate=0.8, avg_deal_size=10, win_rate_change=0.5)
    )
    assert result.projected.win_rate == 1.0
    assert result.win_rate_capped
    assert result.projected.forecast == pytest.approx(result.projected.pipeline_value)


def test_empty_pipeline_has_no_percentages() -> None:
    result = run_scenario(
        ScenarioInput(pipeline_value=0, win_rate=0.3, avg_deal_size=1000, pipeline_growth=0.5)
    )
    assert result.delta.forecast.value == 0
    assert result.delta.forecast.percent is None


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (
            {"pipeline_value": -1, "win_rate": 0.2, "avg_deal_size": 1},
            "pipeline_value",
            "Input should be greater than or equal to 0",
        ),
        (
            {"pipeline_value": 1, "win_rate": 1.2, "avg_deal_size": 1},
            "win_rate",
            "Input should be less than or equal to 1",
        ),
        (
            {"pipeline_value": 1, "win_rate": 0.2, "avg_deal_size": 0},
            "avg_deal_size",
            "Input should be greater than 0",
        ),
        (
            {"pipeline_value": 1, "win_rate": 0.2, "avg_deal_size": 1, "sales_cycle_change": -1},
            "sales_cycle_change",
            "Input should be greater than -1",
        ),
    ],
)
def test_input_validation(bad: dict, field: str, message: str) -> None:
    with pytest.raises(
        ValidationError, match=one_validation_error("ScenarioInput", message, field)
    ):
        ScenarioInput.model_validate(bad)


changes = st.floats(-0.95, 3)


@settings(max_examples=300, deadline=None)
@given(
    pipeline=st.floats(0, 1e10),
    rate=st.floats(0, 1),
    size=st.floats(1, 1e7),
    win=changes,
    deal=changes,
    growth=changes,
    cycle=changes,
)
def test_projection_is_consistent(
    pipeline: float, rate: float, size: float, win: float, deal: float, growth: float, cycle: float
) -> None:
    result = run_scenario(
        ScenarioInput(
            pipeline_value=pipeline,
            win_rate=rate,
            avg_deal_size=size,
            win_rate_change=win,
            deal_size_change=deal,
            pipeline_growth=growth,
            sales_cycle_change=cycle,
        )
    )
    b, p = result.baseline, result.projected
    assert b.forecast == pytest.approx(b.pipeline_value * b.win_rate)
    assert b.deals == pytest.approx(b.pipeline_value / b.avg_deal_size)
    assert p.forecast == pytest.approx(p.pipeline_value * p.win_rate)
    assert p.pipeline_value == pytest.approx(p.deals * p.avg_deal_size)
    assert p.pipeline_value == pytest.approx(
        pipeline * (1 + growth) * (1 + deal) / (1 + cycle), rel=1e-9, abs=1e-6
    )
    assert 0 <= p.win_rate <= 1
    assert result.delta.forecast.value == pytest.approx(p.forecast - b.forecast, abs=1e-6)
