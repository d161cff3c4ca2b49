"""``revintel models list|report|promote``: the model registry (``model_versions``) seen from
the command line: versions and roles, held-out figures of the champion and the challenger (and,
for churn, both scored on the outcomes recorded since they were trained), promotion."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from worker.cli.common import SERVICE_ERRORS, console, database, fail, quiet_logs, settings
from worker.cli.train import figures_table, print_deal_version, print_split

models = typer.Typer(help="The model registry: versions, their figures, promotion.")


@models.command("list")
def list_versions(
    kind: Annotated[str | None, typer.Argument(help="deal, churn, ... (default: all)")] = None,
) -> None:
    """Every registered version, newest first per kind, with its role and figures."""
    from worker.store import models as registry

    async def main():
        async with database() as pool, pool.acquire() as conn:
            return await registry.versions(conn, kind)

    try:
        found = asyncio.run(main())
    except SERVICE_ERRORS as exc:
        fail(f"cannot read the model registry: {exc}")
    table = Table(title=f"Model versions ({len(found)})")
    for col in ("kind", "version", "role", "trained at", "window", "rows", "AUC", "Brier"):
        table.add_column(col, no_wrap=col != "window")
    for mv in found:
        test = mv.metrics.get("test", {})
        window = (
            f"{mv.train_from:%Y-%m-%d} .. {mv.train_to:%Y-%m-%d}"
            if mv.train_from and mv.train_to
            else ""
        )
        table.add_row(
            mv.kind,
            mv.version,
            mv.role or "",
            f"{mv.trained_at:%Y-%m-%d %H:%M}",
            window,
            f"{mv.samples.get('rows', 0):,}",
            "" if test.get("auc") is None else f"{test['auc']:.3f}",
            "" if test.get("brier") is None else f"{test['brier']:.4f}",
        )
    console.print(table)


async def _report(kind: str, version: str | None) -> dict[str, Any]:
    from worker.store import models as registry

    async with database() as pool, pool.acquire() as conn:
        if version:
            picked = [await registry.get(conn, kind, version)]
            if picked[0] is None:
                raise LookupError(f"no {kind} model version {version!r}")
        else:
            picked = [await registry.champion(conn, kind), await registry.challenger(conn, kind)]
        chosen = [mv for mv in picked if mv is not None]
        since = await _since_training(conn, kind, chosen) if chosen else None
    return {"versions": chosen, "since": since}


async def _since_training(conn: Any, kind: str, versions: list[Any]) -> dict[str, Any] | None:
    """The versions' figures on the outcomes recorded after the newest one was trained on
    (churn, deal): the same cases for every version."""
    if kind == "deal":
        return await _deals_since(conn, versions)
    if kind != "churn":
        return None
    import numpy as np

    from worker.models.churn import figures
    from worker.store import churn

    after = max(mv.train_to for mv in versions if mv.train_to)
    outcomes = [o for o in await churn.outcomes(conn, since=after) if o.occurred_at > after]
    y = np.array([o.churned for o in outcomes], dtype=np.float64)
    if len(set(y.tolist())) < 2:
        return {"after": after.isoformat(), "cases": len(outcomes), "figures": {}}
    rows = [o.features() for o in outcomes]
    out = {}
    for mv in versions:
        model = mv.load()
        out[mv.version] = figures(model.probability(model.spec.matrix(rows)), y)
    return {"after": after.isoformat(), "cases": len(outcomes), "figures": out}


async def _deals_since(conn: Any, versions: list[Any]) -> dict[str, Any] | None:
    """Each version's close probability of the deals open at the newest version's cut (the
    first snapshot on or after it) that have closed since, against how they closed."""
    from worker.models.metrics import score_probabilities
    from worker.store import deal_models

    after = max(mv.train_to for mv in versions if mv.train_to)
    snap = await deal_models.snapshot_on_or_after(conn, after)
    empty = {"after": after.isoformat(), "cases": 0, "figures": {}}
    if snap is None:
        return empty
    closes = await deal_models.closed_deals(conn)
    done = [d for d in snap.deals if d.deal_id in closes and closes[d.deal_id].closed_at > after]
    won = [closes[d.deal_id].won for d in done]
    if len(set(won)) < 2:
        return {**empty, "cases": len(done)}
    out = {}
    for mv in versions:
        p = mv.load().predict(done, snap.at).close_probability
        out[mv.version] = score_probabilities(p, won).model_dump()
    return {
        "after": after.isoformat(),
        "snapshot": snap.at.isoformat(),
        "cases": len(done),
        "figures": out,
    }


@models.command("report")
def report(
    kind: Annotated[str, typer.Argument(help="deal, churn, ...")] = "churn",
    version: Annotated[
        str | None, typer.Option(help="one version (default: the champion and the challenger)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
) -> None:
    """Held-out figures (AUC, Brier, log loss, calibration error on a set held out in time)
    of the champion and the challenger, beside a plain logistic regression on the same split;
    then both on the outcomes recorded since training, when there are any."""
    try:
        with quiet_logs():
            found = asyncio.run(_report(kind, version))
    except LookupError as exc:
        fail(str(exc))
    except SERVICE_ERRORS as exc:
        fail(f"cannot read the model registry: {exc}")
    versions, since = found["versions"], found["since"]
    if as_json:
        payload = {
            "versions": [mv.model_dump(mode="json", exclude={"artifact"}) for mv in versions],
            "since_training": since,
        }
        print(json.dumps(payload, indent=2))
        return
    if not versions:
        console.print(f"no {kind} model registered: the framework's heuristic scores")
        return
    for mv in versions:
        if kind == "deal":
            console.print()
            print_deal_version(mv)
            continue
        console.print(
            f"\n[bold]{mv.version}[/bold] ({mv.role}), params: {mv.params.get('family')}"
            f" + {mv.params.get('calibration')} calibration",
            highlight=False,
        )
        if "split" in mv.metrics:
            print_split(mv.metrics["split"])
        columns = {"model": mv.metrics.get("test", {})}
        if "baseline_logistic" in mv.metrics:
            columns["plain logistic"] = mv.metrics["baseline_logistic"]
        for name, cand in mv.metrics.get("candidates", {}).items():
            columns[name] = cand["test"]
        console.print(figures_table("Held out in time (test fold)", columns))
    if since and since["figures"]:
        what = "Deals closed" if kind == "deal" else "Outcomes"
        console.print(
            figures_table(
                f"{what} since {since['after']} ({since['cases']:,})",
                since["figures"],
                "won" if kind == "deal" else "churn rate",
            )
        )
    elif since is not None:
        console.print(f"no outcomes of both kinds since {since['after']} yet to compare on")


@models.command("promote")
def promote(
    kind: Annotated[str, typer.Argument(help="deal, churn, ...")],
    version: Annotated[str, typer.Argument(help="the version to make champion")],
) -> None:
    """Make a version the champion (the previous champion is retired); for churn, every
    account's churn risk is rescored with it; for deal, every open deal's close probability,
    as of the data's as-of."""
    from worker.engine import load_framework
    from worker.store import models as registry
    from worker.tasks.churn_training import promote_churn
    from worker.tasks.deal_training import promote_deal

    s = settings()

    async def main() -> int:
        async with database(s) as pool:
            if kind == "churn":
                done = await promote_churn(pool, load_framework(s.framework_path), version)
                return done.rescored
            if kind == "deal":
                framework = load_framework(s.framework_path)
                deal = await promote_deal(pool, framework, version, s.deal_challenger_share)
                return deal.rescored
            async with pool.acquire() as conn:
                await registry.promote(conn, kind, version)
            return 0

    try:
        with quiet_logs():
            rescored = asyncio.run(main())
    except LookupError as exc:  # RegistryError: no such version
        fail(str(exc))
    except SERVICE_ERRORS as exc:
        fail(f"cannot promote: {exc}")
    console.print(f"{version} is the {kind} champion")
    if rescored:
        console.print(
            f"rescored {rescored:,} {'open deals' if kind == 'deal' else 'accounts'} with it"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(models, name="models")
