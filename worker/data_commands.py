"""``revintel seed`` and ``revintel replay``: put test deals or the public CRM export on the
deal topic (or into a JSON-lines file).

The main CLI adds them with ``register(app)``; ``data_app`` is a stand-alone Typer app with
the same commands (for tests, or ``python -m worker.data_commands``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from schemas.deal_events import DealEvent
from worker.seed_data import PipelineSummary, generate_deals, summarize
from worker.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True)
MAX_BATCH = 500
Message = tuple[bytes, bytes, tuple[()]]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


# --------------------------------------------------------------------------- pure parts


def parse_as_of(
    text: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> datetime:
    """``--as-of``: an ISO date (midnight UTC) or date-time (naive means UTC); default now."""
    if text is None:
        return now().replace(microsecond=0)
    value = text.strip()
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO date or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_message(event: DealEvent) -> Message:
    """(key, value, headers) of an event on the deal topic: keyed by the deal id."""
    return event.subject.encode(), event.model_dump_json(exclude_none=True).encode(), ()


def plan_batches(
    count: int, rate: float | None, max_batch: int = MAX_BATCH
) -> Iterator[tuple[float, slice]]:
    """(seconds after the start, slice of events) to send: full speed (``rate`` None) sends
    ``max_batch`` at a time at once; at ``rate`` events per second, about ten batches a
    second, each due when the events before it have had their time."""
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    size = max_batch if rate is None else max(1, min(max_batch, math.ceil(rate / 10)))
    for start in range(0, count, size):
        due = 0.0 if rate is None else start / rate
        yield due, slice(start, min(start + size, count))


def write_jsonl(events: Sequence[DealEvent], out: IO[str]) -> int:
    """One event per line (without null fields); returns the count."""
    for event in events:
        out.write(event.model_dump_json(exclude_none=True))
        out.write("\n")
    return len(events)


def summary_table(summary: PipelineSummary, title: str) -> Table:
    """Deals and amounts per stage, the open pipeline and the won total."""
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("deals", justify="right")
    table.add_column("amount", justify="right")
    for stage, deals in summary.by_stage.items():
        amount = summary.amount_by_stage.get(stage, 0)
        table.add_row(stage.value, f"{deals:,}", f"{amount:,.0f}")
    table.add_section()
    table.add_row("open pipeline", f"{summary.open_deals:,}", f"{summary.open_pipeline:,.0f}")
    table.add_row("total", f"{summary.deals:,}", "")
    span = ""
    if summary.first_event and summary.last_event:
        span = f", {summary.first_event:%Y-%m-%d} to {summary.last_event:%Y-%m-%d}"
    table.caption = f"{summary.events:,} events{span}"
    return table


# --------------------------------------------------------------------------- publishing


async def publish(
    events: Sequence[DealEvent],
    rate: float | None = None,
    on_sent: Callable[[int], None] = lambda n: None,
    settings: Settings | None = None,
) -> str:
    """Send ``events`` in order to the deal topic (created if missing), keyed by deal id;
    returns the topic. Every batch is acknowledged (acks=all) before the next one."""
    from worker.kafka_io import durable_producer, ensure_topics, send_all, wait_for_kafka

    settings = settings or get_settings()
    bootstrap = settings.kafka_bootstrap_servers
    await wait_for_kafka(bootstrap)
    await ensure_topics(bootstrap, [settings.deal_topic], settings.topic_partitions)
    producer = durable_producer(bootstrap)
    await producer.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for due, part in plan_batches(len(events), rate):
            delay = started + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = events[part]
            await send_all(producer, settings.deal_topic, [to_message(e) for e in batch])
            on_sent(len(batch))
    finally:
        await producer.stop()
    return settings.deal_topic


def _publish_with_progress(events: Sequence[DealEvent], rate: float | None) -> str:
    columns = (
        TextColumn("[bold]publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("publish", total=len(events))
        try:
            return asyncio.run(publish(events, rate, lambda n: progress.advance(task, n)))
        except (RuntimeError, OSError, TimeoutError) as exc:
            _fail(str(exc))


@contextlib.contextmanager
def _output(target: str) -> Iterator[IO[str]]:
    if target == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        with Path(target).open("w", encoding="utf-8") as f:
            yield f
    except OSError as exc:
        _fail(f"cannot write {target}: {exc}")


# --------------------------------------------------------------------------- commands


def _emit(
    events: Sequence[DealEvent],
    jsonl: str | None,
    rate: float | None,
    title: Callable[[PipelineSummary], str],
) -> None:
    """Write the events as JSON lines (``jsonl``: a file or '-') or publish them, then print
    the summary (to stderr when the events went to stdout)."""
    summary = summarize(events)
    if jsonl is not None:
        with _output(jsonl) as out:
            write_jsonl(events, out)
        where = "stdout" if jsonl == "-" else jsonl
    else:
        where = _publish_with_progress(events, rate)
    report = err_console if jsonl == "-" else console
    report.print(summary_table(summary, f"{title(summary)} -> {where}"))


def seed_command(
    deals: Annotated[int, typer.Option("--deals", min=1, max=100_000, help="deals to create")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same deals and ids")] = 1,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="histories end here (ISO; default now)")
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="write JSON lines to FILE ('-': stdout)")
    ] = None,
) -> None:
    """Publish a realistic set of test deals (every stage, at-risk cases) to the deal topic."""
    events = generate_deals(deals, seed, parse_as_of(as_of))
    _emit(events, jsonl, None, lambda s: f"Seeded {s.deals} deals (seed {seed})")


def replay_command(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="the CRM export directory (default: $REVINTEL_CRM_DATA or ../shared/data/crm)"
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.1, help="events per second (default: full speed)"),
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="write JSON lines to FILE ('-': stdout)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="only the first N events")
    ] = None,
) -> None:
    """Replay the public CRM export as deal events, in time order."""
    from worker.crm_export import CRM_DATA_ENV, crm_data_dir, export_events

    if path is None:
        path = crm_data_dir()
        if path is None:
            _fail(f"no CRM export found: pass its directory or set {CRM_DATA_ENV}")
    try:
        events = export_events(path)
    except ValueError as exc:
        _fail(str(exc))
    if limit is not None:
        events = events[:limit]
    _emit(events, jsonl, rate, lambda s: f"Replayed {s.deals:,} deals")


def register(app: typer.Typer) -> None:
    """Add ``seed`` and ``replay`` to ``app``."""
    app.command("seed")(seed_command)
    app.command("replay")(replay_command)


data_app = typer.Typer(
    help="Test data: seeded deals and the public CRM export.", no_args_is_help=True
)
register(data_app)

if __name__ == "__main__":  # pragma: no cover
    data_app()
