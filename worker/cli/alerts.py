"""``revintel alerts tail``: an example alert consumer, deduplicating by alert id."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

import typer

from worker.cli.common import console, settings

alerts_app = typer.Typer(help="Watch the alerts topic.", no_args_is_help=True)
_COLOURS = {"at_risk": "yellow", "escalated": "red", "resolved": "green"}


@alerts_app.command("tail")
def tail(
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest alert")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="print raw JSON lines")] = False,
    limit: Annotated[int, typer.Option(help="stop after this many alerts (0: never)")] = 0,
    idle_exit: Annotated[
        float, typer.Option(help="stop after this many idle seconds (0: never)")
    ] = 0.0,
) -> None:
    """Print alerts as they arrive: an example consumer, deduplicating by alert id."""
    from aiokafka import AIOKafkaConsumer

    from schemas.alerts import DealAlert

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
                    alert = DealAlert.model_validate_json(record.value)
                    if alert.alert_id in seen:
                        continue  # redelivered: same id, already handled
                    seen.add(alert.alert_id)
                    if json_lines:
                        print(record.value.decode(), flush=True)
                        continue
                    console.print(
                        f"[{_COLOURS[alert.kind]}]{alert.kind:>9}[/] "
                        f"{alert.occurred_at:%Y-%m-%d %H:%M} "
                        f"{alert.deal_id} {alert.name or ''} ({alert.company or '?'}) "
                        f"{float(alert.value or 0):,.0f} {alert.currency} "
                        f"health {alert.health_score} {alert.health_category}, "
                        f"P(close) {alert.close_probability:.0f}%: {'; '.join(alert.reasons)}",
                        highlight=False,
                    )
        finally:
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
