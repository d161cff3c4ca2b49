"""`revintel score`: --example prints a valid input, --schema its JSON Schema, an unknown field
gets "did you mean", an industry without a vertical is warned about, outputs are rounded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from worker.cli.score import score_app

runner = CliRunner()
COMMANDS = [
    "deal-health",
    "close-probability",
    "deal-value",
    "churn-risk",
    "expansion",
    "scenario",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_example_is_a_valid_input_and_schema_describes_it(command):
    example = runner.invoke(score_app, [command, "--example"])
    assert example.exit_code == 0, example.output
    scored = runner.invoke(score_app, [command], input=example.stdout)
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)
    schema = runner.invoke(score_app, [command, "--schema"])
    assert schema.exit_code == 0, schema.output
    properties = json.loads(schema.stdout)["properties"]
    assert set(json.loads(example.stdout)) <= set(properties)


def test_unknown_field_gets_did_you_mean():
    deal = json.loads(runner.invoke(score_app, ["deal-health", "--example"]).stdout)
    deal["stag"] = deal.pop("stage")
    done = runner.invoke(score_app, ["deal-health"], input=json.dumps(deal))
    assert done.exit_code == 2
    assert "stag: Extra inputs are not permitted (did you mean 'stage'?)" in done.stderr


def test_unknown_industry_is_warned_about():
    deal = json.loads(runner.invoke(score_app, ["deal-health", "--example"]).stdout)
    done = runner.invoke(score_app, ["deal-health"], input=json.dumps(deal))
    assert done.exit_code == 0 and done.stderr == ""  # technology is a vertical
    deal["industry"] = "Underwater basket weaving"
    done = runner.invoke(score_app, ["close-probability"], input=json.dumps(deal))
    assert done.exit_code == 0
    assert "warning: industry 'Underwater basket weaving' has no vertical" in done.stderr
    assert "technology" in done.stderr  # the known ones are listed
    assert json.loads(done.stdout)["probability"] > 0  # still scored, with the defaults


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


@pytest.mark.parametrize("command", COMMANDS)
def test_outputs_are_rounded(command):
    example = runner.invoke(score_app, [command, "--example"]).stdout
    result = json.loads(runner.invoke(score_app, [command], input=example).stdout)
    assert all(round(f, 4) == f for f in _floats(result)), result
