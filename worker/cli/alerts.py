"""``revintel alerts tail``: an example alert consumer (deal and account alerts), deduplicating
by alert id."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Annotated

import typer

from worker.cli.common import console, fail, settings

if TYPE_CHECKING:
    from schemas.alerts import AccountAlert, DealAlert

alerts_app = typer.Typer(help="Watch the alerts topic.", no_args_is_help=True)
_COLOURS = {"at_risk": "yellow", "escalated": "red", "resolved": "green"}


def describe(alert: DealAlert | AccountAlert) -> str:
    """One readable line (rich markup) for an alert of either kind: who, whose, why."""
    from rich.markup import escape

    from schemas.alerts import DealAlert

    head = f"[{_COLOURS[alert.kind]}]{alert.kind:>9}[/] {alert.occurred_at:%Y-%m-%d %H:%M} "
    if isinstance(alert, DealAlert):
        body = (
            f"deal {alert.deal_id} {alert.name or ''} ({alert.company or '?'}), "
            f"owner {alert.owner or 'none'}, {float(alert.value or 0):,.0f} {alert.currency}, "
            f"{alert.stage}, health {alert.health_score} {alert.health_category}, "
            f"P(close) {alert.close_probability:.0f}%"
        )
        why = [*alert.reasons, *(r for r in alert.risk_factors if r not in alert.reasons)]
    else:
        arr = "ARR ?" if alert.arr is None else f"ARR {float(alert.arr):,.0f}"
        renewal = f", renews {alert.renewal_date}" if alert.renewal_date else ""
        body = (
            f"account {alert.account_id} {alert.name or ''}, owner {alert.owner or 'none'}, "
            f"{arr}{renewal}, churn risk {alert.churn_risk} {alert.churn_level}"
        )
        why = list(alert.reasons)
    return head + escape(f"{body}: {'; '.join(why)}")  # names are not markup


@alerts_app.command("tail")
def tail(
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest alert")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="print raw JSON lines")] = False,
    limit: Annotated[int, typer.Option(help="stop after this many alerts (0: never)")] = 0,
    idle_exit: Annotated[
        float, typer.Option(help="stop after this many idle seconds (0: never)")
    ] = 0.0,
) -> None:
    """Print alerts (of deals and accounts) as they arrive, in time order (the backlog read
    with --from-beginning is sorted first): an example consumer, deduplicating by alert id."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    from worker.kafka.client import kafka_client, running
    from worker.kafka.topics import wait_for_kafka

    current = settings()
    printer = _Printer(json_lines, limit)

    async def main() -> None:
        kafka = kafka_client(current)
        await wait_for_kafka(kafka, within=10.0)  # says why: no broker, or it refused us
        consumer = AIOKafkaConsumer(
            current.alerts_topic,
            **kafka,
            group_id=None,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        async with running(consumer):
            if from_beginning:  # the backlog first, all of it sorted by time
                backlog: list = []
                wait_ms = 5000  # the first fetch waits for the partitions' assignment
                while batch := await consumer.getmany(timeout_ms=wait_ms):
                    backlog += [r for recs in batch.values() for r in recs]
                    wait_ms = 1000
                printer.print_in_time_order(backlog)
            last = time.monotonic()
            while not printer.done:
                batch = await consumer.getmany(timeout_ms=500)
                records = [r for recs in batch.values() for r in recs]
                if not records and idle_exit and time.monotonic() - last > idle_exit:
                    return
                if records:
                    last = time.monotonic()
                    printer.print_in_time_order(records)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except (KafkaError, RuntimeError, OSError) as exc:
        fail(f"cannot read {current.alerts_topic} at {current.kafka_bootstrap_servers}: {exc}")


class _Printer:
    """Prints alerts once each (by alert id), every batch sorted by time: partitions are read
    side by side, so their records arrive interleaved out of time order."""

    def __init__(self, json_lines: bool, limit: int) -> None:
        self.json_lines, self.limit = json_lines, limit
        self.seen: set[str] = set()

    @property
    def done(self) -> bool:
        return bool(self.limit) and len(self.seen) >= self.limit

    def print_in_time_order(self, records: list) -> None:
        from schemas.alerts import AlertAdapter

        alerts = [(AlertAdapter.validate_json(r.value), r.value) for r in records]
        for alert, raw in sorted(alerts, key=lambda a: (a[0].occurred_at, a[0].alert_id)):
            if self.done or alert.alert_id in self.seen:
                continue  # redelivered: same id, already handled
            self.seen.add(alert.alert_id)
            if self.json_lines:
                print(raw.decode(), flush=True)
            else:
                console.print(describe(alert), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
