"""``revintel backtest``: replay the CRM export cut by cut and print how the close probability
and the month forecast did against what happened, beside the baselines
(``worker.backtest.run``). Needs no service: it runs the worker's merge, engine, models and
forecast maths in process."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import console, fail


def _month(text: str, what: str) -> date:
    try:
        year, month = (int(x) for x in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        fail(f"{what} {text!r} is not a month (YYYY-MM)")


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:+.1%}"


def _cuts_table(report: Any) -> Table:
    table = Table(title="Forecast of each cut's month (cut to month end)")
    for name in ("cut", "model", "P10", "P50", "P90", "actual", "error", "in P10-P90"):
        table.add_column(name, justify="left" if name in ("cut", "model") else "right")
    for r in report.cuts:
        error = (r.forecast - r.actual) / r.actual if r.actual else None
        inside = "yes" if r.p10 <= r.actual <= r.p90 else "no"
        scored = "" if r.cut.date() >= report.scored_from else " (not scored)"
        table.add_row(
            f"{r.cut:%Y-%m-%d}{scored}",
            r.model,
            _money(r.p10),
            _money(r.forecast),
            _money(r.p90),
            _money(r.actual),
            _pct(error),
            inside,
        )
    return table


def _summary(report: Any) -> Table:
    table = Table(title=f"Month forecast from {report.scored_from:%Y-%m}: MAPE (lower is better)")
    table.add_column("forecast")
    table.add_column("MAPE", justify="right")
    table.add_row("learned (this model)", _frac(report.forecast_mape))
    names = {
        "last_month": "baseline: last month",
        "trailing_3": "baseline: trailing 3-month mean",
        "same_month_last_quarter": "baseline: same month last quarter",
        "stage_weighted": "baseline: stage-weighted pipeline",
        "before": "before: heuristic forecast (P50 + overdue)",
    }
    for key, label in names.items():
        table.add_row(label, _frac(report.baseline_mape.get(key)))
    return table


def _frac(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _probabilities(report: Any) -> Table:
    table = Table(title="Close probability of the deals open at each cut that closed later")
    table.add_column("figure")
    table.add_column("learned", justify="right")
    table.add_column("heuristic (before)", justify="right")
    m, h = report.close_model, report.close_heuristic
    for figure in ("brier", "base_rate_brier", "calibration_error", "auc", "log_loss"):
        cells = [getattr(s, figure) if s else None for s in (m, h)]
        table.add_row(figure, *("n/a" if c is None else f"{c:.4f}" for c in cells))
    table.add_row("mean prediction", *(f"{s.mean_prediction:.1%}" if s else "" for s in (m, h)))
    table.add_row("won (observed)", *(f"{s.positive_rate:.1%}" if s else "" for s in (m, h)))
    table.add_row("deal-cuts", *(f"{s.cases:,}" if s else "" for s in (m, h)))
    return table


def as_json(report: Any) -> dict[str, Any]:
    """The report as plain JSON (``--json``)."""
    return {
        "cuts": [
            {
                "cut": r.cut.isoformat(),
                "model": r.model,
                "p10": r.p10,
                "p50": r.forecast,
                "p90": r.p90,
                "actual": r.actual,
                "pipeline": r.pipeline,
                "new_business": r.new_business,
                "seasonal": r.seasonal,
                "model_weight": r.weight,
                "baselines": r.baselines,
            }
            for r in report.cuts
        ],
        "scored_from": report.scored_from.isoformat(),
        "forecast": {
            "mape": report.forecast_mape,
            "bias": report.forecast_bias,
            "coverage_p10_p90": report.coverage,
            "baseline_mape": report.baseline_mape,
        },
        "close_probability": {
            "learned": report.close_model.model_dump() if report.close_model else None,
            "heuristic": report.close_heuristic.model_dump() if report.close_heuristic else None,
        },
    }


def backtest_command(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="the CRM export directory (default: $REVINTEL_CRM_DATA or ../shared/data/crm)"
        ),
    ] = None,
    start: Annotated[str, typer.Option("--from", help="first cut month, YYYY-MM")] = "2017-04",
    end: Annotated[str, typer.Option("--to", help="last cut month, YYYY-MM")] = "2017-12",
    cut_day: Annotated[int, typer.Option("--cut-day", min=1, max=28, help="day of the cut")] = 1,
    score_from: Annotated[
        str | None,
        typer.Option(
            "--score-from",
            help="forecast figures over cuts from this month (default: two months after "
            "--from, so the seasonal baseline exists for every scored month)",
        ),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="boosting (default) or logistic")
    ] = "boosting",
    as_json_: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Replay the CRM export cut by cut: each cut trains only on what was known before it,
    then forecasts its month and scores its open deals; prints the figures beside the
    baselines."""
    from worker.backtest.replay import Replay
    from worker.backtest.run import cuts_between, run_backtest
    from worker.testdata.crm_export import CRM_DATA_ENV, crm_data_dir, export_events

    if model not in ("boosting", "logistic"):
        fail(f"--model {model!r}: choose boosting or logistic")
    first, last = _month(start, "--from"), _month(end, "--to")
    if last < first:
        fail("--to is before --from")
    scored = (
        _month(score_from, "--score-from")
        if score_from
        else date(first.year + (first.month + 1) // 12, (first.month + 1) % 12 + 1, 1)
    )
    if path is None:
        path = crm_data_dir()
        if path is None:
            fail(f"no CRM export found: pass its directory or set {CRM_DATA_ENV}")
    began = time.monotonic()
    try:
        replay = Replay(export_events(path))
    except ValueError as exc:
        fail(str(exc))
    report = run_backtest(
        replay,
        cuts_between(first, last, cut_day),
        score_from=scored,
        kind=model,  # type: ignore[arg-type]
    )
    if as_json_:
        console.print_json(json.dumps(as_json(report)))
        return
    console.print(_cuts_table(report))
    console.print(_summary(report))
    console.print(
        f"learned: bias {_pct(report.forecast_bias)}, P10-P90 held the actual in "
        f"{_frac(report.coverage)} of the scored months"
    )
    console.print(_probabilities(report))
    console.print(f"backtest took {time.monotonic() - began:.1f} s")


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_command)
