"""New business: the candidate that forecast the history best is used, with its own error."""

import pytest

from worker.models.new_business import MIN_RELATIVE_SD, forecast_new_business


def test_a_quarterly_pattern_is_forecast_by_a_seasonal_candidate():
    pattern = [100.0, 300.0, 200.0]
    nb = forecast_new_business(pattern * 3, 1)
    # repeated exactly: the seasonal candidates forecast the history without error
    assert nb.method in ("seasonal_naive", "seasonal_window_average", "auto_ets")
    assert nb.mean == pytest.approx(100.0, rel=0.01)
    assert nb.sd == pytest.approx(MIN_RELATIVE_SD * nb.mean)  # no error: the floor
    assert forecast_new_business(pattern * 3, 2).mean == pytest.approx(300.0, rel=0.01)


def test_a_level_series_prefers_the_last_month_and_reports_its_error():
    nb = forecast_new_business([100.0, 110.0, 120.0, 130.0, 140.0, 150.0], 1)
    assert nb.method == "naive"  # the trend makes every seasonal candidate err more
    assert nb.mean == pytest.approx(150.0)
    errors = [
        (a - b) / b
        for a, b in zip([100, 110, 120, 130, 140], [110, 120, 130, 140, 150], strict=True)
    ]
    rms = (sum(e * e for e in errors) / len(errors)) ** 0.5
    assert nb.sd == pytest.approx(max(MIN_RELATIVE_SD, rms) * 150.0)


def test_short_and_empty_histories():
    assert forecast_new_business([], 1).mean == 0.0
    one = forecast_new_business([80.0], 1)
    assert (one.mean, one.method) == (80.0, "naive")
