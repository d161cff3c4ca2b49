"""``revintel alerts tail``: an example alert consumer (deal and account alerts), deduplicating
by alert id."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli.common import console, settings

if TYPE_CHECKING:
    from schemas.alerts import AccountAlert, DealAlert

alerts_app = typer.Typer(help="Watch the alerts topic.", no_args_is_help=True)
_COLOURS = {"at_risk": "yellow", "escalated": "red", "resolved": "green"}


def describe(alert: DealAlert | AccountAlert) -> str:
    """One readable line (rich markup) for an alert of either kind."""
    from rich.markup import escape

    from schemas.alerts import DealAlert

    head = f"[{_COLOURS[alert.kind]}]{alert.kind:>9}[/] {alert.occurred_at:%Y-%m-%d %H:%M} "
    if isinstance(alert, DealAlert):
        body = (
            f"deal {alert.deal_id} {alert.name or ''} ({alert.company or '?'}) "
            f"{float(alert.value or 0):,.0f} {alert.currency} "
            f"health {alert.health_score} {alert.health_category}, "
            f"P(close) {alert.close_probability:.0f}%"
        )
    else:
        arr = "ARR ?" if alert.arr is None else f"ARR {float(alert.arr):,.0f}"
        renewal = f", renews {alert.renewal_date}" if alert.renewal_date else ""
        body = (
            f"account {alert.account_id} {alert.name or ''} ({alert.owner or 'no owner'}) "
            f"{arr}{renewal}, churn risk {alert.churn_risk} {alert.churn_level}"
        )
    return head + escape(f"{body}: {'; '.join(alert.reasons)}")  # names are not markup


@alerts_app.command("tail")
def tail(
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest alert")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="print raw JSON lines")] = False,
    limit: Annotated[int, typer.Option(help="stop after this many alerts (0: never)")] = 0,
    idle_exit: Annotated[
        float, typer.Option(help="stop after this many idle seconds (0: never)")
    ] = 0.0,
) -> None:
    """Print alerts (of deals and accounts) as they arrive: an example consumer, deduplicating
    by alert id."""
    from aiokafka import AIOKafkaConsumer

    from schemas.alerts import AlertAdapter

    current = settings()

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            current.alerts_topic,
            bootstrap_servers=current.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await consumer.start()
        seen: set[str] = set()
        last = time.monotonic()
        try:
            while not limit or len(seen) < limit:
                batch = await consumer.getmany(timeout_ms=500)
                records = [r for recs in batch.values() for r in recs]
                if not records and idle_exit and time.monotonic() - last > idle_exit:
                    return
                for record in records:
                    last = time.monotonic()
                    alert = AlertAdapter.validate_json(record.value)
                    if alert.alert_id in seen:
                        continue  # redelivered: same id, already handled
                    seen.add(alert.alert_id)
                    if json_lines:
                        print(record.value.decode(), flush=True)
                        continue
                    console.print(describe(alert), highlight=False)
        finally:
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
