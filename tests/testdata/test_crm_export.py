"""The CRM export replay: rules on a tiny synthetic export (always run), facts on the real
export in ../shared/data/crm or $REVINTEL_CRM_DATA (the ``crm_export_dir`` fixture of
tests/conftest.py: skipped when absent, failing under CI), and ``replay``."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from schemas.deal_events import DealEventAdapter, DealStage
from worker.cli.data import register
from worker.testdata.crm_export import (
    CRM_DATA_ENV,
    crm_data_dir,
    export_events,
    load_export,
    won_revenue_by_month,
)
from worker.testdata.seed import final_states


def _write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text.strip() + "\n")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    _write(
        tmp_path,
        "sales_pipeline.csv",
        """
opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
W1,Ann Agent,GTXPro,Acme,Won,2017-01-10,2017-03-05,4500
L1,Bob Agent,MG Special,Betatech,Lost,2017-02-01,2017-04-20,0
E1,Ann Agent,GTX Basic,,Engaging,2017-05-01,,
P1,Bob Agent,MG Special,Acme,Prospecting,,,
S1,Ann Agent,GTX Basic,Acme,Won,2017-06-01,2017-06-01,600
""",
    )
    _write(
        tmp_path,
        "products.csv",
        "product,series,sales_price\nGTX Pro,GTX,4821\nMG Special,MG,55\nGTX Basic,GTX,550",
    )
    _write(
        tmp_path,
        "accounts.csv",
        """
account,sector,year_established,revenue,employees,office_location,subsidiary_of
Acme,technolgy,1996,1100.04,2822,United States,
Betatech,medical,1986,647.18,1185,Kenya,
""",
    )
    _write(
        tmp_path,
        "sales_teams.csv",
        "sales_agent,manager,regional_office\nAnn Agent,Max Boss,Central\nBob Agent,Max Boss,East",
    )
    return tmp_path


# --------------------------------------------------------------------------- locating the data


def test_crm_data_dir_honours_the_env_var(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(CRM_DATA_ENV, str(tmp_path))
    assert crm_data_dir() is None  # no sales_pipeline.csv there
    (tmp_path / "sales_pipeline.csv").write_text("opportunity_id\n")
    assert crm_data_dir() == tmp_path
    monkeypatch.setenv(CRM_DATA_ENV, str(tmp_path / "absent"))
    assert crm_data_dir() is None


# --------------------------------------------------------------------------- rules (synthetic)


def test_load_export_joins_and_fixes_the_data(tiny: Path):
    opps = {o.opportunity_id: o for o in load_export(tiny)}
    assert opps["W1"].product == "GTX Pro"  # "GTXPro" in the pipeline
    assert opps["W1"].list_price == Decimal("4821")
    assert opps["W1"].sector == "technology"  # "technolgy"
    assert opps["W1"].regional_office == "Central"
    assert opps["E1"].account is None
    assert opps["E1"].name == "GTX Basic - E1"
    assert opps["P1"].engage_date is None
    assert load_export(tiny / "sales_pipeline.csv") == load_export(tiny)  # a file in the dir


def test_events_of_each_kind_of_deal(tiny: Path):
    events = export_events(tiny)
    by_deal = defaultdict(list)
    for e in events:
        by_deal[e.subject].append(e)
    assert [e.type for e in by_deal["crm-W1"]] == [
        "deal.created",
        "deal.stage_changed",
        "deal.closed_won",
    ]
    assert [e.id for e in by_deal["crm-W1"]] == ["crm-W1-created", "crm-W1-engaged", "crm-W1-won"]
    created, engaged, won = by_deal["crm-W1"]
    assert created.data.model_dump(exclude_none=True) == {
        "name": "GTX Pro for Acme",
        "company": "Acme",
        "owner": "Ann Agent",
        "industry": "technology",
        "amount": Decimal("4821"),
        "currency": "USD",
        "stage": DealStage.prospecting,
        "expected_close_date": created.time.date() + timedelta(days=75),
    }
    assert 7 <= (date(2017, 1, 10) - created.time.date()).days <= 30
    assert engaged.data.stage is DealStage.qualification
    assert engaged.data.expected_close_date == date(2017, 1, 10) + timedelta(days=45)
    assert engaged.time.date() == date(2017, 1, 10)
    assert won.time.date() == date(2017, 3, 5)
    assert won.data.amount == Decimal("4500")

    lost = by_deal["crm-L1"][-1]
    assert lost.type == "deal.closed_lost"
    assert lost.data.amount is None  # the export's 0 is not the deal's value
    assert [e.type for e in by_deal["crm-E1"]] == ["deal.created", "deal.stage_changed"]
    assert [e.type for e in by_deal["crm-P1"]] == ["deal.created"]
    # a prospecting deal is created within 60 days before the export's last date (2017-06-01)
    assert 0 <= (date(2017, 6, 1) - by_deal["crm-P1"][0].time.date()).days < 60
    # engaged and closed on the same day: still strictly ordered
    s1 = by_deal["crm-S1"]
    assert s1[0].time < s1[1].time < s1[2].time


def test_merged_states_keep_list_price_for_lost_deals(tiny: Path):
    states = final_states(export_events(tiny))
    assert states["crm-L1"].stage is DealStage.closed_lost
    assert states["crm-L1"].amount == Decimal("55")
    assert states["crm-W1"].amount == Decimal("4500")


def test_engaging_stage_is_configurable(tiny: Path):
    events = export_events(tiny, {"Engaging": DealStage.proposal})
    engaged = [e for e in events if e.id.endswith("-engaged")]
    assert {e.data.stage for e in engaged} == {DealStage.proposal}


def test_unknown_product_is_reported(tiny: Path):
    path = tiny / "sales_pipeline.csv"
    path.write_text(path.read_text() + "X1,Ann Agent,Hoverboard,Acme,Prospecting,,,\n")
    with pytest.raises(ValueError, match="line 7: unknown product 'Hoverboard'"):
        load_export(tiny)


def test_won_revenue_by_month_on_the_tiny_export(tiny: Path):
    assert won_revenue_by_month(tiny) == {"2017-03": Decimal(4500), "2017-06": Decimal(600)}


# --------------------------------------------------------------------------- the real export


def _won_by_month_from_events(events) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for e in events:
        if e.type == "deal.closed_won":
            totals[f"{e.time:%Y-%m}"] += e.data.amount
    return dict(sorted(totals.items()))


@pytest.fixture(scope="module")
def real_events(crm_export_dir: Path):
    return export_events(crm_export_dir)


def test_export_counts_match_source_md(crm_export_dir: Path):
    opps = load_export(crm_export_dir)
    assert len(opps) == 8_800
    assert Counter(o.deal_stage for o in opps) == {
        "Won": 4_238,
        "Lost": 2_473,
        "Engaging": 1_589,
        "Prospecting": 500,
    }
    assert all(o.close_value == 0 for o in opps if o.deal_stage == "Lost")
    assert "technolgy" not in {o.sector for o in opps}


def test_export_events_counts_and_final_stages(real_events):
    types = Counter(e.type for e in real_events)
    assert types == {
        "deal.created": 8_800,
        "deal.stage_changed": 8_300,  # every deal but the 500 prospecting ones
        "deal.closed_won": 4_238,
        "deal.closed_lost": 2_473,
    }
    stages = Counter(s.stage for s in final_states(real_events).values())
    assert stages == {
        DealStage.closed_won: 4_238,
        DealStage.closed_lost: 2_473,
        DealStage.qualification: 1_589,
        DealStage.prospecting: 500,
    }


def test_export_events_are_valid_ordered_unique_and_deterministic(crm_export_dir, real_events):
    assert len({e.id for e in real_events}) == len(real_events)
    keys = [(e.time, e.id) for e in real_events]
    assert keys == sorted(keys)
    last: dict[str, object] = {}
    for e in real_events:  # each deal's own events strictly in time order
        assert last.get(e.subject, e.time) <= e.time
        last[e.subject] = e.time
    for e in real_events[::97]:  # round trip through the wire format
        assert DealEventAdapter.validate_json(e.model_dump_json()) == e
    assert export_events(crm_export_dir) == real_events


def test_won_revenue_per_month_matches_the_csv(crm_export_dir, real_events):
    expected = won_revenue_by_month(crm_export_dir)
    assert list(expected) == [f"2017-{m:02d}" for m in range(3, 13)]
    assert _won_by_month_from_events(real_events) == expected


# --------------------------------------------------------------------------- replay command


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_replay_jsonl_on_the_tiny_export(cli, tiny: Path, tmp_path: Path):
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(cli, ["replay", str(tiny), "--jsonl", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 12
    events = [DealEventAdapter.validate_json(line) for line in lines]
    assert events == export_events(tiny)
    assert "Replayed 5 deals" in result.output


def test_replay_of_a_missing_directory_fails(cli, tmp_path: Path):
    result = CliRunner().invoke(cli, ["replay", str(tmp_path / "nope"), "--jsonl", "-"])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_replay_jsonl_to_stdout_with_limit(cli, crm_export_dir: Path):
    args = ["replay", str(crm_export_dir), "--jsonl", "-", "--limit", "25"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 25
    first = json.loads(lines[0])
    assert first["type"] == "deal.created"
    assert first["subject"].startswith("crm-")
