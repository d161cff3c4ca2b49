from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from schemas.deal_events import DealStage
from worker.cli.score import score_app
from worker.engine import (
    ChurnInput,
    DealInput,
    DealValueInput,
    ExpansionInput,
    Framework,
    ScenarioInput,
    load_framework,
    predict_deal_value,
    run_scenario,
    score_churn,
    score_deal,
    score_expansion,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def fw() -> Framework:
    return load_framework()


DEAL = {
    "stage": "proposal",
    "amount": 25000,
    "industry": "Healthcare",
    "lead_score": 55,
    "interactions": 9,
    "objections_handled": 1,
    "has_champion": True,
    "budget_confirmed": False,
    "decision_maker_engaged": True,
    "competitors": ["Acme", "Globex"],
    "last_activity_at": "2025-05-20T10:00:00Z",
    "stage_entered_at": "2025-04-01T09:00:00+02:00",
    "created_at": "2025-03-01T09:00:00Z",
    "expected_close_date": "2025-06-15",
    "close_date_pushes": 1,
    "as_of": "2025-06-02T12:00:00Z",
}
VALUE = {"plan": "professional", "users": 25, "discount": 0.15, "stage": "negotiation"}
CHURN = {"logins": [90, 80, 50, 40], "failed_payments": 1, "nps": 6, "days_to_renewal": 45}
EXPANSION = {
    "plan_tier": "starter",
    "licensed_seats": 20,
    "active_seats": 19,
    "features_adopted": 7,
    "features_available": 10,
    "health": 75,
}
SCENARIO = {"pipeline_value": 500000, "win_rate": 0.3, "avg_deal_size": 25000}


def invoke(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(score_app, list(args), input=stdin)


def ok_json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def close(a: Any, b: Any) -> bool:
    """Equal up to the CLI's rounding of floats to 4 decimal places."""
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=0, abs=5.1e-5)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_close_probability_from_stdin(fw: Framework) -> None:
    data = ok_json(invoke("close-probability", stdin=json.dumps(DEAL)))
    deal = DealInput.model_validate(DEAL)
    expected = score_deal(deal.to_facts(), deal.as_of, fw)
    assert close(data, {"framework_version": fw.version, **expected.probability.to_dict()})
    assert 1 <= data["probability"] <= 99


def test_deal_health_from_file_and_dash(fw: Framework, tmp_path: Path) -> None:
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(DEAL), encoding="utf-8")
    from_file = ok_json(invoke("deal-health", str(path)))
    from_dash = ok_json(invoke("deal-health", "-", stdin=json.dumps(DEAL)))
    assert from_file == from_dash
    deal = DealInput.model_validate(DEAL)
    expected = score_deal(deal.to_facts(), deal.as_of, fw).health.to_dict()
    assert close(from_file, {"framework_version": fw.version, **expected})


def test_now_comes_from_the_input() -> None:
    early = ok_json(invoke("deal-health", stdin=json.dumps(DEAL)))
    later = ok_json(
        invoke("deal-health", stdin=json.dumps({**DEAL, "as_of": "2025-09-01T00:00:00Z"}))
    )
    assert later["measures"]["days_in_stage"] > early["measures"]["days_in_stage"]
    assert ok_json(invoke("deal-health", stdin=json.dumps(DEAL))) == early


@pytest.mark.parametrize(
    ("command", "payload", "compute"),
    [
        ("deal-value", VALUE, lambda fw: predict_deal_value(DealValueInput(**VALUE), fw)),
        ("churn-risk", CHURN, lambda fw: score_churn(ChurnInput(**CHURN), fw)),
        ("expansion", EXPANSION, lambda fw: score_expansion(ExpansionInput(**EXPANSION), fw)),
        ("scenario", SCENARIO, lambda fw: run_scenario(ScenarioInput(**SCENARIO))),
    ],
)
def test_account_and_value_commands(
    fw: Framework, command: str, payload: dict[str, Any], compute: Any
) -> None:
    data = ok_json(invoke(command, stdin=json.dumps(payload)))
    assert close(data, compute(fw).to_dict())


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({**DEAL, "stage": "won"}), "stage"),
        (json.dumps({k: v for k, v in DEAL.items() if k != "as_of"}), "as_of: Field required"),
        (json.dumps({**DEAL, "as_of": "2025-06-02T12:00:00"}), "timezone"),
        (json.dumps({**DEAL, "lead_score": 101}), "lead_score"),
    ],
)
def test_bad_deal_input_exits_2(stdin: str, message: str) -> None:
    result = invoke("close-probability", stdin=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("error: ")


def test_missing_file_and_engine_errors_exit_2(tmp_path: Path) -> None:
    result = invoke("scenario", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    result = invoke("deal-value", stdin=json.dumps({"plan": "diamond", "users": 2}))
    assert result.exit_code == 2
    assert "unknown plan 'diamond'" in result.stderr
    result = invoke("expansion", stdin=json.dumps({**EXPANSION, "plan_tier": "gold"}))
    assert result.exit_code == 2


def test_framework_option(tmp_path: Path) -> None:
    text = resources.files("worker.engine").joinpath("framework.toml").read_text("utf-8")
    data = tomllib.loads(text)
    custom = tmp_path / "custom.toml"
    custom.write_text(
        text.replace(f'version = "{data["version"]}"', 'version = "custom-42"').replace(
            "base_rate = 40", "base_rate = 45"
        ),
        encoding="utf-8",
    )
    default = ok_json(invoke("close-probability", stdin=json.dumps(DEAL)))
    result = ok_json(
        invoke("close-probability", "--framework", str(custom), stdin=json.dumps(DEAL))
    )
    assert result["framework_version"] == "custom-42"
    assert result["breakdown"]["stage_base_rate"] == 45
    assert default["breakdown"]["stage_base_rate"] == 40

    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("velocity = 0.30", "velocity = 0.90"), encoding="utf-8")
    result = invoke("deal-health", "--framework", str(broken), stdin=json.dumps(DEAL))
    assert result.exit_code == 2
    assert "sum to 1" in result.stderr


def test_mounts_under_score() -> None:
    app = typer.Typer()
    app.add_typer(score_app, name="score")

    @app.command()
    def other() -> None:  # a second command so "score" stays a group
        pass

    result = runner.invoke(app, ["score", "scenario"], input=json.dumps(SCENARIO))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["baseline"]["forecast"] == 150000
    help_text = runner.invoke(app, ["score", "--help"]).stdout
    for command in ("deal-value", "close-probability", "deal-health", "churn-risk", "expansion"):
        assert command in help_text


def test_closed_deal_from_cli() -> None:
    data = ok_json(
        invoke("close-probability", stdin=json.dumps({**DEAL, "stage": DealStage.closed_won}))
    )
    assert data["probability"] == 100
