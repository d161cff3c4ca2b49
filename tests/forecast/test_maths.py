"""worker/forecast.py: month bucketing, the exact / simulated / moment-matched quantiles."""

from __future__ import annotations

import itertools
import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from worker.forecast.maths import (
    MISSING_MONTH,
    DealArrays,
    MonthForecast,
    compute_forecast,
    forecast_coverage,
    from_rows,
    month_index,
    month_start,
)

AS_OF = date(2026, 3, 14)
MARCH = np.datetime64("2026-03-20", "D")


def deals(values, probs, closes=None) -> DealArrays:
    values = np.asarray(values, dtype=float)
    if closes is None:
        closes = np.full(len(values), MARCH)
    return DealArrays(values, np.asarray(probs, dtype=float), np.asarray(closes, "datetime64[D]"))


def month0(values, probs, **kw) -> MonthForecast:
    return compute_forecast(deals(values, probs), AS_OF, months=1, **kw)[0]


def quantiles(f: MonthForecast) -> tuple[float, float, float]:
    return f.p10, f.p50, f.p90


def exact_distribution(values, probs) -> tuple[np.ndarray, np.ndarray]:
    """Every outcome of the deals and its probability, by brute force (sorted by value)."""
    outcomes, weights = [], []
    for won in itertools.product((0, 1), repeat=len(values)):
        outcomes.append(sum(v for v, w in zip(values, won, strict=True) if w))
        weights.append(math.prod(p if w else 1 - p for p, w in zip(probs, won, strict=True)))
    order = np.argsort(outcomes, kind="stable")
    return np.array(outcomes)[order], np.array(weights)[order]


def inverse_cdf(outcomes, weights, q) -> float:
    cdf = np.cumsum(weights)
    return float(outcomes[np.argmax(cdf >= q - 1e-12)])


def reference_simulation(values, probs, draws=20_000, seed=99) -> np.ndarray:
    """An independent Monte-Carlo of the won value (not the module's code)."""
    rng = np.random.default_rng(seed)
    values, probs = np.asarray(values), np.asarray(probs)
    out = []
    for _ in range(draws // 500):
        out.append((rng.random((500, len(values))) < probs) @ values)
    return np.quantile(np.concatenate(out), [0.1, 0.5, 0.9], method="inverted_cdf")


# --- hand-computable cases ----------------------------------------------------------------


def test_one_deal_at_half():
    f = month0([1000], [0.5])
    assert quantiles(f) == (0, 0, 1000)
    assert (f.deal_count, f.pipeline, f.weighted, f.expected_wins) == (1, 1000, 500, 0.5)
    assert f.method == "exact"


def test_two_equal_chances():
    # outcomes 0, 100, 300, 400 with 1/4 each: CDF 0.25, 0.5, 0.75, 1
    f = month0([100, 300], [0.5, 0.5])
    assert quantiles(f) == (0, 100, 400)
    assert f.weighted == 200


def test_two_unequal_chances():
    # P(0)=.24, P(100)=.06, P(300)=.56, P(400)=.14: CDF .24, .30, .86, 1
    f = month0([100, 300], [0.2, 0.7])
    assert quantiles(f) == (0, 300, 400)
    assert f.weighted == pytest.approx(230)
    assert f.expected_wins == pytest.approx(0.9)


def test_certain_deals_are_every_quantile():
    f = month0([100, 250, 4000], [1, 1, 1])
    assert quantiles(f) == (4350, 4350, 4350)
    assert f.weighted == f.pipeline == 4350
    assert f.method == "deterministic"


def test_hopeless_deals_are_zero():
    f = month0([100, 250], [0, 0])
    assert quantiles(f) == (0, 0, 0)
    assert (f.weighted, f.expected_wins, f.pipeline, f.deal_count) == (0, 0, 350, 2)


def test_certain_deals_shift_the_random_ones():
    f = month0([1000, 500], [1, 0.5])
    assert quantiles(f) == (1000, 1000, 1500)


def test_empty_months_are_zero():
    out = compute_forecast(deals([], []), AS_OF, months=3)
    assert [f.month for f in out] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    for f in out:
        assert (f.deal_count, f.pipeline, f.weighted, f.expected_wins) == (0, 0, 0, 0)
        assert quantiles(f) == (0, 0, 0)
        assert f.method == "deterministic"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0.01, 0.99)), min_size=1, max_size=10))
def test_exact_method_matches_brute_force(pairs):
    values, probs = zip(*pairs, strict=True)
    f = month0(values, probs)
    outcomes, weights = exact_distribution(values, probs)
    expected = [inverse_cdf(outcomes, weights, q) for q in (0.1, 0.5, 0.9)]
    assert f.method == "exact"
    assert quantiles(f) == pytest.approx(expected)


# --- simulation ---------------------------------------------------------------------------


def test_simulation_quantiles_sit_at_the_right_probability_level():
    """Forced simulation of 12 deals: the exact CDF around each simulated quantile brackets q
    within the simulation's error (20,000 draws: standard error <= 0.0035)."""
    rng = np.random.default_rng(5)
    values = rng.integers(1_000, 50_000, 12).astype(float)
    probs = rng.uniform(0.05, 0.95, 12)
    f = month0(values, probs, exact_max=0)
    assert f.method == "simulation"
    outcomes, weights = exact_distribution(values, probs)
    for q, got in zip((0.1, 0.5, 0.9), quantiles(f), strict=True):
        below = weights[outcomes < got - 1e-6].sum()
        at_or_below = weights[outcomes <= got + 1e-6].sum()
        assert below <= q + 0.015
        assert at_or_below >= q - 0.015


def test_same_seed_same_figures():
    rng = np.random.default_rng(1)
    d = deals(rng.lognormal(10, 1, 300), rng.uniform(0, 1, 300))
    a = compute_forecast(d, AS_OF, months=1, seed=7)
    b = compute_forecast(d, AS_OF, months=1, seed=7)
    c = compute_forecast(d, AS_OF, months=1, seed=8)
    assert a[0].method == "simulation"
    assert a == b
    assert quantiles(c[0]) != quantiles(a[0])  # a different seed draws differently ...
    assert c[0].p50 == pytest.approx(a[0].p50, rel=0.02)  # ... with the same answer


def test_a_months_figures_do_not_depend_on_other_months():
    rng = np.random.default_rng(2)
    v, p = rng.lognormal(10, 1, 200), rng.uniform(0, 1, 200)
    alone = compute_forecast(deals(v, p), AS_OF, months=2)
    closes = np.concatenate([np.full(200, MARCH), np.full(150, np.datetime64("2026-04-02"))])
    more = deals(
        np.concatenate([v, rng.lognormal(10, 1, 150)]),
        np.concatenate([p, rng.uniform(0, 1, 150)]),
        closes,
    )
    together = compute_forecast(more, AS_OF, months=2)
    assert together[0] == alone[0]
    assert together[1].deal_count == 150


# --- large months: moment matching --------------------------------------------------------


def test_cornish_fisher_close_to_a_big_simulation():
    rng = np.random.default_rng(3)
    values = rng.uniform(5_000, 50_000, 5_000)
    probs = rng.beta(2, 5, 5_000)  # skewed towards losing
    f = month0(values, probs)
    assert f.method == "cornish_fisher"
    reference = reference_simulation(values, probs)
    assert quantiles(f) == pytest.approx(tuple(reference), rel=0.02)
    assert quantiles(f) == pytest.approx(tuple(reference), rel=0.005)  # in fact much closer


def test_dominant_deals_are_simulated_not_expanded():
    """A whale worth almost half the month's pipeline: the won value is bimodal, which a
    four-moment expansion cannot represent; the hybrid gets it right."""
    rng = np.random.default_rng(4)
    values = np.append(rng.lognormal(9.5, 1.0, 5_000), 5e7)
    probs = np.append(rng.uniform(0.02, 0.6, 5_000), 0.3)
    f = month0(values, probs)
    assert f.method == "hybrid"
    reference = reference_simulation(values, probs)
    assert quantiles(f) == pytest.approx(tuple(reference), rel=0.02)
    assert f.p90 > 5e7 > f.p50  # won the whale only in the top 30 %


def test_heavy_tailed_values_close_to_a_big_simulation():
    rng = np.random.default_rng(6)
    values = (rng.pareto(1.5, 5_000) + 1) * 5_000
    probs = rng.uniform(0.005, 0.035, 5_000)  # few wins expected: strongly skewed
    f = month0(values, probs)
    assert f.method in ("cornish_fisher", "hybrid")
    reference = reference_simulation(values, probs)
    assert quantiles(f) == pytest.approx(tuple(reference), rel=0.02)


# --- properties over every method --------------------------------------------------------

deal_lists = st.lists(
    st.tuples(
        st.just(0.0) | st.floats(0.01, 1e7),  # money: zero or at least a cent
        st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
    ),
    min_size=0,
    max_size=40,
)
# thresholds that send the same small inputs through each method
methods = st.sampled_from(
    [
        {},  # exact up to 16 random deals, simulation above
        {"exact_max": 0},  # simulation
        {"exact_max": 0, "simulate_max": 0},  # cornish_fisher / hybrid
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deal_lists, methods)
def test_figures_are_ordered_and_bounded(pairs, kw):
    values = [v for v, _ in pairs]
    probs = [p for _, p in pairs]
    f = month0(values, probs, simulations=2_000, **kw)
    total = math.fsum(values)
    assert f.deal_count == len(pairs)
    assert f.pipeline == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert f.weighted == pytest.approx(math.fsum(v * p for v, p in pairs), rel=1e-9, abs=1e-6)
    assert f.expected_wins == pytest.approx(math.fsum(probs), rel=1e-9, abs=1e-9)
    assert 0 <= f.p10 <= f.p50 <= f.p90 <= f.pipeline
    sure = math.fsum(v for v, p in pairs if p == 1.0)
    assert f.p10 >= sure * (1 - 1e-12)  # a certain win is in every outcome
    assert f.weighted <= f.pipeline * (1 + 1e-12)
    assert f.expected_wins <= f.deal_count


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deal_lists, methods, st.sampled_from([0.25, 3.0, 10.0, 1e3]))
def test_scaling_values_scales_every_figure(pairs, kw, k):
    values = np.array([v for v, _ in pairs], dtype=float)
    probs = np.array([p for _, p in pairs], dtype=float)
    a = month0(values, probs, simulations=2_000, **kw)
    b = month0(values * k, probs, simulations=2_000, **kw)
    assert b.method == a.method
    assert b.deal_count == a.deal_count
    assert b.expected_wins == pytest.approx(a.expected_wins, rel=1e-12, abs=1e-12)
    for name in ("pipeline", "weighted", "p10", "p50", "p90"):
        assert getattr(b, name) == pytest.approx(k * getattr(a, name), rel=1e-9, abs=1e-6), name


# --- months, overdue deals, missing data ---------------------------------------------------


def mixed() -> DealArrays:
    closes = np.array(
        [
            "2026-03-01",  # month 0
            "2026-03-31",  # month 0
            "2026-01-15",  # overdue
            "2025-06-30",  # overdue
            "2026-05-02",  # month 2
            "2026-09-01",  # beyond a 6-month horizon (Mar..Aug)
            "NaT",  # no date
        ],
        dtype="datetime64[D]",
    )
    return DealArrays(
        np.array([100, 200, 400, 800, 1600, 3200, 6400], dtype=float),
        np.array([1, 1, 1, 1, 1, 1, 1], dtype=float),
        closes,
    )


def test_overdue_deals_fold_into_the_as_of_month():
    out = compute_forecast(mixed(), AS_OF)
    assert [f.month for f in out] == [date(2026, m, 1) for m in range(3, 9)]
    assert [f.deal_count for f in out] == [4, 0, 1, 0, 0, 0]
    assert [f.pipeline for f in out] == [1500, 0, 1600, 0, 0, 0]
    cov = forecast_coverage(mixed(), AS_OF)
    assert cov.model_dump() == {
        "total": 7,
        "included": 5,
        "no_close_date": 1,
        "overdue": 2,
        "beyond_horizon": 1,
        "no_amount": 0,
        "no_probability": 0,
    }


def test_overdue_deals_can_be_excluded():
    out = compute_forecast(mixed(), AS_OF, overdue="exclude")
    assert [f.deal_count for f in out] == [2, 0, 1, 0, 0, 0]
    assert out[0].pipeline == 300
    cov = forecast_coverage(mixed(), AS_OF, overdue="exclude")
    assert (cov.included, cov.overdue) == (3, 2)


def test_horizon_is_a_parameter():
    out = compute_forecast(mixed(), AS_OF, months=7)
    assert out[-1].month == date(2026, 9, 1)
    assert out[-1].pipeline == 3200


def test_missing_amount_and_probability():
    d = DealArrays(
        np.array([np.nan, 1000.0, 500.0]),
        np.array([0.5, np.nan, 0.5]),
        np.full(3, MARCH),
    )
    f = compute_forecast(d, AS_OF, months=1)[0]
    assert f.deal_count == 3
    assert f.pipeline == 1500  # no amount counts as 0
    assert f.weighted == 250  # no probability counts as 0
    assert f.expected_wins == 1.0
    assert quantiles(f) == (0, 0, 500)
    cov = forecast_coverage(d, AS_OF, months=1)
    assert (cov.no_amount, cov.no_probability) == (1, 1)


def test_month_index_accepted_instead_of_dates():
    d = mixed()
    as_index = DealArrays(d.value, d.probability, d.close_month.copy())
    assert compute_forecast(as_index, AS_OF) == compute_forecast(d, AS_OF)
    assert d.close_month[-1] == MISSING_MONTH


def test_from_rows_reads_database_rows():
    rows = [
        {
            "amount": Decimal("1000.50"),
            "close_probability": Decimal("50.00"),
            "expected_close_date": date(2026, 3, 3),
        },
        {
            "amount": None,
            "close_probability": Decimal("20"),
            "expected_close_date": date(2026, 4, 30),
        },
        {"amount": Decimal("10"), "close_probability": None, "expected_close_date": None},
    ]
    d = from_rows(rows)
    assert d.value[0] == 1000.5 and math.isnan(d.value[1])
    assert d.probability[0] == 0.5 and math.isnan(d.probability[2])
    assert list(d.close_month[:2]) == [month_index(date(2026, 3, 1)), month_index(date(2026, 4, 1))]
    assert d.close_month[2] == MISSING_MONTH
    out = compute_forecast(d, AS_OF, months=2)
    assert out[0].weighted == pytest.approx(500.25)
    assert out[1].deal_count == 1
    assert len(from_rows([])) == 0


VALUES = r"^deal values must be finite and >= 0 \(NaN for unknown\)$"
PROBABILITIES = r"^probabilities must be in \[0, 1\] \(NaN for unscored\)$"


@pytest.mark.parametrize(
    ("value", "prob", "close", "message"),
    [
        ([-1.0], [0.5], ["2026-03-01"], VALUES),
        ([np.inf], [0.5], ["2026-03-01"], VALUES),
        ([1.0], [1.5], ["2026-03-01"], PROBABILITIES),
        ([1.0], [-0.1], ["2026-03-01"], PROBABILITIES),
        (
            [1.0, 2.0],
            [0.5],
            ["2026-03-01"],
            r"^column lengths differ: value 2, probability 1, close_month 1$",
        ),
        (
            [[1.0]],
            [[0.5]],
            [["2026-03-01"]],
            r"^value, probability and close_month must be 1-dimensional$",
        ),
    ],
)
def test_bad_input_is_rejected(value, prob, close, message):
    with pytest.raises(ValueError, match=message):
        DealArrays(np.array(value), np.array(prob), np.array(close, dtype="datetime64[D]"))


def test_bad_close_dtype_and_arguments_are_rejected():
    dtype = r"^close_month must be datetime64 or integer, not float64$"
    with pytest.raises(TypeError, match=dtype):
        DealArrays(np.array([1.0]), np.array([0.5]), np.array([1.5]))
    with pytest.raises(ValueError, match=r"^months must be >= 1$"):
        compute_forecast(mixed(), AS_OF, months=0)
    with pytest.raises(ValueError, match=r"^overdue must be 'fold' or 'exclude'$"):
        compute_forecast(mixed(), AS_OF, overdue="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^simulations must be >= 1$"):
        compute_forecast(mixed(), AS_OF, simulations=0)


@given(st.dates(date(1970, 1, 1), date(2200, 12, 31)))
def test_month_index_round_trip(d):
    assert month_start(month_index(d)) == d.replace(day=1)
    assert month_index(np.datetime64(d, "D")) == month_index(d)


# --- the published model -----------------------------------------------------------------


def test_month_forecast_is_a_documented_strict_contract():
    schema = MonthForecast.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())
    f = month0([1000], [0.5])
    assert MonthForecast.model_validate_json(f.model_dump_json()) == f
    with pytest.raises(
        ValidationError,
        match=r"^1 validation error for \w+\nextra\n  Extra inputs are not permitted",
    ):
        MonthForecast.model_validate({**f.model_dump(), "extra": 1})
