"""``revintel backtest`` on the public CRM export: the baselines and actuals agree with sums
taken straight from the CSV, nothing after a cut changes what the cut predicts, and the
learned model does better than the heuristic it replaces."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from typer.testing import CliRunner

from schemas.deal_events import DealEventAdapter
from worker.backtest.replay import Replay
from worker.backtest.run import Backtest, cuts_between, run_backtest
from worker.cli import app
from worker.engine import default_framework
from worker.testdata.crm_export import export_events, won_revenue_by_month


@pytest.fixture(scope="module")
def events(crm_export_dir):
    return export_events(crm_export_dir)


@pytest.fixture(scope="module")
def report(events):
    cuts = cuts_between(date(2017, 4, 1), date(2017, 12, 1))
    return run_backtest(Replay(events), cuts, score_from=date(2017, 6, 1))


def test_actuals_and_baselines_are_the_csv_sums(report, crm_export_dir):
    won = {k: float(v) for k, v in won_revenue_by_month(crm_export_dir).items()}
    for r in report.cuts:
        month = f"{r.cut:%Y-%m}"
        assert r.actual == pytest.approx(won[month])
        prev = _shift(r.cut, -1)
        if prev in won:
            assert r.baselines["last_month"] == pytest.approx(won[prev])
        q = _shift(r.cut, -3)
        if q in won:
            assert r.baselines["same_month_last_quarter"] == pytest.approx(won[q])
            three = [_shift(r.cut, -i) for i in (1, 2, 3)]
            assert r.baselines["trailing_3"] == pytest.approx(sum(won[m] for m in three) / 3)
        else:
            assert r.baselines["same_month_last_quarter"] is None


def _shift(cut: datetime, months: int) -> str:
    i = cut.year * 12 + cut.month - 1 + months
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def test_the_learned_model_beats_the_heuristic_it_replaces(report):
    m, h = report.close_model, report.close_heuristic
    assert m.cases == h.cases == 11_754  # deals open at a cut that closed later
    assert m.brier < h.brier and m.calibration_error < h.calibration_error
    assert m.calibration_error < 0.1
    assert report.forecast_mape < report.baseline_mape["before"]
    assert report.forecast_mape < report.baseline_mape["trailing_3"]
    assert 0.5 <= report.coverage <= 1.0


def test_nothing_after_the_cut_changes_what_the_cut_predicts(events):
    cut = datetime(2017, 8, 1, tzinfo=UTC)
    swap = {"deal.closed_won": "deal.closed_lost", "deal.closed_lost": "deal.closed_won"}
    future = []
    for e in events:
        if e.time >= cut and e.type in swap:
            # every later outcome reversed, its amount changed
            e = DealEventAdapter.validate_python(
                {**e.model_dump(), "type": swap[e.type], "data": {"amount": 1}}
            )
        future.append(e)
    fw = default_framework()
    a = Backtest(Replay(events), fw).run_cut(cut)
    b = Backtest(Replay(future), fw).run_cut(cut)
    assert (a.forecast, a.p10, a.p90, a.pipeline, a.new_business) == (
        b.forecast,
        b.p10,
        b.p90,
        b.pipeline,
        b.new_business,
    )
    assert a.actual != b.actual  # the outcome did change
    assert (a.close_model == b.close_model).all()


def test_the_command_prints_cuts_and_figures(crm_export_dir):
    result = CliRunner().invoke(
        app, ["backtest", str(crm_export_dir), "--from", "2017-05", "--to", "2017-07", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [c["cut"][:10] for c in out["cuts"]] == ["2017-05-01", "2017-06-01", "2017-07-01"]
    assert out["scored_from"] == "2017-07-01"
    assert out["forecast"]["baseline_mape"]["same_month_last_quarter"] is not None
    assert out["close_probability"]["learned"]["cases"] > 1000


def test_bad_months_are_refused(crm_export_dir):
    result = CliRunner().invoke(app, ["backtest", str(crm_export_dir), "--from", "2017/05"])
    assert result.exit_code == 2
    assert "is not a month" in result.output
