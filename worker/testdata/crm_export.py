"""Replay of the public "CRM Sales Opportunities" export as a deal event stream.

The export (``sales_pipeline.csv`` with ``accounts.csv``, ``products.csv`` and
``sales_teams.csv``; see its SOURCE.md) lives outside the repository, in ``../shared/data/crm``
or wherever ``REVINTEL_CRM_DATA`` points: :func:`crm_data_dir` finds it. It is never copied
into the repository.

Each opportunity becomes up to three events, all with deterministic ids so a second replay is
deduplicated by the worker:

``crm-<opportunity_id>-created`` (``deal.created``)
    name ``"<product> for <account>"`` (``"<product> - <opportunity_id>"`` when the export has
    no account, as for 1,425 open deals), company = account, owner = sales_agent, industry =
    the account's sector ("technolgy" corrected to "technology"), amount = the product's list
    price (products.csv; "GTXPro" in the pipeline is "GTX Pro" there), currency USD, stage
    ``prospecting``, expected close date = creation + 75 days.
``crm-<opportunity_id>-engaged`` (``deal.stage_changed``, when there is an engage_date)
    stage ``qualification`` (``Engaging`` in ``stage_map``), expected close date = engage date +
    45 days (the export's median engage-to-close), last activity = the engagement.
``crm-<opportunity_id>-won`` / ``-lost`` (``deal.closed_won`` / ``deal.closed_lost``)
    at the close date; a win carries ``close_value`` as the final amount. A loss carries no
    amount (the export's 0 is "nothing was sold", not the deal's value, which stays the list
    price).

Every deal gets the same expected-close rule whatever its outcome, so the events do not leak
the outcome to a model trained or backtested on them.

The export has no creation date. Rule (deterministic, from a SHA-256 of the opportunity id):
an engaged deal is created 7 to 30 days before its engage date; a prospecting deal (no engage
date) is created 0 to 59 days before the export's last date (the latest engage or close date
in the file, 2017-12-31). Events happen at a per-deal time of day between 08:00 and 17:59 UTC
(same hash), plus one second per step so a deal's events are strictly ordered even on one day.

Region (sales_teams.csv ``regional_office``) and the manager are kept on :class:`Opportunity`
but not sent: ``DealFields`` has no field for them.

Deal ids are ``crm-<opportunity_id>``; the event source is ``crm-export/sales-pipeline``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.deal_events import DealEvent, DealEventAdapter, DealStage

CRM_DATA_ENV = "REVINTEL_CRM_DATA"
SOURCE = "crm-export/sales-pipeline"
PIPELINE_FILE = "sales_pipeline.csv"
EXPORT_STAGES = ("Prospecting", "Engaging", "Won", "Lost")
DEFAULT_STAGE_MAP: Mapping[str, DealStage] = {
    "Prospecting": DealStage.prospecting,
    "Engaging": DealStage.qualification,
}
SECTOR_FIXES = {"technolgy": "technology"}
CURRENCY = "USD"
EXPECTED_CYCLE_DAYS = 45  # median engage-to-close in the export
CREATION_HORIZON_DAYS = 75  # expected close set at creation: creation + this
LEAD_DAYS = (7, 30)  # an engaged deal is created this many days before engagement
PROSPECT_WINDOW_DAYS = 60  # prospecting deals are created within this before the export's end


def crm_data_dir() -> Path | None:
    """The export's directory: ``$REVINTEL_CRM_DATA`` when set, else ``../shared/data/crm``
    next to the repository; ``None`` when it has no sales_pipeline.csv."""
    configured = os.environ.get(CRM_DATA_ENV)
    if configured:
        candidate = Path(configured).expanduser()
    else:
        candidate = Path(__file__).resolve().parents[3] / "shared" / "data" / "crm"
    return candidate if (candidate / PIPELINE_FILE).is_file() else None


@dataclass(frozen=True, slots=True)
class Opportunity:
    """One row of sales_pipeline.csv joined with its product, account and sales team."""

    opportunity_id: str
    sales_agent: str
    product: str  # products.csv spelling
    account: str | None
    deal_stage: str  # Prospecting, Engaging, Won, Lost
    engage_date: date | None
    close_date: date | None
    close_value: Decimal | None
    list_price: Decimal
    series: str
    sector: str | None
    regional_office: str | None
    manager: str | None

    @property
    def deal_id(self) -> str:
        return f"crm-{self.opportunity_id}"

    @property
    def name(self) -> str:
        if self.account:
            return f"{self.product} for {self.account}"
        return f"{self.product} - {self.opportunity_id}"


def _dir(path: Path | str) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _product_key(name: str) -> str:
    return re.sub(r"\s+", "", name).casefold()


def _date(value: str, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not a date") from exc


def load_export(path: Path | str) -> list[Opportunity]:
    """The opportunities of the export in ``path`` (its directory, or a file in it), in file
    order. Raises ``ValueError`` on a missing file or an inconsistent row."""
    root = _dir(path)
    products = {_product_key(r["product"]): r for r in _rows(root / "products.csv")}
    accounts = {r["account"]: r for r in _rows(root / "accounts.csv")}
    teams = {r["sales_agent"]: r for r in _rows(root / "sales_teams.csv")}
    opportunities = []
    for n, row in enumerate(_rows(root / PIPELINE_FILE), start=2):
        where = f"{PIPELINE_FILE} line {n}"
        product = products.get(_product_key(row["product"]))
        if product is None:
            raise ValueError(f"{where}: unknown product {row['product']!r}")
        stage = row["deal_stage"]
        if stage not in EXPORT_STAGES:
            raise ValueError(f"{where}: unknown deal_stage {stage!r}")
        close_date = _date(row["close_date"], f"{where}: close_date")
        if stage in ("Won", "Lost") and close_date is None:
            raise ValueError(f"{where}: a {stage} deal without close_date")
        account = accounts.get(row["account"], {})
        sector = account.get("sector") or None
        team = teams.get(row["sales_agent"], {})
        opportunities.append(
            Opportunity(
                opportunity_id=row["opportunity_id"],
                sales_agent=row["sales_agent"],
                product=product["product"],
                account=row["account"] or None,
                deal_stage=stage,
                engage_date=_date(row["engage_date"], f"{where}: engage_date"),
                close_date=close_date,
                close_value=Decimal(row["close_value"]) if row["close_value"] else None,
                list_price=Decimal(product["sales_price"]),
                series=product["series"],
                sector=SECTOR_FIXES.get(sector, sector) if sector else None,
                regional_office=team.get("regional_office") or None,
                manager=team.get("manager") or None,
            )
        )
    return opportunities


def _hash(opportunity_id: str, salt: str) -> int:
    digest = hashlib.sha256(f"{opportunity_id}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def export_end(opportunities: Iterable[Opportunity]) -> date:
    """The export's last date: its latest engage or close date."""
    return max(d for o in opportunities for d in (o.engage_date, o.close_date) if d is not None)


def created_date(opp: Opportunity, end: date) -> date:
    """The deterministic creation date of ``opp`` (see the module docstring)."""
    if opp.engage_date is not None:
        low, high = LEAD_DAYS
        return opp.engage_date - timedelta(
            days=low + _hash(opp.opportunity_id, "lead") % (high - low + 1)
        )
    return end - timedelta(days=_hash(opp.opportunity_id, "prospect") % PROSPECT_WINDOW_DAYS)


def _at(opp: Opportunity, day: date, step: int) -> datetime:
    minutes = _hash(opp.opportunity_id, "clock") % 600
    return datetime.combine(day, time(8), UTC) + timedelta(minutes=minutes, seconds=step)


def opportunity_events(
    opp: Opportunity, end: date, stage_map: Mapping[str, DealStage] | None = None
) -> list[DealEvent]:
    """The events of one opportunity, in time order."""
    stages = {**DEFAULT_STAGE_MAP, **(stage_map or {})}
    created_on = created_date(opp, end)

    def event(kind: str, suffix: str, at: datetime, data: dict[str, Any]) -> DealEvent:
        return DealEventAdapter.validate_python(
            {
                "id": f"{opp.deal_id}-{suffix}",
                "source": SOURCE,
                "type": f"deal.{kind}",
                "time": at,
                "subject": opp.deal_id,
                "data": data,
            }
        )

    created: dict[str, Any] = {
        "name": opp.name,
        "company": opp.account,
        "owner": opp.sales_agent,
        "industry": opp.sector,
        "amount": opp.list_price,
        "currency": CURRENCY,
        "stage": stages["Prospecting"],
        "expected_close_date": created_on + timedelta(days=CREATION_HORIZON_DAYS),
    }
    events = [event("created", "created", _at(opp, created_on, 0), created)]
    if opp.engage_date is not None:
        engaged_at = _at(opp, opp.engage_date, 1)
        engaged = {
            "stage": stages["Engaging"],
            "expected_close_date": opp.engage_date + timedelta(days=EXPECTED_CYCLE_DAYS),
            "last_activity_at": engaged_at,
        }
        events.append(event("stage_changed", "engaged", engaged_at, engaged))
    if opp.deal_stage in ("Won", "Lost") and opp.close_date is not None:
        closed_at = _at(opp, opp.close_date, 2)
        if opp.deal_stage == "Won":
            events.append(event("closed_won", "won", closed_at, {"amount": opp.close_value}))
        else:
            events.append(event("closed_lost", "lost", closed_at, {}))
    return events


def to_events(
    opportunities: Iterable[Opportunity], stage_map: Mapping[str, DealStage] | None = None
) -> list[DealEvent]:
    """All the events of ``opportunities``, sorted by (time, id)."""
    opportunities = list(opportunities)
    if not opportunities:
        return []
    end = export_end(opportunities)
    events = [e for o in opportunities for e in opportunity_events(o, end, stage_map)]
    return sorted(events, key=lambda e: (e.time, e.id))


def export_events(
    path: Path | str, stage_map: Mapping[str, DealStage] | None = None
) -> list[DealEvent]:
    """The export in ``path`` as deal events, sorted by (time, id). ``stage_map`` overrides
    the stage given to ``Prospecting`` / ``Engaging`` deals (default prospecting /
    qualification)."""
    return to_events(load_export(path), stage_map)


def won_revenue_by_month(path: Path | str) -> dict[str, Decimal]:
    """Won revenue per close month (``"2017-03"`` -> sum of close_value), computed straight
    from sales_pipeline.csv, independently of the event conversion (a check for it)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with (_dir(path) / PIPELINE_FILE).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["deal_stage"] == "Won":
                totals[row["close_date"][:7]] += Decimal(row["close_value"])
    return dict(sorted(totals.items()))
