"""``revintel train churn|deal``: train a model from the outcomes stored in PostgreSQL and
register it (the champion when its kind has none, else the challenger). The ``train`` group is
one typer sub-app; each kind is a command of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
import typer
from rich.table import Table

from worker.cli.common import SERVICE_ERRORS, console, database, fail, now, quiet_logs, settings
from worker.models.registry import SavedVersion
from worker.models.training import NotEnoughOutcomes
from worker.settings import Settings

train = typer.Typer(
    help="Train a model from the outcomes stored in PostgreSQL and register it.",
    no_args_is_help=True,
)

FIGURES = ("auc", "brier", "base_rate_brier", "log_loss", "calibration_error", "mean_prediction")


def figures_table(
    title: str, columns: dict[str, dict[str, Any]], positive: str = "churn rate"
) -> Table:
    """Held-out figures side by side (one column per model)."""
    table = Table(title=title)
    table.add_column("figure")
    for name in columns:
        table.add_column(name, justify="right")
    for figure in FIGURES:
        cells = [columns[n].get(figure) for n in columns]
        table.add_row(figure, *("" if c is None else f"{c:.4f}" for c in cells))
    table.add_row("cases", *(f"{columns[n].get('cases', 0):,}" for n in columns))
    table.add_row(positive, *(f"{columns[n].get('positive_rate', 0):.1%}" for n in columns))
    return table


def print_split(split: dict[str, Any]) -> None:
    console.print(f"split, by {split['order']}:")
    for fold in ("fit", "calibration", "test"):
        f = split[fold]
        console.print(
            f"  {fold:<12} {f['rows']:>6,} outcomes ({f['churned']:,} churned), "
            f"{f['from']} .. {f['to']}"
        )


def _run_training(
    s: Settings,
    kind: str,
    job: Callable[[asyncpg.Pool], Awaitable[SavedVersion]],
) -> SavedVersion:
    """Run one training ``job`` against the database: too little data is said and exits 0,
    a service error is one line (exit 2)."""

    async def main() -> SavedVersion:
        async with database(s) as pool:
            return await job(pool)

    try:
        with quiet_logs():
            return asyncio.run(main())
    except NotEnoughOutcomes as exc:
        console.print(f"no {kind} model trained: {exc}")
        raise typer.Exit(0) from None
    except (*SERVICE_ERRORS, ValueError) as exc:
        fail(f"cannot train the {kind} model: {exc}")


def _print_json(done: SavedVersion) -> None:
    summary = done.version.model_dump(mode="json", exclude={"artifact"})
    print(json.dumps({**summary, "rescored": done.rescored}, indent=2))


@train.command("churn")
def churn(
    min_churned: Annotated[
        int | None, typer.Option(min=1, help="fewer churned outcomes: no model (default: settings)")
    ] = None,
    min_renewed: Annotated[
        int | None, typer.Option(min=1, help="fewer renewed outcomes: no model (default: settings)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the version as JSON")] = False,
) -> None:
    """Train the churn model on every stored account outcome; as champion (first model) every
    account's churn risk is rescored with it, else it is registered as the challenger."""
    from worker.engine import load_framework
    from worker.models.churn import TrainParams
    from worker.tasks.churn_training import train_churn

    s = settings()
    params = TrainParams(
        min_churned=min_churned or s.churn_min_churned,
        min_renewed=min_renewed or s.churn_min_renewed,
    )
    framework = load_framework(s.framework_path)

    done = _run_training(s, "churn", lambda pool: train_churn(pool, framework, params, now()))
    mv = done.version
    if as_json:
        _print_json(done)
        return
    console.print(
        f"trained {mv.version} as {mv.role} ({mv.params['family']}, "
        f"{mv.params['calibration']} calibration)"
    )
    samples = mv.samples
    console.print(
        f"outcomes: {samples['rows']:,} ({samples['positive']:,} churned, "
        f"{samples['negative']:,} renewed), {mv.train_from:%Y-%m-%d} .. {mv.train_to:%Y-%m-%d}"
    )
    print_split(mv.metrics["split"])
    console.print(
        figures_table(
            "Held out in time (test fold)",
            {"model": mv.metrics["test"], "plain logistic": mv.metrics["baseline_logistic"]},
        )
    )
    if done.rescored:
        console.print(f"rescored {done.rescored:,} accounts with the champion {mv.version}")
    else:
        console.print(
            "the champion still scores; compare and promote: revintel models report churn"
        )


@train.command("deal")
def deal(
    min_won: Annotated[
        int | None, typer.Option(min=1, help="fewer won deals: no model (default: settings)")
    ] = None,
    min_lost: Annotated[
        int | None, typer.Option(min=1, help="fewer lost deals: no model (default: settings)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the version as JSON")] = False,
) -> None:
    """Train the deal model (close probability and timing) on the month-start snapshots and
    the closes stored, cut at the data's as-of; as champion (first model) every open deal's
    close probability is rescored with it, else it is registered as the challenger."""
    from worker.engine import load_framework
    from worker.models.deal_training import DealTrainParams
    from worker.tasks.deal_training import train_deal

    s = settings()
    params = DealTrainParams(
        min_won=min_won or s.deal_min_won, min_lost=min_lost or s.deal_min_lost
    )
    framework = load_framework(s.framework_path)

    done = _run_training(
        s,
        "deal",
        lambda pool: train_deal(pool, framework, params, now(), s.deal_challenger_share),
    )
    mv = done.version
    if as_json:
        _print_json(done)
        return
    print_deal_version(mv)
    if done.rescored:
        console.print(f"rescored {done.rescored:,} open deals with the champion {mv.version}")
    else:
        console.print("the champion still scores; compare and promote: revintel models report deal")


def print_deal_version(mv: Any) -> None:
    """A deal model version: window, samples, held-out split and figures."""
    samples = mv.samples
    console.print(f"trained {mv.version} as {mv.role} ({mv.params['family']})")
    console.print(
        f"snapshots: {samples['snapshots']} month starts, {mv.train_from:%Y-%m-%d} .. cut "
        f"{mv.train_to:%Y-%m-%d %H:%M}; {samples['rows']:,} rows, {samples['positive']:,} deals "
        f"won and {samples['negative']:,} lost"
    )
    split = mv.metrics.get("split", {})
    if split:
        fit, test = split["fit"], split["test"]
        console.print(
            f"held out in time: the snapshot of {test['snapshot'][:10]} ({test['deals']:,} open "
            f"deals, {test['closed']:,} closed since), scored by a model fitted before it "
            f"({fit['rows']:,} rows)"
        )
    columns = {"model": mv.metrics["test"]} if "test" in mv.metrics else {}
    if "served_then" in mv.metrics:
        columns["served then"] = mv.metrics["served_then"]
    if columns:
        console.print(figures_table("Held out in time (close probability)", columns, "won"))
    else:
        console.print(
            "no held-out figures: too few closes of both kinds after the held-out snapshot"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(train, name="train")
