"""worker/dashboard.py without services: the rich rendering and the PNG chart."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rich.console import Console

from worker.forecast.dashboard import (
    DashboardData,
    DashboardMonth,
    Kpis,
    StageRow,
    WonMonth,
    _short_money,
    chart_figure,
    render,
    write_chart,
)
from worker.forecast.maths import compute_forecast, from_rows
from worker.forecast.runs import to_published

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def data(**overrides) -> DashboardData:
    fields = {
        "as_of": date(2026, 3, 14),
        "as_of_source": "data",
        "data_as_of": datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
        "kpis": Kpis(
            open_pipeline=Decimal("1234567.89"),
            open_deals=42,
            avg_deal_size=Decimal("29394.47"),
            weighted_90d=Decimal("456789.01"),
            at_risk=3,
        ),
        "stages": [
            StageRow(
                stage="prospecting",
                deal_count=30,
                total_value=Decimal("900000"),
                weighted_value=Decimal("90000"),
                avg_deal_size=Decimal("30000"),
                avg_days_in_stage=12.25,
            ),
            StageRow(
                stage="negotiation",
                deal_count=0,
                total_value=Decimal(0),
                weighted_value=Decimal(0),
                avg_deal_size=None,
                avg_days_in_stage=None,
            ),
        ],
        "forecast": [
            DashboardMonth(
                month=date(2026, 3, 1),
                deal_count=7,
                pipeline=250_000,
                weighted=120_000,
                p10=80_000,
                p50=118_000,
                p90=160_000,
                expected_wins=3.4,
                method="exact",
            ),
            DashboardMonth(
                month=date(2026, 4, 1),
                deal_count=2,
                pipeline=40_000,
                weighted=10_000,
                p10=0,
                p50=0,
                p90=30_000,
                expected_wins=0.5,
            ),
        ],
        "forecast_source": "computed",
    }
    return DashboardData(**{**fields, **overrides})


def text_of(renderable) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_render_shows_kpis_stages_and_forecast():
    out = text_of(render(data()))
    assert "Revenue dashboard as of 2026-03-14 (newest event 2026-03-14 09:30 UTC)" in out
    for label, value in (
        ("Open pipeline", "1,234,568"),
        ("Open deals", "42"),
        ("Avg deal size", "29,394"),
        ("Weighted, next 90 days", "456,789"),
        ("At-risk deals", "3"),
    ):
        assert label in out and value in out
    lines = out.splitlines()
    prospecting = next(line for line in lines if line.strip().startswith("prospecting"))
    assert prospecting.split() == ["prospecting", "30", "900,000", "90,000", "30,000", "12.2"]
    negotiation = next(line for line in lines if line.strip().startswith("negotiation"))
    assert negotiation.split() == ["negotiation", "0", "0", "0", "-", "-"]
    march = next(line for line in lines if line.strip().startswith("Mar 2026"))
    assert march.split() == [
        "Mar", "2026", "7", "250,000", "120,000", "80,000", "118,000", "160,000", "3.4",
    ]  # fmt: skip
    total = next(line for line in lines if line.strip().startswith("total"))
    assert total.split() == ["total", "9", "290,000", "130,000", "3.9"]
    assert "Forecast computed now" in out


def test_render_names_the_stored_run():
    run_id = uuid.UUID(int=5)
    out = text_of(
        render(
            data(
                forecast_source="snapshot",
                forecast_run_id=run_id,
                forecast_run_started_at=datetime(2026, 3, 14, 10, 0, tzinfo=UTC),
                as_of_source="explicit",
            )
        )
    )
    assert f"Forecast from run {run_id} (2026-03-14 10:00 UTC)" in out
    assert "newest event" not in out  # explicit as-of: the data's time is not the as-of


def test_render_without_data():
    empty = data(
        as_of=None,
        data_as_of=None,
        kpis=Kpis(
            open_pipeline=Decimal(0), open_deals=0, avg_deal_size=None, weighted_90d=Decimal(0),
            at_risk=0,
        ),
        forecast=[],
        forecast_source="none",
    )  # fmt: skip
    out = text_of(render(empty))
    assert "no deals yet" in out
    assert "No forecast" in out


def assert_png(path) -> None:
    blob = path.read_bytes()
    assert blob.startswith(PNG_SIGNATURE)
    assert len(blob) > 10_000  # a drawn chart, not an empty canvas
    width, height = int.from_bytes(blob[16:20], "big"), int.from_bytes(blob[20:24], "big")
    assert (width, height) == (1100, 572)  # 10 x 5.2 inches at 110 dpi


def test_chart_of_dashboard_data(tmp_path):
    path = write_chart(data(), tmp_path / "sub" / "chart.png")
    assert path == tmp_path / "sub" / "chart.png"
    assert_png(path)


def test_chart_of_a_published_forecast_and_of_months(tmp_path):
    rows = [
        {"amount": 1000 * (i + 1), "close_probability": 10 * (i % 10), "expected_close_date": d}
        for i, d in enumerate(date(2026, m, 10) for m in (3, 3, 4, 5, 5, 5, 6, 8))
    ]
    deals = from_rows(rows)
    months = compute_forecast(deals, date(2026, 3, 14), 6)
    from worker.forecast.maths import forecast_coverage

    f = to_published(
        months,
        forecast_coverage(deals, date(2026, 3, 14), 6),
        run_id=uuid.uuid4(),
        as_of=date(2026, 3, 14),
        as_of_source="explicit",
        generated_from=None,
        kind="manual",
        framework_version=None,
        seed=0,
    )
    assert_png(write_chart(f, tmp_path / "published.png"))
    assert_png(write_chart(months, tmp_path / "months.png", title="Six months"))


def test_chart_of_nothing_is_still_a_png(tmp_path):
    path = write_chart([], tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (950, "950"), (1_500, "1.5k"), (2_000_000, "2M"), (3_250_000_000, "3.2B")],
)
def test_axis_labels_are_short(value, text):
    assert _short_money(value) == text


def bar_labels(ax) -> dict[str, list]:
    """The bars of each legend entry: label -> its rectangles."""
    return {c.get_label(): list(c) for c in ax.containers if hasattr(c, "patches")}


def test_chart_names_the_currency_on_its_value_axis():
    ax = chart_figure(data(currency="USD")).axes[0]
    assert ax.get_ylabel() == "Value (USD)"
    assert ax.yaxis.get_major_formatter()(1_500_000, 0) == "$1.5M"
    other = chart_figure(data().forecast, currency="CHF").axes[0]
    assert other.get_ylabel() == "Value (CHF)"
    assert other.yaxis.get_major_formatter()(2_000, 0) == "2k CHF"


def test_chart_shows_the_actual_won_value_beside_the_forecast_for_past_months():
    won = [
        WonMonth(month=date(2026, 1, 1), deal_count=3, won=50_000),
        WonMonth(month=date(2026, 2, 1), deal_count=4, won=70_000),
        WonMonth(month=date(2026, 3, 1), deal_count=1, won=20_000),  # March so far
    ]
    ax = chart_figure(data(won=won, currency="USD")).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Jan 2026",
        "Feb 2026",
        "Mar 2026",
        "Apr 2026",
    ]
    bars = bar_labels(ax)
    actual = bars["Won (actual)"]
    assert [b.get_height() for b in actual] == [50_000, 70_000, 20_000]
    # past months: the won bar on the month; March: beside (left of) its forecast bars
    centres = [b.get_x() + b.get_width() / 2 for b in actual]
    assert centres[:2] == pytest.approx([0, 1])
    march_pipeline = bars["Pipeline"][0]
    assert centres[2] < march_pipeline.get_x() and centres[2] == pytest.approx(2 - 0.27)
    legend = [t.get_text() for t in ax.figure.legends[0].get_texts()]
    assert "Won (actual)" in legend and "Pipeline" in legend
