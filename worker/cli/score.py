"""``revintel score ...``: the scoring engine from the command line.

Every command reads one JSON object from a file argument or stdin (``-`` or no argument) and
prints the JSON result on stdout. Bad input (unreadable file, invalid JSON, failed validation, a
plan the framework does not know) prints a message on stderr and exits with code 2. "Now" is
never the clock: deal commands take it from the input's ``as_of``.

"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from worker.cli.common import fail
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

__all__ = ["register", "score_app"]

score_app = typer.Typer(
    help="Score deals and accounts from JSON (a file, or stdin with '-' or no argument); "
    "prints JSON. Input errors exit with code 2.",
    no_args_is_help=True,
    add_completion=False,
)

M = TypeVar("M", bound=BaseModel)
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


def _read(source: str, model: type[M]) -> M:
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
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{where} is not a valid {model.__name__} ({exc.error_count()} problem(s)):"]
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
            lines.append(f"  {loc}: {err['msg']}")
        fail("\n".join(lines))


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
    """Floats to 12 significant digits for reading (0.025000000000000022 -> 0.025)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    return value


def _emit(result: dict[str, Any]) -> None:
    typer.echo(json.dumps(_tidy(result), indent=2, ensure_ascii=False))


@score_app.command("deal-value")
def deal_value(source: Source = "-", framework: FrameworkPath = None) -> None:
    """Predict a deal's value from plan, users, price, discount, billing cycle and term."""
    inputs = _read(source, DealValueInput)
    fw = _framework(framework)
    _emit(_run(lambda: predict_deal_value(inputs, fw)).to_dict())


@score_app.command("close-probability")
def close_probability(source: Source = "-", framework: FrameworkPath = None) -> None:
    """Close probability of a deal (DealFacts fields plus 'as_of', the moment to score at)."""
    deal = _read(source, DealInput)
    fw = _framework(framework)
    score = _run(lambda: score_deal(deal.to_facts(), deal.as_of, fw))
    _emit({"framework_version": score.framework_version, **score.probability.to_dict()})


@score_app.command("deal-health")
def deal_health(source: Source = "-", framework: FrameworkPath = None) -> None:
    """Health of a deal (DealFacts fields plus 'as_of', the moment to score at)."""
    deal = _read(source, DealInput)
    fw = _framework(framework)
    score = _run(lambda: score_deal(deal.to_facts(), deal.as_of, fw))
    _emit({"framework_version": score.framework_version, **score.health.to_dict()})


@score_app.command("churn-risk")
def churn_risk(source: Source = "-", framework: FrameworkPath = None) -> None:
    """Churn risk of an account from usage, support, financial, sentiment and renewal data."""
    account = _read(source, ChurnInput)
    fw = _framework(framework)
    _emit(_run(lambda: score_churn(account, fw)).to_dict())


@score_app.command("expansion")
def expansion(source: Source = "-", framework: FrameworkPath = None) -> None:
    """Expansion score and recommended motion of an account."""
    account = _read(source, ExpansionInput)
    fw = _framework(framework)
    _emit(_run(lambda: score_expansion(account, fw)).to_dict())


@score_app.command("scenario")
def scenario(source: Source = "-") -> None:
    """What-if forecast: win rate, deal size, pipeline growth and sales-cycle changes."""
    inputs = _read(source, ScenarioInput)
    _emit(_run(lambda: run_scenario(inputs)).to_dict())


def register(app: typer.Typer) -> None:
    app.add_typer(score_app, name="score")
