"""``revintel score ...``: the scoring engine from the command line.

Every command reads one JSON object from a file argument or stdin (``-`` or no argument) and
prints the JSON result on stdout. Bad input (unreadable file, invalid JSON, failed validation, a
plan the framework does not know) prints a message on stderr and exits with code 2. "Now" is
never the clock: deal commands take it from the input's ``as_of``.

"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from worker.cli.common import err_console, fail
from worker.engine import (
    ChurnInput,
    DealInput,
    DealValueInput,
    ExpansionInput,
    Framework,
    FrameworkError,
    ScenarioInput,
    default_framework,
    load_framework,
    predict_deal_value,
    run_scenario,
    score_churn,
    score_deal,
    score_expansion,
)
from worker.engine.seed import deal_input_from_seed, is_seed_body

__all__ = ["register", "score_app"]

score_app = typer.Typer(
    help="Score deals and accounts from JSON (a file, or stdin with '-' or no argument); "
    "prints JSON. Input errors exit with code 2.",
    no_args_is_help=True,
    add_completion=False,
)

M = TypeVar("M", bound=BaseModel)
DECIMALS = 4
T = TypeVar("T")

Source = Annotated[
    str,
    typer.Argument(help="JSON input file; '-' or nothing reads stdin.", show_default=False),
]
FrameworkPath = Annotated[
    Path | None,
    typer.Option(
        "--framework",
        help="Framework TOML file to use instead of the packaged one.",
        dir_okay=False,
    ),
]


Example = Annotated[
    bool, typer.Option("--example", help="Print a valid input for this command and exit.")
]
Schema = Annotated[
    bool, typer.Option("--schema", help="Print the JSON Schema of this command's input and exit.")
]

# A valid input of each command (as_of, not the clock, is "now" of the deal commands).
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    DealInput: {
        "stage": "proposal",
        "amount": 40000,
        "industry": "technology",
        "lead_score": 60,
        "interactions": 3,
        "objections_handled": 0,
        "has_champion": True,
        "budget_confirmed": False,
        "decision_maker_engaged": False,
        "competitors": ["Acme"],
        "created_at": "2026-01-05T09:00:00Z",
        "stage_entered_at": "2026-02-01T09:00:00Z",
        "last_activity_at": "2026-02-10T09:00:00Z",
        "expected_close_date": "2026-03-31",
        "close_date_pushes": 1,
        "as_of": "2026-03-01T00:00:00Z",
    },
    DealValueInput: {"plan": "professional", "users": 25, "discount": 0.15, "stage": "proposal"},
    ChurnInput: {"logins": [90, 80, 50, 40], "failed_payments": 1, "nps": 6, "days_to_renewal": 45},
    ExpansionInput: {
        "plan_tier": "starter",
        "licensed_seats": 20,
        "active_seats": 19,
        "features_adopted": 7,
        "features_available": 10,
        "health": 75,
    },
    ScenarioInput: {"pipeline_value": 500000, "win_rate": 0.3, "avg_deal_size": 25000},
}


def _describe_input(model: type[BaseModel], example: bool, schema: bool) -> None:
    """--example or --schema: print it and stop (before any input is read)."""
    if example:
        typer.echo(json.dumps(EXAMPLES[model], indent=2))
    elif schema:
        typer.echo(json.dumps(model.model_json_schema(), indent=2))
    else:
        return
    raise typer.Exit(0)


def _read(source: str, model: type[M], translate: Callable[[dict], dict] | None = None) -> M:
    """``source``'s JSON object validated as ``model`` (after ``translate``, when given)."""
    where = "stdin" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {where}: {getattr(exc, 'strerror', None) or exc}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if not isinstance(data, dict):
        fail(f"{where} must hold a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(translate(data) if translate else data)
    except ValueError as exc:
        if not isinstance(exc, ValidationError):
            fail(f"{where}: {exc}")
        lines = [f"{where} is not a valid {model.__name__} ({exc.error_count()} problem(s)):"]
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
            lines.append(f"  {loc}: {err['msg']}{_did_you_mean(err, model)}")
        fail("\n".join(lines))


def _did_you_mean(err: Any, model: type[BaseModel]) -> str:
    """For an unknown field, the closest known one (``"stag"`` -> ``stage``)."""
    if err["type"] != "extra_forbidden" or len(err["loc"]) != 1:
        return ""
    close = difflib.get_close_matches(str(err["loc"][0]), model.model_fields, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _warn_unknown_industry(industry: str | None, fw: Framework) -> None:
    """An industry without a vertical scores with the defaults (x1.0): say so, on stderr."""
    if industry and fw.for_industry(industry).vertical is None:
        known = ", ".join(fw.verticals) or "none"
        err_console.print(
            f"[yellow]warning:[/yellow] industry {industry!r} has no vertical in the framework "
            f"(known: {known}); scored with the defaults",
            highlight=False,
            soft_wrap=True,
        )


def _framework(path: Path | None) -> Framework:
    try:
        return default_framework() if path is None else load_framework(path)
    except FrameworkError as exc:
        fail(str(exc))


def _run(compute: Callable[[], T]) -> T:
    """Engine errors about the input (ValueError) become exit code 2."""
    try:
        return compute()
    except ValueError as exc:
        fail(str(exc))


def _tidy(value: Any) -> Any:
    """Floats rounded to 4 decimal places for reading (0.025000000000000022 -> 0.025)."""
    if isinstance(value, float):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _emit(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(_tidy(result), indent=2, ensure_ascii=False))


def _seed_deal(data: dict) -> dict:
    """The seed's deal body (deal_stage, days_in_stage, ...) as ours; it must say ``as_of``
    (the CLI never reads the clock). Ours passes unchanged."""
    if is_seed_body(data) and "as_of" not in data:
        raise ValueError("a seed body needs 'as_of', the moment its day counts are from")
    return deal_input_from_seed(data, datetime.now(UTC))  # now unused: as_of is given


def _deal_part(part: str) -> Callable[[DealInput, Framework], dict[str, Any]]:
    """Score a deal as of its ``as_of`` and keep one part of the score (health, probability)."""

    def score(deal: DealInput, fw: Framework) -> dict[str, Any]:
        _warn_unknown_industry(deal.industry, fw)
        scored = score_deal(deal.to_facts(), deal.as_of, fw)
        return {"framework_version": scored.framework_version, **getattr(scored, part).to_dict()}

    return score


@dataclass(frozen=True)
class _EngineCommand:
    """A command that reads one ``model`` and scores it with the framework."""

    name: str
    help: str
    model: type[BaseModel]
    score: Callable[[Any, Framework], dict[str, Any]]
    translate: Callable[[dict], dict] | None = None  # applied to the JSON before validation


ENGINE_COMMANDS = (
    _EngineCommand(
        "deal-value",
        "Predict a deal's value from plan, users, price, discount, billing cycle and term.",
        DealValueInput,
        lambda inputs, fw: predict_deal_value(inputs, fw).to_dict(),
    ),
    _EngineCommand(
        "close-probability",
        "Close probability of a deal (DealFacts fields plus 'as_of', the moment to score at).",
        DealInput,
        _deal_part("probability"),
        _seed_deal,
    ),
    _EngineCommand(
        "deal-health",
        "Health of a deal (DealFacts fields plus 'as_of', the moment to score at).",
        DealInput,
        _deal_part("health"),
        _seed_deal,
    ),
    _EngineCommand(
        "churn-risk",
        "Churn risk of an account from usage, support, financial, sentiment and renewal data.",
        ChurnInput,
        lambda account, fw: score_churn(account, fw).to_dict(),
    ),
    _EngineCommand(
        "expansion",
        "Expansion score and recommended motion of an account.",
        ExpansionInput,
        lambda account, fw: score_expansion(account, fw).to_dict(),
    ),
)


def _add_engine_command(spec: _EngineCommand) -> None:
    def command(
        source: Source = "-",
        framework: FrameworkPath = None,
        example: Example = False,
        schema: Schema = False,
    ) -> None:
        _describe_input(spec.model, example, schema)
        inputs = _read(source, spec.model, spec.translate)
        fw = _framework(framework)
        _emit(_run(lambda: spec.score(inputs, fw)))

    score_app.command(spec.name, help=spec.help)(command)


for _spec in ENGINE_COMMANDS:
    _add_engine_command(_spec)


@score_app.command("scenario")
def scenario(source: Source = "-", example: Example = False, schema: Schema = False) -> None:
    """What-if forecast: win rate, deal size, pipeline growth and sales-cycle changes."""
    _describe_input(ScenarioInput, example, schema)
    inputs = _read(source, ScenarioInput)
    _emit(_run(lambda: run_scenario(inputs)).to_dict())


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
