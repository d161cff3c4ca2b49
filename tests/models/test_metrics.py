"""The figures the backtest reports, against values worked out by hand."""

import math

import pytest

from worker.models import metrics


def test_brier_base_rate_and_log_loss_by_hand():
    s = metrics.score_probabilities([0.9, 0.2, 0.6, 0.5], [1, 0, 0, 1])
    # (0.01 + 0.04 + 0.36 + 0.25) / 4
    assert s.brier == pytest.approx(0.165)
    # rate 0.5: every case is 0.25 away squared
    assert s.base_rate_brier == pytest.approx(0.25)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.5)) / 4
    assert s.log_loss == pytest.approx(expected)
    assert (s.cases, s.positive_rate, s.mean_prediction) == (4, 0.5, pytest.approx(0.55))


def test_auc_counts_ties_as_half():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4, 0.4>0.1) = 3.5/4
    assert metrics.auc(*_arrays([0.8, 0.4, 0.4, 0.1], [1, 1, 0, 0])) == pytest.approx(0.875)
    assert metrics.auc(*_arrays([0.3, 0.6], [1, 1])) is None


def test_calibration_error_weights_bins_by_cases():
    # bin 0.1-0.2: p 0.15 x2, outcomes 0, 1 -> |0.15 - 0.5| = 0.35, 2 cases
    # bin 0.9-1.0: p 0.95 x2, outcomes 1, 1 -> |0.95 - 1| = 0.05, 2 cases
    p, y = _arrays([0.15, 0.15, 0.95, 0.95], [0, 1, 1, 1])
    assert metrics.calibration_error(p, y) == pytest.approx((0.35 * 2 + 0.05 * 2) / 4)


def test_forecast_errors_and_coverage():
    assert metrics.mape([110, 90, 5], [100, 100, 0]) == pytest.approx(0.10)  # a = 0 left out
    assert metrics.bias([110, 80], [100, 100]) == pytest.approx(-0.05)
    assert metrics.coverage([90, 90, 90], [110, 110, 95], [100, 89, 100]) == pytest.approx(1 / 3)


def _arrays(p, y):
    import numpy as np

    return np.array(p, dtype=float), np.array(y, dtype=float)
