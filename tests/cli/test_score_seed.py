"""`revintel score` takes the seed's close-probability body (issue 10: it used to answer
"10 problem(s) ... Extra inputs are not permitted")."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from worker.cli import app

SEED = {
    "deal_stage": "Negotiation",
    "deal_value": 25000,
    "days_in_stage": 5,
    "num_interactions": 8,
    "has_champion": True,
    "budget_confirmed": True,
    "as_of": "2026-03-01T00:00:00+00:00",
}


def test_the_seed_body_is_scored():
    result = CliRunner().invoke(app, ["score", "close-probability"], input=json.dumps(SEED))
    assert result.exit_code == 0, result.output
    assert 0 < json.loads(result.output)["probability"] <= 100


def test_a_seed_body_without_as_of_is_refused_the_cli_reads_no_clock():
    body = {k: v for k, v in SEED.items() if k != "as_of"}
    result = CliRunner().invoke(app, ["score", "deal-health"], input=json.dumps(body))
    assert result.exit_code == 2
    assert "needs 'as_of'" in result.output
