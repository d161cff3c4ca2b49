"""The revenue dashboard: KPIs, pipeline by stage and the monthly forecast, for a terminal
(rich) or as a PNG chart (matplotlib).

:func:`load_dashboard` reads everything in one consistent snapshot (a REPEATABLE READ,
read-only transaction) into :class:`DashboardData`; :func:`render` and :func:`write_chart` are
pure functions of that data (or of a published forecast).

As-of: given, or the data's as-of date (``data_as_of_date()``), never the wall clock. An
as-of before the data's date shows the pipeline as it was: that day's daily snapshot
(``deal_snapshots``), or a clear refusal when there is none.

KPIs (open = stage not closed_won / closed_lost)
    open_pipeline   sum of the open deals' amounts (no amount: adds nothing)
    open_deals      number of open deals
    avg_deal_size   mean amount of the open deals that have one (None: none has)
    weighted_90d    sum of amount x close probability over open deals expected to close on or
                    before as_of + 90 days, overdue deals (date before as_of) included; deals
                    without an expected close date, amount or probability add nothing
    at_risk         rows of the ``at_risk_deals`` view

Pipeline by stage: ``revenue_pipeline_summary`` (ages measured at the data's as-of), or with an
explicit as-of ``pipeline_summary(as-of midnight UTC)``.

Won (actual): the won deals' amounts by close month (UTC) for the ``WON_MONTHS`` months before
the as-of month and the as-of month itself up to the as-of day: the chart shows them beside the
forecast. Currency: the deals' most common one (the sums assume one currency).

Monthly forecast: the snapshots of the latest completed forecast run *with the same as-of*
(``forecast_source = "snapshot"``; snapshots do not store the quantile method), else computed
now from the open deals and not stored (``"computed"``); ``"none"`` without an as-of.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from schemas.forecasts import ForecastPublished
from worker.forecast.runs import ForecastUnavailable, compute_months
from worker.store import forecasts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "WEIGHTED_WINDOW_DAYS",
    "DashboardData",
    "DashboardMonth",
    "Kpis",
    "StageRow",
    "WonMonth",
    "chart_figure",
    "forecast_table",
    "load_dashboard",
    "render",
    "write_chart",
]

WEIGHTED_WINDOW_DAYS = 90
WON_MONTHS = 6  # past months of actual won value on the chart

# The KPIs of a set of open deals: today's (``deals``), or a past day's (its snapshot).
_KPIS_OF = """
SELECT count(*) AS open_deals,
       coalesce(sum(amount), 0) AS open_pipeline,
       avg(amount) AS avg_deal_size,
       coalesce(sum(amount * close_probability / 100)
                FILTER (WHERE expected_close_date <= $1::date + $2::integer), 0) AS weighted,
       count(*) FILTER (WHERE health_category IN ('warning', 'critical')
                        AND amount >= (SELECT framework_param('alert_value_threshold')))
           AS at_risk
FROM {source}
"""
_KPIS = _KPIS_OF.format(source="deals WHERE stage NOT IN ('closed_won', 'closed_lost')")
_KPIS_PAST = _KPIS_OF.format(source="deal_snapshots WHERE snapshot_date = $1")
_STAGES_VIEW = """
SELECT stage, deal_count, total_value, weighted_value, avg_deal_size, avg_days_in_stage
FROM revenue_pipeline_summary ORDER BY stage_position
"""
_STAGES_AS_OF = """
SELECT stage, deal_count, total_value, weighted_value, avg_deal_size, avg_days_in_stage
FROM pipeline_summary(($1::date)::timestamp AT TIME ZONE 'UTC') ORDER BY stage_position
"""
# A past as-of reads the pipeline as it was: that day's daily snapshot.
_STAGES_PAST = """
SELECT stage, count(*) AS deal_count, coalesce(sum(amount), 0) AS total_value,
       coalesce(sum(amount * close_probability / 100), 0) AS weighted_value,
       avg(amount) AS avg_deal_size,
       avg(extract(epoch FROM taken_at - stage_entered_at) / 86400)::float AS avg_days_in_stage
FROM deal_snapshots WHERE snapshot_date = $1
GROUP BY stage ORDER BY stage_position(stage)
"""
# Won value by close month, from WON_MONTHS months before the as-of month to the as-of day.
_WON = """
SELECT date_trunc('month', closed_at AT TIME ZONE 'UTC')::date AS month,
       count(*) AS deal_count, coalesce(sum(amount), 0) AS won
FROM deals
WHERE stage = 'closed_won'
  AND closed_at >= (date_trunc('month', $1::date) - make_interval(months => $2)) AT TIME ZONE 'UTC'
  AND closed_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'
GROUP BY 1 ORDER BY 1
"""
_CURRENCY = "SELECT mode() WITHIN GROUP (ORDER BY currency) FROM deals"
_LATEST_RUN = """
SELECT run_id, started_at, overdue_deals, overdue_pipeline, overdue_weighted, overdue_p10,
       overdue_p50, overdue_p90, overdue_expected_wins
FROM forecast_runs
WHERE status = 'completed' AND as_of = $1
ORDER BY started_at DESC, run_id LIMIT 1
"""
_SNAPSHOTS = """
SELECT month, deal_count, pipeline, weighted, p10, p50, p90, expected_wins
FROM forecast_snapshots WHERE run_id = $1 ORDER BY month
"""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Kpis(_Model):
    open_pipeline: Decimal = Field(description="Sum of the open deals' amounts.")
    open_deals: int = Field(ge=0)
    avg_deal_size: Decimal | None = Field(description="Mean amount of open deals with one.")
    weighted_90d: Decimal = Field(
        description="Weighted value of open deals expected to close by as_of + 90 days "
        "(overdue included)."
    )
    at_risk: int = Field(ge=0, description="Rows of the at_risk_deals view.")


class StageRow(_Model):
    stage: str
    deal_count: int
    total_value: Decimal
    weighted_value: Decimal
    avg_deal_size: Decimal | None
    avg_days_in_stage: float | None


class DashboardOverdue(_Model):
    """A forecast line: the overdue deals (decayed), or a month (below)."""

    deal_count: int
    pipeline: float
    weighted: float
    p10: float
    p50: float
    p90: float
    expected_wins: float


class DashboardMonth(DashboardOverdue):
    month: date
    method: str | None = None


class WonMonth(_Model):
    """Actual won value of a month (close month, UTC); the as-of month up to the as-of."""

    month: date
    deal_count: int = Field(ge=0)
    won: float


class DashboardData(_Model):
    as_of: date | None = Field(description="None: no deals and no as-of given.")
    as_of_source: Literal["data", "explicit"]
    data_as_of: datetime | None = Field(description="Newest event time applied to any deal.")
    kpis: Kpis
    stages: list[StageRow]
    forecast: list[DashboardMonth]
    overdue: DashboardOverdue | None = Field(
        None, description="Open deals past their expected close date: their own line."
    )
    forecast_source: Literal["snapshot", "computed", "none"]
    forecast_run_id: UUID | None = None
    forecast_run_started_at: datetime | None = None
    won: list[WonMonth] = Field(
        default_factory=list, description="Actual won value of the recent months."
    )
    currency: str | None = Field(None, description="The deals' (most common) currency.")


# --------------------------------------------------------------------------- loading


async def load_dashboard(
    pool: asyncpg.Pool, as_of: date | None = None, *, months: int = 6, seed: int = 0
) -> DashboardData:
    """Everything the dashboard shows, read in one snapshot of the database."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        data_as_of, data_date = await conn.fetchrow("SELECT data_as_of(), data_as_of_date()")
        source: Literal["data", "explicit"] = "explicit" if as_of is not None else "data"
        as_of = as_of if as_of is not None else data_date
        past = as_of is not None and data_date is not None and as_of < data_date
        if past:
            rows = await forecasts.open_deals_on(conn, as_of)
            if rows is None:
                raise ForecastUnavailable(
                    f"{as_of} is before the data's date {data_date} and there is no daily "
                    "snapshot of the pipeline on that day"
                )
            k = await conn.fetchrow(_KPIS_PAST, as_of, WEIGHTED_WINDOW_DAYS)
            at_risk = k["at_risk"]
            stage_rows = await conn.fetch(_STAGES_PAST, as_of)
        else:
            k = await conn.fetchrow(_KPIS, as_of, WEIGHTED_WINDOW_DAYS)
            at_risk = k["at_risk"]  # the at_risk_deals view's rule
            stage_rows = await (
                conn.fetch(_STAGES_VIEW) if source == "data" else conn.fetch(_STAGES_AS_OF, as_of)
            )
        won = await _won_months(conn, as_of)
        currency = await conn.fetchval(_CURRENCY)
        forecast: list[DashboardMonth] = []
        overdue: DashboardOverdue | None = None
        forecast_source: Literal["snapshot", "computed", "none"] = "none"
        run = await conn.fetchrow(_LATEST_RUN, as_of) if as_of is not None else None
        if run is not None:
            forecast_source = "snapshot"
            forecast = [
                DashboardMonth(
                    month=r["month"],
                    deal_count=r["deal_count"],
                    **{f: float(r[f]) for f in ("pipeline", "weighted", "p10", "p50", "p90")},
                    expected_wins=float(r["expected_wins"]),
                )
                for r in await conn.fetch(_SNAPSHOTS, run["run_id"])
            ]
            if run["overdue_deals"]:
                overdue = DashboardOverdue(
                    deal_count=run["overdue_deals"],
                    **{
                        f: float(run[f"overdue_{f}"])
                        for f in ("pipeline", "weighted", "p10", "p50", "p90", "expected_wins")
                    },
                )
        elif as_of is not None:
            if not past:
                rows = await forecasts.open_deals(conn)
            # the half-life the worker synced from its framework (the SQL view's too)
            half_life = await conn.fetchval("SELECT framework_param('overdue_half_life_days')")
            computed, _, late = await asyncio.to_thread(
                compute_months, rows, as_of, months, seed, float(half_life or 30)
            )
            forecast_source = "computed"
            forecast = [
                DashboardMonth.model_validate(
                    m.model_dump(include=set(DashboardMonth.model_fields))
                )
                for m in computed
            ]
            if late is not None:
                overdue = DashboardOverdue.model_validate(
                    late.model_dump(include=set(DashboardOverdue.model_fields))
                )
    return DashboardData(
        as_of=as_of,
        as_of_source=source,
        data_as_of=data_as_of,
        kpis=Kpis(
            open_pipeline=k["open_pipeline"],
            open_deals=k["open_deals"],
            avg_deal_size=k["avg_deal_size"],
            weighted_90d=k["weighted"],
            at_risk=at_risk,
        ),
        stages=[
            StageRow(
                stage=r["stage"],
                deal_count=r["deal_count"],
                total_value=r["total_value"],
                weighted_value=r["weighted_value"],
                avg_deal_size=r["avg_deal_size"],
                avg_days_in_stage=(
                    None if r["avg_days_in_stage"] is None else float(r["avg_days_in_stage"])
                ),
            )
            for r in stage_rows
        ],
        forecast=forecast,
        overdue=overdue,
        forecast_source=forecast_source,
        forecast_run_id=run["run_id"] if run is not None else None,
        forecast_run_started_at=run["started_at"] if run is not None else None,
        won=won,
        currency=currency.strip() if currency else None,
    )


async def _won_months(conn: asyncpg.Connection, as_of: date | None) -> list[WonMonth]:
    if as_of is None:
        return []
    rows = await conn.fetch(_WON, as_of, WON_MONTHS)
    return [
        WonMonth(month=r["month"], deal_count=r["deal_count"], won=float(r["won"])) for r in rows
    ]


# --------------------------------------------------------------------------- terminal


def _money(x: Decimal | float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def forecast_table(
    months: Sequence[Any],
    title: str = "Forecast by expected close month",
    overdue: Any = None,
) -> Table:
    """A table of forecast months (anything with month, deal_count, pipeline, weighted, p10,
    p50, p90, expected_wins), and the overdue line first when there is one (decayed
    probabilities; not in the total, which is the months')."""
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("month")
    for col in ("deals", "pipeline", "weighted", "P10", "P50", "P90", "exp. wins"):
        table.add_column(col, justify="right")
    lines = [("overdue", overdue)] if overdue is not None and overdue.deal_count else []
    for label, m in [*lines, *((f"{m.month:%b %Y}", m) for m in months)]:
        table.add_row(
            label,
            str(m.deal_count),
            _money(m.pipeline),
            _money(m.weighted),
            _money(m.p10),
            _money(m.p50),
            _money(m.p90),
            f"{m.expected_wins:,.1f}",
        )
    if months:
        table.add_section()
        table.add_row(
            "total",
            str(sum(m.deal_count for m in months)),
            _money(sum(m.pipeline for m in months)),
            _money(sum(m.weighted for m in months)),
            "",
            "",
            "",
            f"{sum(m.expected_wins for m in months):,.1f}",
            style="bold",
        )
    return table


def render(data: DashboardData) -> RenderableType:
    """The dashboard as rich renderables (print with ``Console().print``)."""
    if data.as_of is None:
        header = "Revenue dashboard: no deals yet"
    else:
        header = f"Revenue dashboard as of {data.as_of:%Y-%m-%d}"
        if data.as_of_source == "data" and data.data_as_of is not None:
            header += f" (newest event {data.data_as_of:%Y-%m-%d %H:%M} UTC)"
    k = data.kpis
    kpis = Table.grid(padding=(0, 3))
    labels = (
        "Open pipeline",
        "Open deals",
        "Avg deal size",
        f"Weighted, next {WEIGHTED_WINDOW_DAYS} days",
        "At-risk deals",
    )
    for label in labels:
        kpis.add_column(label, justify="right")
    kpis.add_row(*(Text(label, style="dim") for label in labels))
    kpis.add_row(
        Text(_money(k.open_pipeline), style="bold"),
        Text(f"{k.open_deals:,}", style="bold"),
        Text(_money(k.avg_deal_size), style="bold"),
        Text(_money(k.weighted_90d), style="bold"),
        Text(f"{k.at_risk:,}", style="bold red" if k.at_risk else "bold green"),
    )

    stages = Table(title="Pipeline by stage", box=box.SIMPLE_HEAVY, title_justify="left")
    stages.add_column("stage")
    for col in ("deals", "value", "weighted", "avg size", "avg days in stage"):
        stages.add_column(col, justify="right")
    for s in data.stages:
        stages.add_row(
            s.stage,
            str(s.deal_count),
            _money(s.total_value),
            _money(s.weighted_value),
            _money(s.avg_deal_size),
            "-" if s.avg_days_in_stage is None else f"{s.avg_days_in_stage:,.1f}",
        )

    parts: list[RenderableType] = [
        Text(header, style="bold"),
        Panel(kpis, title="KPIs", title_align="left", expand=False),
        stages,
    ]
    if data.forecast_source == "none":
        parts.append(Text("No forecast: no as-of date.", style="dim"))
    else:
        if data.forecast_source == "snapshot" and data.forecast_run_started_at is not None:
            note = (
                f"Forecast from run {data.forecast_run_id} "
                f"({data.forecast_run_started_at:%Y-%m-%d %H:%M} UTC)"
            )
        else:
            note = "Forecast computed now (no stored run for this as-of)"
        parts.append(forecast_table(data.forecast, overdue=data.overdue))
        parts.append(Text(note, style="dim"))
    return Group(*parts)


# --------------------------------------------------------------------------- chart


def _short_money(x: float, _pos: object = None) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.1f}".rstrip("0").rstrip(".") + suffix
    return f"{x:,.0f}"


_SYMBOLS = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3", "JPY": "\u00a5"}


def _axis_money(currency: str | None):
    """Tick labels with the currency's symbol ($1.5M) or code (1.5M CHF)."""
    symbol = _SYMBOLS.get(currency or "")

    def label(x: float, _pos: object = None) -> str:
        short = _short_money(x)
        if symbol:
            return f"-{symbol}{short[1:]}" if short.startswith("-") else f"{symbol}{short}"
        return f"{short} {currency}" if currency else short

    return label


def _chart_source(
    source: DashboardData | ForecastPublished | Sequence[Any],
) -> tuple[date | None, list[Any], list[WonMonth], str | None]:
    """(as-of, forecast months, won months, currency) of what a chart is drawn from."""
    if isinstance(source, DashboardData):
        return source.as_of, list(source.forecast), list(source.won), source.currency
    if isinstance(source, ForecastPublished):
        return source.as_of, list(source.months), [], None
    return None, list(source), [], None


def chart_figure(
    source: DashboardData | ForecastPublished | Sequence[Any],
    *,
    title: str | None = None,
    currency: str | None = None,
) -> Figure:
    """The chart as a matplotlib Figure: per month, the pipeline and weighted bars with the
    P10-P90 whisker of the won value (P50 marked) for forecast months, and the actual won
    value (a green bar) for past months and the as-of month so far. The value axis names the
    currency (``currency`` or the dashboard's)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    as_of, months, won, found = _chart_source(source)
    currency = currency or found
    if title is None:
        title = "Revenue: won by close month and forecast by expected close month"
        if as_of is not None:
            title += f" (as of {as_of:%Y-%m-%d})"
    axis = sorted({m.month for m in months} | {w.month for w in won})
    slot = {month: i for i, month in enumerate(axis)}
    fig = Figure(figsize=(10, 5.2), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    width = 0.27
    tops = [1.0]
    if won:
        # a month with a forecast has its won bar at its left; a past month, centred
        xs = [slot[w.month] - (width if _has(months, w.month) else 0) for w in won]
        ax.bar(xs, [w.won for w in won], width, color="#3c9a5f", label="Won (actual)")
        tops += [w.won for w in won]
    if months:
        tops += _forecast_bars(ax, months, [slot[m.month] for m in months], width)
    ax.set_xticks(range(len(axis)), [f"{m:%b %Y}" for m in axis])
    ax.set_ylim(0, max(tops) * 1.12)
    ax.yaxis.set_major_formatter(FuncFormatter(_axis_money(currency)))
    ax.set_ylabel(f"Value ({currency})" if currency else "Value (deal currency)")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.grid(axis="y", color="#e3e3e3", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if axis:
        fig.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=9)
    else:
        ax.text(0.5, 0.5, "no forecast", transform=ax.transAxes, ha="center", color="#888888")
    return fig


def _has(months: Sequence[Any], month: date) -> bool:
    return any(m.month == month for m in months)


def _forecast_bars(ax: Any, months: Sequence[Any], xs: Sequence[float], width: float) -> list:
    """Pipeline (centre) and weighted (right) bars with the won-value whisker; their heights."""
    pipeline = [m.pipeline for m in months]
    weighted = [m.weighted for m in months]
    p10, p50, p90 = ([getattr(m, q) for m in months] for q in ("p10", "p50", "p90"))
    right = [x + width for x in xs]
    bars = ax.bar(xs, pipeline, width, color="#c9d6e8", edgecolor="#8da5c4", label="Pipeline")
    ax.bar(right, weighted, width, color="#2f6db5", label="Weighted (expected won value)")
    ax.errorbar(
        right,
        p50,
        yerr=[
            [c - lo for c, lo in zip(p50, p10, strict=True)],
            [hi - c for c, hi in zip(p50, p90, strict=True)],
        ],
        fmt="D",
        color="#222222",
        markerfacecolor="#f2b134",
        markeredgecolor="#222222",
        markersize=6,
        ecolor="#222222",
        elinewidth=1.6,
        capsize=5,
        capthick=1.6,
        label="Won value P10-P90 (diamond: P50)",
        zorder=3,
    )
    for bar, m in zip(bars, months, strict=True):
        ax.annotate(
            f"{m.deal_count} deal{'s' if m.deal_count != 1 else ''}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color="#4a5a70",
        )
    return [*pipeline, *p90]


def write_chart(
    source: DashboardData | ForecastPublished | Sequence[Any],
    path: str | Path,
    *,
    title: str | None = None,
    currency: str | None = None,
) -> Path:
    """Write :func:`chart_figure` as a PNG. ``source``: dashboard data (with the won months
    and currency), a published forecast or a sequence of forecast months."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = chart_figure(source, title=title, currency=currency)
    FigureCanvasAgg(fig)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
