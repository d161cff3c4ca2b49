"""Benchmark: the worker's throughput against this machine's limit, with the real local Kafka and
PostgreSQL (issue 11).

    eval "$(bash scripts/services.sh env)"
    .venv/bin/python bench/bench_throughput.py [--events N] [--deals D] [--partitions P]
        [--rate R] [--seconds S] [--naive-events K] [--repeat R] [--json PATH] [--quick]
        [--profile PATH_TO_PY_SPY] [--skip PHASE ...] [--no-analyze] [--forecast]

The input is built once and pre-produced, the same bytes for every phase: ``--events`` canonical
deal events (default 100,000) over ``--deals`` deals (default events / 5) from the seed generator
(``worker/testdata/seed.py``: ten deal archetypes, a realistic mix of created, stage changes,
activities, updates, wins and losses). Each deal keeps the first events of its history (taken
round-robin, so every deal is created and the total is exact), the whole stream in time order,
keyed by deal id on a topic of ``--partitions`` partitions (default 6).

Every phase gets its own fresh database (``tests.services.fresh_database``: migrated, dropped
afterwards) and its own topics and consumer group (deleted afterwards), and every contender is a
process of its own, so the benchmark's polling never shares its event loop:

1. worker: ``revintel run`` as shipped (batch size and timeout from the settings' defaults; the
   forecast job off unless ``--forecast``, so a cron boundary cannot land in the window), until
   every event is in ``applied_events``; its peak RSS is the kernel's (``VmHWM``);
2. null: the same aiokafka consumer and batch size (``getmany``), ``json.loads`` of each
   record, ``COPY`` of the raw events into a table (body as jsonb), offsets committed;
3. naive: a per-event loop: decode and validate the event (the worker's pydantic contract), one
   upsert of its deal in its own transaction, one offset commit. Run on ``--naive-events`` events
   sampled evenly from the input; its events/s is extrapolated to the full input;
4. worker x2: two ``revintel run`` processes in one consumer group (rebalance included);
5. latency: a fresh worker, warmed up until its group has settled (its subscribers join one
   by one at start, each join a rebalance; ``--analyze``: ANALYZE after the warm-up), then
   ``--rate`` events/s (default 2,000) offered for
   ``--seconds`` (default 60); p50 and p99 from each event's produce time (the moment it is handed
   to the producer, also its Kafka timestamp) to the commit of the worker's transaction that
   applied it. The commit is observed by polling ``pg_current_snapshot()`` every 10 ms: the row's
   ``xmin`` first seen completed (an upper bound, within the poll period). Also shown: the
   latency to ``applied_events.applied_at``, which is the transaction's ``now()``, i.e. its
   *start* (a lower bound of the commit). This process's input is frozen out of its
   garbage collector's reach and collection is off while it offers: a full collection of the
   input stalled the poller for up to 1.6 s.

Rates: events / (end - start), start = the first transaction of the phase (min ``applied_at`` /
``copied_at``), end = when the poll (every 0.25 s) first sees the group's committed offsets at
the end of every partition (read from the broker, not to load the database; each contender
commits offsets after its database commit; the rows are then checked). The
workers' start-up is outside the window, not the rebalances of their subscribers joining (the
events they redeliver are counted as ``duplicates``). Beside each rate: the CPU the contender
used over its window (/proc/<pid>/stat; 1.0 = one core) and per event (steadier than a rate
when other work shares the machine), its peak RSS, and for the workers the sequential and
index scans of their tables (``pg_stat_user_tables``). ``--repeat R`` runs the
throughput phases R times and keeps the (lower) median, with each repetition's ratios; a 1 s
busy loop before each phase tells how much of a core the rest of the machine left free.
``--profile`` samples the first worker phase with py-spy from its first applied event on.

It prints a table with the ratios worker / null and worker / naive and the issue's targets beside
them, and writes JSON (default ``bench/results/throughput.json``). Exit status 1 when a target
is missed. Other work on the machine shares its two cores: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {
    "worker_over_null": 0.6,  # at least
    "worker_over_naive": 20.0,  # at least
    "p99_ms": 200.0,  # at most, at 2,000 events/s
    "rss_mb": 250.0,  # at most
}
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
SNAPSHOT_POLL_SECONDS = 0.01
COUNT_POLL_SECONDS = 0.25
WARMUP_EVENTS = 200


# -- pure helpers (tested in bench/test_bench_throughput.py) ----------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's
    default); ``values`` need not be sorted."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def take_round_robin(histories: Sequence[Sequence[Any]], n: int) -> list[Any]:
    """``n`` items: every history's first item, then every history's second, ... (so each
    history keeps a prefix, and the earlier histories one more when ``n`` does not divide)."""
    available = sum(len(h) for h in histories)
    if n > available:
        raise ValueError(f"only {available:,} events in {len(histories):,} deals' histories")
    taken: list[Any] = []
    k = 0
    while len(taken) < n:
        for history in histories:
            if k < len(history):
                taken.append(history[k])
                if len(taken) == n:
                    break
        k += 1
    return taken


def parse_snapshot(text: str) -> tuple[int, int, frozenset[int]]:
    """``pg_current_snapshot()`` as text, 'xmin:xmax:xip,...' -> (xmin, xmax, in progress)."""
    xmin, xmax, xip = text.split(":")
    return int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x)


def widen_xid(xid32: int, reference: int) -> int:
    """A 32-bit ``xmin`` as the 64-bit transaction id nearest to ``reference`` (an xid8)."""
    full = (reference & ~0xFFFFFFFF) | xid32
    if full > reference + 2**31:
        full -= 2**32
    elif full < reference - 2**31:
        full += 2**32
    return full


def first_completed(xid: int, polls: Sequence[tuple[float, int, frozenset[int]]]) -> float | None:
    """The time of the first poll (time, xmax, in progress) whose snapshot sees ``xid``
    completed, or None. Completion is monotone in time, so a bisection finds it."""
    lo, hi = 0, len(polls)
    while lo < hi:
        mid = (lo + hi) // 2
        _, xmax, xip = polls[mid]
        if xid < xmax and xid not in xip:
            hi = mid
        else:
            lo = mid + 1
    return polls[lo][0] if lo < len(polls) else None


def verdict(value: float | None, target: float, at_least: bool) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if at_least else value <= target
    return "met" if ok else "MISSED"


def hot_spots(collapsed: Sequence[str], top: int = 25) -> dict[str, Any]:
    """py-spy's raw output (``frame;frame;... count`` per line, root first; frames as
    ``function (file:line)``) -> the share of samples under each function (inclusive, counted
    once per stack), under each of the project's functions (``worker/``, ``schemas/``), and on
    each (self). Samples without a Python frame count as ``(no Python frame)``."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f] or [
            "(no Python frame)"
        ]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n

    def shares(counts: Sequence[tuple[str, int]]) -> list[tuple[str, float]]:
        return [(f, round(100 * c / total, 1)) for f, c in counts[:top]]

    ours = [(f, c) for f, c in inclusive.most_common() if "worker/" in f or "schemas/" in f]
    return {
        "samples": total,
        "project_inclusive_pct": shares(ours),
        "inclusive_pct": shares(inclusive.most_common()),
        "self_pct": shares(own.most_common()),
    }


def cpu_us_per_event(phase: dict[str, Any] | None) -> float | None:
    """The contender's CPU per event, in us: its processes' cores over the window times the
    window, over the events (None when the CPU was not measured)."""
    if not phase or not phase.get("events"):
        return None
    cpu = [c for c in phase.get("cpu_share") or [] if c is not None]
    if not cpu:
        return None
    return sum(cpu) * phase["seconds"] / phase["events"] * 1e6


def services_us_per_event(phase: dict[str, Any] | None) -> dict[str, float]:
    """The local services' CPU per event in a phase, in us, scaled to the phase's window as
    ``cpu_us_per_event`` is (empty when they were not measured)."""
    if not phase or not phase.get("events"):
        return {}
    used, window = phase.get("services_cpu_s") or {}, phase.get("cpu_window_s")
    if not window or window < 1.0:
        return {}
    return {k: v / window * phase["seconds"] / phase["events"] * 1e6 for k, v in used.items()}


def budget_lines(result: dict[str, Any]) -> list[str]:
    """What the worker / null target asks of the whole machine: at ``ratio`` x the null
    pipeline's rate, every process together (worker, PostgreSQL, Kafka) may use at most
    cpus / rate of CPU per event, however the work is spread over the cores."""
    phases, cpus = result["phases"], result.get("machine", {}).get("cpus")
    worker, null = phases.get("worker"), phases.get("null")
    lines = []
    for key in ("worker", "null"):
        spent = services_us_per_event(phases.get(key))
        if spent:
            shown = ", ".join(f"{k} {v:,.0f} us" for k, v in sorted(spent.items()))
            lines.append(f"  {key}: {shown}")
    if lines:
        lines.insert(
            0,
            "  services' CPU per event (the local PostgreSQL and Kafka over the same window, "
            "this benchmark's polling included):",
        )
    own, spent = cpu_us_per_event(worker), services_us_per_event(worker)
    if not (cpus and null and own is not None and spent):
        return lines
    ratio = TARGETS["worker_over_null"]
    rate = ratio * null["events_per_s"]
    parts = " + ".join(f"{k} {v:,.0f}" for k, v in sorted(spent.items()))
    lines.append(
        f"  budget: {ratio}x the null pipeline is {rate:,.0f} events/s, at most "
        f"{cpus / rate * 1e6:,.0f} us of the machine's {cpus} CPUs per event for all "
        f"processes together; the worker phase used {own + sum(spent.values()):,.0f} us "
        f"(worker {own:,.0f} + {parts})"
    )
    return lines


def format_report(result: dict[str, Any]) -> str:
    """The table printed at the end (``result`` is what goes into the JSON file)."""
    lines = []
    s = result["settings"]
    lines.append(
        f"input: {s['events']:,} deal events over {s['deals']:,} deals, {s['partitions']} "
        f"partitions; mix: "
        + ", ".join(f"{k.removeprefix('deal.')} {v:,}" for k, v in result["input_mix"].items())
    )
    free = [x for xs in result.get("machine", {}).get("busy_loop_cores_before_phase", {}).values()
            for x in xs]  # fmt: skip
    if free:
        lines.append(
            f"machine: {result['machine']['cpus']} CPUs; a busy loop got {min(free):.2f}-"
            f"{max(free):.2f} of a core before the phases (the rest went to other work)"
        )
    lines.append("")
    lines.append(f"{'phase':<34}{'events':>9}{'seconds':>10}{'events/s':>11}{'CPU':>11}  peak RSS")
    for key, label in (
        ("worker", "worker (revintel run)"),
        ("null", "null pipeline"),
        ("naive", "naive per-event loop (subset)"),
        ("worker_x2", "worker x2, one consumer group"),
    ):
        phase = result["phases"].get(key)
        if phase is None:
            continue
        rss = phase.get("peak_rss_mb")
        cpu = [c for c in phase.get("cpu_share") or [] if c is not None]
        cpu_text = "+".join(f"{c:.2f}" for c in cpu)
        rss_text = "" if not rss else " + ".join(f"{r or 0:.0f}" for r in rss) + " MB"
        lines.append(
            f"{label:<34}{phase['events']:>9,}{phase['seconds']:>10.2f}"
            f"{phase['events_per_s']:>11,.0f}{cpu_text:>11}  {rss_text}"
        )
    naive = result["phases"].get("naive")
    lines.append("  (CPU: cores busy in the process over the window, 1.00 = one core)")
    per_event = [
        f"{key} {us:,.0f} us"
        for key in ("worker", "null", "worker_x2")
        if (us := cpu_us_per_event(result["phases"].get(key))) is not None
    ]
    if per_event:
        lines.append(
            "  CPU per event (cores x seconds / events; steadier than events/s when other "
            "work shares the machine): " + ", ".join(per_event)
        )
    lines.extend(budget_lines(result))
    spread = [
        f"{key} " + ", ".join(f"{x:,.0f}" for x in phase["repeats_events_per_s"])
        for key, phase in result["phases"].items()
        if "repeats_events_per_s" in phase
    ]
    if spread:
        lines.append(
            "  (lower) medians of the repetitions; every run's events/s: " + "; ".join(spread)
        )
    for i, each in enumerate(result["ratios"].get("per_repetition", []), start=1):
        parts = [
            f"{label} {each[key]:.2f}x"
            for key, label in (("worker_over_null", "worker/null"),
                               ("worker_over_naive", "worker/naive"),
                               ("two_over_one", "x2/x1"))
            if each.get(key) is not None
        ]  # fmt: skip
        lines.append(f"  repetition {i}: " + ", ".join(parts))
    if naive:
        lines.append(
            f"  naive: measured on {naive['events']:,} events sampled from the input; "
            f"{s['events']:,} would take ~{s['events'] / naive['events_per_s']:,.0f} s "
            "(extrapolated)"
        )
    lines.append("")
    r, t = result["ratios"], TARGETS
    rows = [
        ("worker / null", r.get("worker_over_null"), f">= {t['worker_over_null']}x", True,
         t["worker_over_null"], "x"),
        ("worker / naive", r.get("worker_over_naive"), f">= {t['worker_over_naive']:.0f}x", True,
         t["worker_over_naive"], "x"),
        ("worker x2 / worker", r.get("two_over_one"), "", None, None, "x"),
        ("worker peak RSS (MB)", r.get("worker_rss_mb"), f"<= {t['rss_mb']:.0f}", False,
         t["rss_mb"], ""),
    ]  # fmt: skip
    latency = result["phases"].get("latency")
    if latency:
        rows.append(("p50 latency to commit (ms)", latency["commit_ms"]["p50"], "", None, None, ""))
        rows.append(
            ("p99 latency to commit (ms)", latency["commit_ms"]["p99"],
             f"<= {t['p99_ms']:.0f}", False, t["p99_ms"], "")
        )  # fmt: skip
    lines.append(f"{'figure':<34}{'measured':>10}  {'target':<10}{'':>7}")
    for label, value, target_text, at_least, target, unit in rows:
        shown = "n/a" if value is None else f"{value:,.2f}{unit}"
        mark = "" if target is None else verdict(value, target, at_least)
        lines.append(f"{label:<34}{shown:>10}  {target_text:<10}{mark:>7}")
    if latency:
        c, a = latency["commit_ms"], latency["applied_at_ms"]
        lines.append("")
        lines.append(
            f"latency phase: {latency['events']:,} events offered at {s['rate']:,}/s for "
            f"{s['seconds']} s (achieved {latency['offered_per_s']:,.0f}/s)"
        )
        lines.append(
            f"  produce -> commit (snapshot poll, +<= {SNAPSHOT_POLL_SECONDS * 1000:.0f} ms): "
            f"p50 {c['p50']:.0f} ms, p90 {c['p90']:.0f} ms, p99 {c['p99']:.0f} ms, "
            f"max {c['max']:.0f} ms"
        )
        lines.append(
            f"  produce -> applied_at (transaction start): p50 {a['p50']:.0f} ms, "
            f"p99 {a['p99']:.0f} ms"
        )
        lines.append(
            f"  CPU: worker {latency.get('worker_cpu_share') or 0:.2f} cores, this benchmark's "
            f"producer and poller {latency.get('bench_cpu_share_while_offering') or 0:.2f}"
        )
        drain = latency.get("drain_seconds")
        if drain is not None and drain > 1.0:
            lines.append(
                f"  OVERLOADED: the last event committed {drain:,.1f} s after the offer ended "
                f"(committed {latency['committed_per_s']:,.0f}/s): the worker fell behind "
                "the offered rate, so these latencies are mostly its queue"
            )
    profile = result.get("profiles", {}).get("worker", {})
    if profile.get("samples"):
        lines.append("")
        lines.append(
            f"worker profile (py-spy, {profile['samples']:,} samples from the first applied "
            "event on): share of samples under each of the project's functions"
        )
        for frame, pct in profile["project_inclusive_pct"][:15]:
            lines.append(f"  {pct:5.1f} %  {frame}")
    return "\n".join(lines)


# -- input --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    event_id: str
    type: str
    key: bytes
    value: bytes


def make_input(events: int, deals: int, seed: int) -> list[Record]:
    """``events`` seed events over ``deals`` deals, in time order (see the module docstring)."""
    from worker.testdata.seed import generate_deals

    histories: dict[str, list[Any]] = {}
    for event in generate_deals(deals, seed, AS_OF):  # sorted by (time, id)
        histories.setdefault(event.subject, []).append(event)
    try:
        chosen = take_round_robin(list(histories.values()), events)
    except ValueError as exc:
        raise SystemExit(f"{exc}: raise --deals or lower --events") from None
    chosen.sort(key=lambda e: (e.time, e.id))
    return [Record(e.id, e.type, e.subject.encode(), e.model_dump_json().encode()) for e in chosen]


# -- services -----------------------------------------------------------------------------


def services() -> tuple[str, str]:
    database = os.environ.get(
        "DATABASE_URL", "postgresql://revintel:revintel@127.0.0.1:5432/revintel"
    )
    return database, os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@dataclass
class Names:
    """The topics and group of one phase (everything under one prefix, deleted afterwards)."""

    prefix: str

    @property
    def deal_topic(self) -> str:
        return f"{self.prefix}.deal-events"

    @property
    def group(self) -> str:
        return f"{self.prefix}-group"

    def worker_env(self, database_url: str, bootstrap: str, partitions: int, forecast: bool):
        p = self.prefix
        return {
            **os.environ,
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REVINTEL_DEAL_TOPIC": self.deal_topic,
            "REVINTEL_ACCOUNT_TOPIC": f"{p}.account-events",
            "REVINTEL_ALERTS_TOPIC": f"{p}.alerts",
            "REVINTEL_FORECASTS_TOPIC": f"{p}.forecasts",
            "REVINTEL_METRICS_TOPIC": f"{p}.metrics",
            "REVINTEL_SOURCE_TOPICS": json.dumps(
                {
                    f"{p}.hubspot": "hubspot",
                    f"{p}.salesforce": "salesforce",
                    f"{p}.pipedrive": "pipedrive",
                }
            ),
            "REVINTEL_CONSUMER_GROUP": self.group,
            "REVINTEL_TOPIC_PARTITIONS": str(partitions),
            "REVINTEL_FORECAST_ENABLED": "true" if forecast else "false",
            "REVINTEL_HTTP_PORT": "0",  # any free port: two workers run side by side
            "REVINTEL_LOG_JSON": "true",
        }


@contextlib.asynccontextmanager
async def phase_resources(
    name: str, run_id: str, partitions: int
) -> AsyncIterator[tuple[Names, str]]:
    """A fresh database and a deal topic of ``partitions`` partitions; both gone on exit."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from tests.services import fresh_database

    database, bootstrap = services()
    names = Names(f"bench.tp{run_id}{uuid.uuid4().hex[:4]}.{name}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names.deal_topic, partitions, 1)])
        async with fresh_database(database, "revintel_bench") as url:
            yield names, url
    finally:
        with contextlib.suppress(Exception):
            ours = [t for t in await admin.list_topics() if t.startswith(names.prefix + ".")]
            if ours:
                await admin.delete_topics(ours)
        await admin.close()


async def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> float:
    """Send ``records`` (acks=all) and wait for every acknowledgement; returns the seconds."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for r in records:
            pending.append(await producer.send(topic, r.value, key=r.key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


# -- processes ----------------------------------------------------------------------------


@dataclass
class Proc:
    """A contender running as a process of its own, its output in a log file."""

    label: str
    popen: subprocess.Popen
    log_path: Path
    max_rss_kb: int = 0
    peak_rss_kb: int | None = None
    rss_at_first_kb: int | None = None
    cpu_at_first: float | None = None
    cpu_at_end: float | None = None

    @classmethod
    def spawn(cls, label: str, args: list[str], env: dict[str, str], logs: Path) -> Proc:
        log_path = logs / f"{label}.log"
        n = 1
        while log_path.exists():  # a repetition
            n += 1
            log_path = logs / f"{label}.{n}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        return cls(label, popen, log_path)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (/proc/<pid>/stat), or None."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_share(self) -> float | None:
        """CPU used between the first applied event and the end, per second of that window
        (1.0 = one core busy), as seen by the polls."""
        if self.cpu_at_first is None or self.cpu_at_end is None or self.window is None:
            return None
        if self.window < 1.0:
            return None  # too short to say (polls every 0.25 s, CPU time in clock ticks)
        return (self.cpu_at_end - self.cpu_at_first) / max(self.window, 1e-9)

    window: float | None = None

    def status(self, field_name: str) -> int | None:
        """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM), or None once it is gone."""
        try:
            text = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        return None

    def sample(self) -> None:
        rss = self.status("VmRSS")
        if rss:
            self.max_rss_kb = max(self.max_rss_kb, rss)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.label} exited with status {self.popen.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, within: float = 60.0) -> None:
        """Record the peak RSS, then SIGTERM (this process only), SIGKILL after ``within``."""
        self.peak_rss_kb = self.status("VmHWM")
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, within)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    @property
    def peak_rss_mb(self) -> float | None:
        """The kernel's high-water mark of the process (VmHWM), read just before the stop;
        failing that, the largest VmRSS sampled while it ran."""
        kb = self.peak_rss_kb or self.max_rss_kb or None
        return None if kb is None else kb / 1024

    def batch_stats(self) -> dict[str, float]:
        """From the worker's JSON log: its batches, the records they held, their mean ms."""
        batches, records, duplicates, ms = 0, 0, 0, 0.0
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if '"batch_applied"' not in line:
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    batches += 1
                    records += int(entry.get("records", 0))
                    duplicates += int(entry.get("duplicates", 0))
                    ms += float(entry.get("ms", 0.0))
        return {
            "batches": batches,
            "records": records,
            # redelivered after a rebalance (the worker's subscribers join one by one at start)
            "duplicates": duplicates,
            "mean_batch_records": records / batches if batches else 0.0,
            "mean_batch_ms": ms / batches if batches else 0.0,
        }


SERVICE_PROCESSES = {"postgres": "postgresql", "java": "kafka"}  # process name -> service


def services_cpu_seconds(proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL and Kafka running on this machine (as
    scripts/services.sh runs them): PostgreSQL's postmaster with its ended backends (reaped
    into its children's time) and its live processes; Kafka's JVM. Empty when neither runs
    here (a remote database or broker: nothing to measure)."""
    seen: dict[int, tuple[int, str, list[int]]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in SERVICE_PROCESSES:
            fields = text[text.rindex(")") + 2 :].split()
            seen[int(entry.name)] = (int(fields[1]), name, [int(x) for x in fields[11:15]])
    ticks: dict[str, int] = {}
    for ppid, name, (utime, stime, cutime, cstime) in seen.values():
        own = utime + stime
        parent = seen.get(ppid)
        if name == "postgres" and (parent is None or parent[1] != "postgres"):
            own += cutime + cstime  # the postmaster: its ended backends too
        service = SERVICE_PROCESSES[name]
        ticks[service] = ticks.get(service, 0) + own
    return {k: v / os.sysconf("SC_CLK_TCK") for k, v in ticks.items()}


@dataclass
class ServicesCpu:
    """The services' CPU over a phase's window (``start`` at the first applied event, ``stop``
    when all are applied): it includes this benchmark's own polling of both."""

    at_start: dict[str, float] = field(default_factory=dict)
    at_stop: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self.at_start = services_cpu_seconds()

    def stop(self) -> None:
        self.at_stop = services_cpu_seconds()

    def used(self) -> dict[str, float]:
        return {k: v - self.at_start[k] for k, v in self.at_stop.items() if k in self.at_start}


def worker_proc(label: str, env: dict[str, str], logs: Path) -> Proc:
    return Proc.spawn(label, ["-m", "worker.cli", "run", "--no-migrate"], env, logs)


def role_proc(role: str, names: Names, url: str, bootstrap: str, logs: Path) -> Proc:
    args = [
        str(Path(__file__).resolve()), "--role", role, "--topic", names.deal_topic,
        "--group", names.group, "--database-url", url, "--bootstrap", bootstrap,
    ]  # fmt: skip
    return Proc.spawn(role, args, dict(os.environ), logs)


class Committed:
    """How many records of a topic a group has committed (its offsets summed, the topic holding
    only this phase's records): progress read from the broker, so the polls put no load on the
    database under test. Every contender commits offsets only after its database commit."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.group = group
        self.partitions = [TopicPartition(topic, p) for p in range(partitions)]

    async def __aenter__(self) -> Committed:
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()

    async def __call__(self) -> int:
        offsets = await self.admin.list_consumer_group_offsets(
            self.group, partitions=self.partitions
        )
        return sum(max(0, o.offset) for o in offsets.values())


async def expect_rows(pool: Any, query: str, expected: int) -> None:
    """The database holds what the committed offsets say (checked once, at the end)."""
    found = await pool.fetchval(query)
    if found != expected:
        raise AssertionError(f"{query}: {found:,}, expected {expected:,}")


async def wait_for_count(
    count: Callable[[], Awaitable[int]],
    expected: int,
    procs: Sequence[Proc],
    within: float,
    on_first: Callable[[], None] | None = None,
) -> float:
    """Poll ``count`` until it reaches ``expected``; returns the wall time (epoch seconds) it
    was first seen there. Samples the processes' RSS meanwhile, notes it when the count is
    first above 0 (start-up done) and calls ``on_first`` then."""
    deadline = time.monotonic() + within
    started = False
    while True:
        count_now = await count()
        seen_at = time.time()
        for p in procs:
            p.sample()
        if count_now and not started:
            started = True
            for p in procs:
                p.rss_at_first_kb = p.status("VmRSS")
                p.cpu_at_first = p.cpu_seconds()
                p.window = -seen_at
            if on_first is not None:
                on_first()
        if count_now >= expected:
            for p in procs:
                p.cpu_at_end = p.cpu_seconds()
                if p.window is not None:
                    p.window += seen_at
            return seen_at
        for p in procs:
            p.check_alive()
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.label}\n{p.tail()}" for p in procs)
            raise TimeoutError(f"{count_now:,} of {expected:,} after {within:.0f} s\n{tails}")
        await asyncio.sleep(COUNT_POLL_SECONDS)


async def wait_settled(bootstrap: str, group: str, proc: Proc, within: float) -> None:
    """Until the worker logged ``worker_started`` and its group is Stable three polls in a row
    (half a second apart)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + within
    stable = 0
    try:
        while stable < 3:
            proc.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} not settled after {within:.0f} s")
            started = '"worker_started"' in proc.log_path.read_text(errors="replace")
            (described,) = await admin.describe_consumer_groups([group])
            states = [g["state"] for g in described.to_object()["groups"]]
            stable = stable + 1 if started and states == ["Stable"] else 0
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def table_scans(url: str) -> dict[str, dict[str, int]]:
    """Sequential and index scans of the worker's busiest tables over the phase (the stopped
    worker's backends have flushed their statistics): how its lookups were planned."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await asyncio.sleep(0.5)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = await conn.fetch(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_live_tup, "
            "coalesce(last_autoanalyze, last_analyze) IS NOT NULL AS analyzed "
            "FROM pg_stat_user_tables WHERE relname = ANY($1::text[])",
            ["applied_events", "deals", "deal_stage_history", "alert_outbox"],
        )
    finally:
        await conn.close()
    return {r["relname"]: {k: r[k] for k in list(r.keys())[1:]} for r in rows}


def rate(events: int, start: float, end: float) -> dict[str, Any]:
    seconds = max(end - start, 1e-9)
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds}


# -- phases -------------------------------------------------------------------------------


async def phase_worker(ctx: Context, processes: int = 1, name: str = "worker") -> dict[str, Any]:
    """``processes`` workers in one group on the pre-produced input, until all is applied."""
    import asyncpg

    async with phase_resources(name, ctx.run_id, ctx.args.partitions) as (names, url):
        await produce(ctx.bootstrap, names.deal_topic, ctx.records)
        env = names.worker_env(url, ctx.bootstrap, ctx.args.partitions, ctx.args.forecast)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        procs = [worker_proc(f"{name}-{i}", env, ctx.logs) for i in range(processes)]
        profiler: list[subprocess.Popen] = []

        services = ServicesCpu()

        def profile() -> None:  # from the first applied event on: start-up left out
            services.start()
            if processes == 1 and ctx.args.profile and ctx.repetition == 0:
                profiler.append(ctx.start_profiler(procs[0], name))

        committed = Committed(ctx.bootstrap, names.group, names.deal_topic, ctx.args.partitions)
        try:
            async with committed:
                end = await wait_for_count(
                    committed, len(ctx.records), procs, ctx.args.timeout, on_first=profile
                )
            services.stop()
            await expect_rows(pool, "SELECT count(*) FROM applied_events", len(ctx.records))
            start = (
                await pool.fetchval(
                    "SELECT extract(epoch FROM min(applied_at)) FROM applied_events"
                )
            ) or end
            outcomes = dict(
                await pool.fetch("SELECT outcome, count(*) FROM applied_events GROUP BY 1")
            )
            alerts = await pool.fetchval("SELECT count(*) FROM alert_outbox")
        finally:
            for p in procs:
                await p.stop()
            await pool.close()
        scans = await table_scans(url)
        for running in profiler:
            await asyncio.to_thread(ctx.stop_profiler, running, name)
        result = rate(len(ctx.records), float(start), end)
        result.update(
            peak_rss_mb=[p.peak_rss_mb for p in procs],
            rss_at_first_event_mb=[(p.rss_at_first_kb or 0) / 1024 for p in procs],
            cpu_share=[p.cpu_share() for p in procs],
            max_sampled_rss_mb=[p.max_rss_kb / 1024 for p in procs],
            outcomes=outcomes,
            alerts=alerts,
            per_process=[p.batch_stats() for p in procs],
            table_scans=scans,
            services_cpu_s=services.used(),
            cpu_window_s=procs[0].window,
        )
        return result


async def phase_role(ctx: Context, role: str, records: Sequence[Record]) -> dict[str, Any]:
    """The null pipeline or the naive loop, as a process of its own, on ``records``."""
    import asyncpg

    count, first = {
        "null": (
            "SELECT count(*) FROM bench_raw_events",
            "SELECT extract(epoch FROM min(copied_at)) FROM bench_raw_events",
        ),
        "naive": (
            "SELECT coalesce(sum(events), 0) FROM bench_naive_deals",
            "SELECT extract(epoch FROM min(created_at)) FROM bench_naive_deals",
        ),
    }[role]
    async with phase_resources(role, ctx.run_id, ctx.args.partitions) as (names, url):
        await produce(ctx.bootstrap, names.deal_topic, records)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        await pool.execute(ROLE_TABLES)
        proc = role_proc(role, names, url, ctx.bootstrap, ctx.logs)
        committed = Committed(ctx.bootstrap, names.group, names.deal_topic, ctx.args.partitions)
        try:
            services = ServicesCpu()
            async with committed:
                end = await wait_for_count(
                    committed, len(records), [proc], ctx.args.timeout, on_first=services.start
                )
            services.stop()
            await expect_rows(pool, count, len(records))
            start = (await pool.fetchval(first)) or end
        finally:
            await proc.stop()
            await pool.close()
        result = rate(len(records), float(start), end)
        result["peak_rss_mb"] = [proc.peak_rss_mb]
        result["max_sampled_rss_mb"] = [proc.max_rss_kb / 1024]
        result["cpu_share"] = [proc.cpu_share()]
        result["services_cpu_s"] = services.used()
        result["cpu_window_s"] = proc.window
        return result


async def phase_latency(ctx: Context) -> dict[str, Any]:
    """A warmed-up worker fed at a fixed rate; latency from produce to commit."""
    import asyncpg
    from aiokafka import AIOKafkaProducer

    a = ctx.args
    total = a.rate * a.seconds
    print(f"  building {total:,} more events for the latency phase ...", flush=True)
    warmup = make_input(WARMUP_EVENTS, WARMUP_EVENTS // 5, a.seed + 1000)
    offered = make_input(total, max(1, total // 5), a.seed + 1)
    # This process's own collector must not stall the snapshot poller nor the producer: the
    # input (a million objects) frozen out of its reach, and no collection while offering
    # (measured: full collections of up to 1.6 s in the offered window, each a gap in the
    # polls that moved commits seen later than they were)
    gc.collect()
    gc.freeze()
    async with phase_resources("latency", ctx.run_id, a.partitions) as (names, url):
        env = names.worker_env(url, ctx.bootstrap, a.partitions, a.forecast)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        proc = worker_proc("latency-worker", env, ctx.logs)
        poller_conn = await asyncpg.connect(url)
        # a few ms of linger, as a busy producer would: fewer requests for the broker that
        # shares the machine (the wait is inside the measured latency)
        producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        polls: list[tuple[float, int, frozenset[int]]] = []
        stop_polling = asyncio.Event()

        async def poll_snapshots() -> None:
            while not stop_polling.is_set():
                before = time.time()
                text = await poller_conn.fetchval("SELECT pg_current_snapshot()::text")
                after = time.time()
                _, xmax, xip = parse_snapshot(text)
                polls.append(((before + after) / 2, xmax, xip))
                await asyncio.sleep(SNAPSHOT_POLL_SECONDS)

        sent_at: dict[str, float] = {}
        poller = None
        committed = Committed(ctx.bootstrap, names.group, names.deal_topic, a.partitions)
        try:
            await committed.__aenter__()
            await produce(ctx.bootstrap, names.deal_topic, warmup[: len(warmup) // 2])
            await wait_for_count(committed, len(warmup) // 2, [proc], a.timeout)
            # every subscriber of the worker in the group, and the group settled: no start-up
            # rebalance inside the measurement
            await wait_settled(ctx.bootstrap, names.group, proc, a.timeout)
            await produce(ctx.bootstrap, names.deal_topic, warmup[len(warmup) // 2 :])
            await wait_for_count(committed, len(warmup), [proc], a.timeout)
            if a.analyze:
                # statistics of the warmed-up (small) tables: the plans the worker then caches
                # scan them sequentially, so its batches slow down as they grow
                await pool.execute("ANALYZE")
            poller = asyncio.create_task(poll_snapshots())
            gc.disable()
            pending = []
            started = time.time()
            bench_cpu = time.process_time()
            worker_cpu = proc.cpu_seconds() or 0.0
            i = 0
            while i < len(offered):
                due = min(len(offered), int((time.time() - started) * a.rate) + 1)
                while i < due:
                    r = offered[i]
                    now = time.time()
                    sent_at[r.event_id] = now
                    pending.append(
                        await producer.send(
                            names.deal_topic, r.value, key=r.key, timestamp_ms=int(now * 1000)
                        )
                    )
                    i += 1
                await asyncio.sleep(0.005)
            offered_seconds = time.time() - started
            bench_cpu = (time.process_time() - bench_cpu) / offered_seconds
            await asyncio.gather(*pending)
            done_at = await wait_for_count(committed, len(warmup) + len(offered), [proc], a.timeout)
            worker_cpu = ((proc.cpu_seconds() or 0.0) - worker_cpu) / (done_at - started)
            await asyncio.sleep(0.05)  # one more snapshot after the last commit
            stop_polling.set()
            await poller
            rows = await pool.fetch(
                "SELECT event_id, extract(epoch FROM applied_at) AS at, xmin::text::bigint AS xid "
                "FROM applied_events"
            )
            if len(rows) != len(warmup) + len(offered):
                raise AssertionError(f"{len(rows):,} applied, {len(warmup) + len(offered):,} sent")
        finally:
            gc.enable()
            stop_polling.set()
            if poller is not None:
                with contextlib.suppress(Exception):
                    await poller
            with contextlib.suppress(Exception):
                await committed.__aexit__()
            await producer.stop()
            await poller_conn.close()
            await proc.stop()
            await pool.close()
        scans = await table_scans(url)
    reference = polls[0][1]
    commit_ms, applied_ms, unseen, last_commit = [], [], 0, 0.0
    for row in rows:
        produced = sent_at.get(row["event_id"])
        if produced is None:
            continue  # a warm-up event
        applied_ms.append((float(row["at"]) - produced) * 1000)
        seen = first_completed(widen_xid(row["xid"], reference), polls)
        if seen is None:
            unseen += 1
            continue
        commit_ms.append((seen - produced) * 1000)
        last_commit = max(last_commit, seen)
    return {
        "events": len(offered),
        "offered_per_s": len(offered) / offered_seconds,
        # > 0 by more than a batch or two: the worker fell behind the offered rate, and the
        # latency is mostly the queue it built
        "drain_seconds": last_commit - (started + offered_seconds) if last_commit else None,
        "committed_per_s": len(offered) / (last_commit - started) if last_commit else None,
        # CPU per second (1.0 = one core): the worker from the offer's start to the last
        # commit; this benchmark process (producer and poller) while it offered
        "worker_cpu_share": worker_cpu,
        "bench_cpu_share_while_offering": bench_cpu,
        "commit_ms": summary(commit_ms),
        "applied_at_ms": summary(applied_ms),
        "commits_not_seen": unseen,
        "snapshot_polls": len(polls),
        "peak_rss_mb": [proc.peak_rss_mb],
        "per_process": [proc.batch_stats()],
        "table_scans": scans,
    }


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "min": min(values),
    }


# -- the roles: null pipeline and naive loop (run as `--role null|naive`) -------------------

ROLE_TABLES = """
CREATE TABLE IF NOT EXISTS bench_raw_events (
    topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL, key text,
    event_id text, type text, body jsonb NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bench_naive_deals (
    deal_id text PRIMARY KEY, last_event_id text NOT NULL, last_event_type text NOT NULL,
    last_event_time timestamptz NOT NULL, data jsonb NOT NULL, events integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now()
);
"""
NAIVE_UPSERT = """
INSERT INTO bench_naive_deals AS d
    (deal_id, last_event_id, last_event_type, last_event_time, data, events)
VALUES ($1, $2, $3, $4, $5::jsonb, 1)
ON CONFLICT (deal_id) DO UPDATE SET
    last_event_id = EXCLUDED.last_event_id, last_event_type = EXCLUDED.last_event_type,
    last_event_time = EXCLUDED.last_event_time, data = d.data || EXCLUDED.data,
    events = d.events + 1, updated_at = now()
"""


async def run_role(args: argparse.Namespace) -> int:
    import asyncpg
    from aiokafka import AIOKafkaConsumer, TopicPartition

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    conn = await asyncpg.connect(args.database_url)
    await consumer.start()
    handle: Callable[..., Any] = null_batch
    if args.role == "naive":
        from schemas.deal_events import DealEventAdapter

        handle = naive_batch(DealEventAdapter, TopicPartition)
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(
                timeout_ms=args.batch_timeout_ms, max_records=args.batch_size
            )
            records = [r for recs in batch.values() for r in recs]
            if records:
                await handle(consumer, conn, records)
    finally:
        await consumer.stop()
        await conn.close()
    return 0


async def null_batch(consumer: Any, conn: Any, records: list[Any]) -> None:
    rows = []
    for r in records:
        body = json.loads(r.value)
        rows.append(
            (r.topic, r.partition, r.offset, r.key.decode() if r.key else None,
             body.get("id"), body.get("type"), r.value.decode())
        )  # fmt: skip
    await conn.copy_records_to_table(
        "bench_raw_events",
        records=rows,
        columns=["topic", "partition", "offset", "key", "event_id", "type", "body"],
    )
    await consumer.commit()


def naive_batch(adapter: Any, topic_partition: Any) -> Callable[..., Any]:
    async def handle(consumer: Any, conn: Any, records: list[Any]) -> None:
        for r in records:
            event = adapter.validate_json(r.value)
            data = event.data.model_dump_json(exclude_none=True)
            await conn.execute(NAIVE_UPSERT, event.subject, event.id, event.type, event.time, data)
            await consumer.commit({topic_partition(r.topic, r.partition): r.offset + 1})

    return handle


# -- the run ------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    records: list[Record]
    bootstrap: str
    logs: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    repetition: int = 0
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start_profiler(self, proc: Proc, name: str) -> subprocess.Popen:
        out = self.logs / f"{name}.pyspy.txt"
        self.profiles[name] = {"raw": str(out)}
        return subprocess.Popen(
            [self.args.profile, "record", "--pid", str(proc.popen.pid), "--rate", "100",
             "--format", "raw", "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop_profiler(self, profiler: subprocess.Popen, name: str) -> None:
        # py-spy stops by itself when the profiled process exits; give it time to write
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
        raw = Path(self.profiles[name]["raw"])
        if raw.exists():
            self.profiles[name].update(hot_spots(raw.read_text().splitlines()))


def git_state() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(
                ["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        return ""

    return {
        "head": run("rev-parse", "HEAD"),
        "worker_uncommitted_changes": bool(run("status", "--porcelain", "--", "worker", "sql")),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from worker.log import configure_logging

    configure_logging("WARNING", json=False)
    _, bootstrap = services()
    started = time.perf_counter()
    print(f"building {args.events:,} events over {args.deals:,} deals ...", flush=True)
    records = make_input(args.events, args.deals, args.seed)
    mix = Counter(r.type for r in records)
    logs = Path(tempfile.mkdtemp(prefix="bench_throughput_"))
    ctx = Context(args, records, bootstrap, logs)
    stride = max(1, len(records) // args.naive_events)
    naive_records = records[::stride][: args.naive_events]
    phases: dict[str, Any] = {}
    load: dict[str, list[float]] = {}  # 1-minute load average before each run
    plan: list[tuple[str, Callable[[], Any]]] = [
        ("worker", lambda: phase_worker(ctx)),
        ("null", lambda: phase_role(ctx, "null", records)),
        ("naive", lambda: phase_role(ctx, "naive", naive_records)),
        ("worker_x2", lambda: phase_worker(ctx, processes=2, name="worker_x2")),
        ("latency", lambda: phase_latency(ctx)),
    ]
    runs: dict[str, list[dict[str, Any]]] = {}
    free_cpu: dict[str, list[float]] = {}
    for repetition in range(args.repeat):
        ctx.repetition = repetition
        for name, run in plan:
            if name in args.skip or (name == "latency" and repetition < args.repeat - 1):
                continue
            free = await asyncio.to_thread(cpu_probe)
            free_cpu.setdefault(name, []).append(round(free, 2))
            load.setdefault(name, []).append(round(os.getloadavg()[0], 2))
            print(f"phase {name} (a busy loop gets {free:.2f} of a core now) ...", flush=True)
            runs.setdefault(name, []).append(await run())
            p = runs[name][-1]
            print(f"  {p.get('events_per_s', p.get('offered_per_s', 0)):,.0f} events/s", flush=True)
    for name, done in runs.items():
        phases[name] = median_run(done)
    ratios = compute_ratios(phases)
    if args.repeat > 1:  # each repetition's ratios: its phases ran minutes apart, not hours
        ratios["per_repetition"] = [
            compute_ratios({name: done[i] for name, done in runs.items() if i < len(done)})
            for i in range(args.repeat)
        ]
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "events": args.events,
            "deals": args.deals,
            "partitions": args.partitions,
            "rate": args.rate,
            "seconds": args.seconds,
            "naive_events": len(naive_records),
            "seed": args.seed,
            "batch_size": args.batch_size,
            "batch_timeout_ms": args.batch_timeout_ms,
            "forecast_job": args.forecast,
            "repeat": args.repeat,
            "latency_phase_analyze_after_warmup": args.analyze,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before_phase": load,
            "busy_loop_cores_before_phase": free_cpu,
        },
        "git": git_state(),
        "input_mix": dict(mix.most_common()),
        "phases": phases,
        "ratios": ratios,
        "targets": TARGETS,
        "latency_measured_to": "the commit of the worker's transaction (pg_current_snapshot "
        "polled every 10 ms, first snapshot seeing the row's xmin completed); applied_at_ms is "
        "applied_events.applied_at = now() = the transaction's start",
        "profiles": ctx.profiles,
        "logs": str(logs),
        "wall_seconds": time.perf_counter() - started,
    }
    return result


def cpu_probe(seconds: float = 1.0) -> float:
    """The share of a core a busy loop gets now (1.0: a core is free for it): how loaded the
    machine is by everything else."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def median_run(done: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median events/s, with every run's events/s beside it."""
    key = "events_per_s" if "events_per_s" in done[0] else "offered_per_s"
    ordered = sorted(done, key=lambda r: r[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(done) > 1:
        chosen["repeats_events_per_s"] = [r[key] for r in done]
    return chosen


def finish(result: dict[str, Any], path: str) -> int:
    """Print the table, write the JSON; 1 when a target is missed."""
    print()
    print(format_report(result))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nJSON: {out}   logs: {result['logs']}")
    return 0 if all_met(result) else 1


def compute_ratios(phases: dict[str, Any]) -> dict[str, float | None]:
    def eps(name: str) -> float | None:
        return phases[name]["events_per_s"] if name in phases else None

    worker, null, naive, two = eps("worker"), eps("null"), eps("naive"), eps("worker_x2")
    rss = phases.get("worker", {}).get("peak_rss_mb") or [None]
    return {
        "worker_over_null": worker / null if worker and null else None,
        "worker_over_naive": worker / naive if worker and naive else None,
        "two_over_one": two / worker if worker and two else None,
        "worker_rss_mb": rss[0],
    }


def all_met(result: dict[str, Any]) -> bool:
    r = result["ratios"]
    checks = [
        verdict(r["worker_over_null"], TARGETS["worker_over_null"], True),
        verdict(r["worker_over_naive"], TARGETS["worker_over_naive"], True),
        verdict(r["worker_rss_mb"], TARGETS["rss_mb"], False),
    ]
    latency = result["phases"].get("latency")
    if latency and latency["commit_ms"].get("count"):
        checks.append(verdict(latency["commit_ms"]["p99"], TARGETS["p99_ms"], False))
    return "MISSED" not in checks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--deals", type=int, help="default: events / 5")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=int, default=2_000, help="latency phase, events/s")
    parser.add_argument("--seconds", type=int, default=60, help="latency phase duration")
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=900.0, help="per wait, seconds")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "throughput.json"))
    parser.add_argument("--forecast", action="store_true", help="keep the forecast job on")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="latency phase: ANALYZE after the warm-up (statistics of the small warmed-up "
        "tables; measured to make the worker's cached plans sequential scans)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the throughput phases R times, keep medians"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["worker", "null", "naive", "worker_x2", "latency"]
    )
    parser.add_argument("--profile", metavar="PY_SPY", help="py-spy binary: profile phase 1")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3,000 events, 2 s at 500/s, naive 200"
    )
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=["null", "naive"], help=hidden)
    parser.add_argument("--topic", help=hidden)
    parser.add_argument("--group", help=hidden)
    parser.add_argument("--database-url", help=hidden)
    parser.add_argument("--bootstrap", help=hidden)
    args = parser.parse_args(argv)
    # the null and naive pipelines poll as the worker will run (REVINTEL_BATCH_SIZE,
    # REVINTEL_BATCH_TIMEOUT_MS or its defaults): they inherit this environment
    from worker.settings import Settings

    worker = Settings()
    args.batch_size, args.batch_timeout_ms = worker.batch_size, worker.batch_timeout_ms
    if args.quick:
        args.events, args.rate, args.seconds, args.naive_events = 3_000, 500, 2, 200
        args.timeout = min(args.timeout, 180.0)
    if args.deals is None:
        args.deals = max(1, args.events // 5)
    args.naive_events = max(1, min(args.naive_events, args.events))
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.role:
        sys.exit(asyncio.run(run_role(arguments)))
    sys.exit(finish(asyncio.run(main(arguments)), arguments.json))
