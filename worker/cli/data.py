"""``revintel produce-sample``, ``seed`` and ``replay``: put the sample stream, test deals or
the public CRM export on the deal topic (or into a JSON-lines file)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from schemas.deal_events import DealEvent
from worker.cli.common import SERVICE_ERRORS, console, err_console, fail, now, parse_instant
from worker.cli.common import settings as current_settings
from worker.settings import Settings
from worker.testdata.seed import PipelineSummary, generate_deals, summarize

MAX_BATCH = 500
Message = tuple[bytes, bytes, tuple[()]]


# --------------------------------------------------------------------------- pure parts


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


def cut_at_ticks(
    batch: Sequence[DealEvent], ticks: list[datetime]
) -> Iterator[tuple[Sequence[DealEvent], datetime | None]]:
    """``batch`` in runs, each followed by the tick due before the next event (an event at or
    after a tick's instant comes after the tick). Consumes the ticks it places from ``ticks``."""
    start = 0
    for i, event in enumerate(batch):
        while ticks and event.time >= ticks[0]:
            yield batch[start:i], ticks.pop(0)
            start = i
    yield batch[start:], None


async def publish(
    events: Sequence[DealEvent],
    rate: float | None = None,
    on_sent: Callable[[int], None] = lambda n: None,
    settings: Settings | None = None,
    ticks: Sequence[datetime] = (),
    tick_interval: timedelta = timedelta(days=1),
) -> str:
    """Send ``events`` in order to the deal topic (created if missing), keyed by deal id, with
    the clock ``ticks`` (sorted instants) interleaved by time into every partition; returns
    the topic. Every batch is acknowledged (acks=all) before the next one."""
    from worker.kafka.client import kafka_client, running
    from worker.kafka.producer import durable_producer, send_all
    from worker.kafka.ticks import publish_tick
    from worker.kafka.topics import ensure_topics, wait_for_kafka

    settings = settings or current_settings()
    kafka, topic = kafka_client(settings), settings.deal_topic
    await wait_for_kafka(kafka)
    await ensure_topics(kafka, [topic], settings.topic_partitions)
    pending = sorted(ticks)
    async with running(durable_producer(kafka)) as producer:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for due, part in plan_batches(len(events), rate):
            delay = started + due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for run, tick in cut_at_ticks(events[part], pending):
                if run:
                    await send_all(producer, topic, [to_message(e) for e in run])
                    on_sent(len(run))
                if tick is not None:
                    await publish_tick(producer, [topic], tick, tick_interval)
        for tick in pending:  # the clock after the last event
            await publish_tick(producer, [topic], tick, tick_interval)
    return topic


@dataclass(frozen=True)
class Follow:
    """Follow the worker applying what was published: the deal ids the replay owns (others in
    the database are warned about) and how long the applied count may stand still."""

    own_deals: frozenset[str]
    stall_seconds: float


def _publish_with_progress(
    events: Sequence[DealEvent],
    rate: float | None,
    ticks: Sequence[datetime] = (),
    follow: Follow | None = None,
) -> str:
    """Publish with a bar; with ``follow``, a second bar for the events the worker applied,
    and the command ends when all are (a replay is not done when it is sent)."""
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    settings = current_settings()
    with Progress(*columns, console=console, transient=False) as progress:
        sending = progress.add_task("publishing", total=len(events))
        on_sent = partial(progress.advance, sending)
        try:
            if follow is None:
                return asyncio.run(publish(events, rate, on_sent, settings, ticks))
            applying = progress.add_task("applying", total=len(events))

            def on_applied(n: int) -> None:
                progress.update(applying, completed=n)

            return asyncio.run(
                _publish_and_follow(
                    events,
                    rate,
                    ticks,
                    settings,
                    follow,
                    on_sent,
                    on_applied,
                )
            )
        except (*SERVICE_ERRORS, RuntimeError) as exc:
            fail(str(exc))


async def _publish_and_follow(
    events: Sequence[DealEvent],
    rate: float | None,
    ticks: Sequence[datetime],
    settings: Settings,
    follow: Follow,
    on_sent: Callable[[int], None],
    on_applied: Callable[[int], None],
) -> str:
    """Warn about foreign deals, then publish while polling the applied count; wait until
    every event is applied."""
    import asyncpg

    from worker.cli.applying import follow_applied, foreign_deals, foreign_warning

    conn = await asyncpg.connect(settings.database_url)
    try:
        count, examples = await foreign_deals(conn, follow.own_deals)
        if count:
            err_console.print(foreign_warning(count, examples), markup=False, highlight=False)
        published = asyncio.Event()
        follower = asyncio.create_task(
            follow_applied(
                conn, [e.id for e in events], on_applied, follow.stall_seconds, published
            )
        )
        try:
            topic = await publish(events, rate, on_sent, settings, ticks)
        except BaseException:
            follower.cancel()
            raise
        published.set()
        await follower
        return topic
    finally:
        await conn.close()


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
        fail(f"cannot write {target}: {exc}")


# --------------------------------------------------------------------------- commands


def _emit(
    events: Sequence[DealEvent],
    jsonl: str | None,
    rate: float | None,
    title: Callable[[PipelineSummary], str],
    ticks: Sequence[datetime] = (),
    follow: Follow | None = None,
) -> None:
    """Write the events as JSON lines (``jsonl``: a file or '-'; ticks are per partition and
    not written) or publish them with the ``ticks``, then print the summary (to stderr when
    the events went to stdout)."""
    summary = summarize(events)
    if jsonl is not None:
        with _output(jsonl) as out:
            write_jsonl(events, out)
        where = "stdout" if jsonl == "-" else jsonl
    else:
        where = _publish_with_progress(events, rate, ticks, follow)
        if ticks:
            where += f" with {len(ticks):,} daily ticks"
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
    events = generate_deals(deals, seed, parse_instant(as_of, default=now))
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
    ticks: Annotated[
        bool, typer.Option("--ticks/--no-ticks", help="interleave a clock tick every day")
    ] = True,
    wait: Annotated[
        bool,
        typer.Option(
            help="follow the worker applying the events (a second bar) and warn first when "
            "the database holds other deals; --no-wait only publishes"
        ),
    ] = True,
    stall_timeout: Annotated[
        float,
        typer.Option("--stall-timeout", min=1, help="fail when nothing is applied for this long"),
    ] = 120.0,
) -> None:
    """Replay the public CRM export as deal events, in time order."""
    from worker.testdata.crm_export import CRM_DATA_ENV, crm_data_dir, export_events

    if path is None:
        path = crm_data_dir()
        if path is None:
            fail(f"no CRM export found: pass its directory or set {CRM_DATA_ENV}")
    try:
        events = export_events(path)
    except ValueError as exc:
        fail(str(exc))
    follow = Follow(frozenset(e.subject for e in events), stall_timeout) if wait else None
    if limit is not None:
        events = events[:limit]
    instants: list[datetime] = []
    if ticks and events:
        from worker.kafka.ticks import tick_instants

        day = timedelta(days=1)
        instants = tick_instants(events[0].time, events[-1].time + day, day)
    _emit(events, jsonl, rate, lambda s: f"Replayed {s.deals:,} deals", instants, follow)


async def wait_applied(database_url: str, event_ids: list[str], within: float) -> None:
    """Wait until the worker has applied every one of ``event_ids`` (or fail after ``within``)."""
    import asyncpg

    deadline = time.monotonic() + within
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM applied_events WHERE event_id = ANY($1::text[])", event_ids
            )
            if done == len(event_ids):
                console.print(f"worker applied all {done} events")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"worker applied {done} of {len(event_ids)} events within {within:.0f}s: "
                    "is `revintel run` running?"
                )
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def produce_sample(
    wait: Annotated[
        bool, typer.Option(help="wait until the worker has applied every event")
    ] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 120.0,
) -> None:
    """Publish the sample deal event stream (idempotent: fixed event ids)."""
    from worker.testdata.sample import sample_events

    settings = current_settings()
    events = sample_events()

    async def main() -> None:
        topic = await publish(events, settings=settings)
        console.print(
            f"published {len(events)} events for {len({e.subject for e in events})} deals "
            f"to {topic}"
        )
        if wait:
            await wait_applied(settings.database_url, [e.id for e in events], timeout)

    try:
        asyncio.run(main())
    except (RuntimeError, TimeoutError, OSError) as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    """Add ``produce-sample``, ``seed`` and ``replay`` to ``app``."""
    app.command("produce-sample")(produce_sample)
    app.command("seed")(seed_command)
    app.command("replay")(replay_command)
