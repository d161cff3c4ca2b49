"""Pure checks of bench/bench_throughput.py (no services): percentiles, the input selection,
the commit-time lookup and the report. Not in the suite's testpaths; run it with

    .venv/bin/pytest bench/test_bench_throughput.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_throughput import (
    budget_lines,
    compute_ratios,
    cpu_us_per_event,
    first_completed,
    format_report,
    hot_spots,
    parse_snapshot,
    percentile,
    services_cpu_seconds,
    services_us_per_event,
    take_round_robin,
    widen_xid,
)


def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 99) == pytest.approx(4.96)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_round_robin_keeps_a_prefix_of_every_history() -> None:
    histories = [["a0", "a1", "a2"], ["b0"], ["c0", "c1"]]
    assert take_round_robin(histories, 4) == ["a0", "b0", "c0", "a1"]
    assert sorted(take_round_robin(histories, 6)) == sorted(x for h in histories for x in h)
    with pytest.raises(ValueError):
        take_round_robin(histories, 7)


def test_commit_seen_at_the_first_snapshot_without_it_in_progress() -> None:
    assert parse_snapshot("100:105:101,103") == (100, 105, frozenset({101, 103}))
    assert parse_snapshot("7:7:") == (7, 7, frozenset())
    polls = [
        (1.0, 102, frozenset({101})),  # 103 not started yet, 101 running
        (2.0, 105, frozenset({101, 103})),
        (3.0, 106, frozenset({103})),  # 101 done
        (4.0, 107, frozenset()),
    ]
    assert first_completed(101, polls) == 3.0
    assert first_completed(103, polls) == 4.0
    assert first_completed(100, polls) == 1.0
    assert first_completed(200, polls) is None
    epoch = 3 << 32
    assert widen_xid(5, epoch + 10) == epoch + 5
    assert widen_xid(0xFFFFFFF0, epoch + 10) == epoch - 16  # just before the epoch wrapped


def test_report_shows_ratios_and_targets() -> None:
    phases = {
        "worker": {
            "events": 1000,
            "seconds": 0.5,
            "events_per_s": 2000.0,
            "peak_rss_mb": [120],
            "cpu_share": [0.4],
        },
        "null": {"events": 1000, "seconds": 0.1, "events_per_s": 10000.0, "peak_rss_mb": [40]},
        "naive": {"events": 100, "seconds": 1.0, "events_per_s": 100.0, "peak_rss_mb": [40]},
        "latency": {
            "events": 500,
            "offered_per_s": 499.0,
            "commit_ms": {"p50": 50.0, "p90": 80.0, "p99": 150.0, "max": 170.0},
            "applied_at_ms": {"p50": 30.0, "p99": 120.0},
        },
    }
    result = {
        "settings": {"events": 1000, "deals": 200, "partitions": 6, "rate": 500, "seconds": 1},
        "input_mix": {"deal.created": 200, "deal.activity_logged": 800},
        "phases": phases,
        "ratios": compute_ratios(phases),
    }
    text = format_report(result)
    assert "0.20x" in text and "MISSED" in text  # worker / null against >= 0.6x
    assert "20.00x" in text  # worker / naive, met
    assert "p99 150 ms" in text
    assert "1,000 would take ~10 s (extrapolated)" in text
    assert "CPU per event" in text and "worker 200 us" in text  # 0.4 cores x 0.5 s / 1,000


def test_cpu_per_event_adds_the_processes_and_needs_a_measure() -> None:
    two = {"events": 2000, "seconds": 2.0, "cpu_share": [0.25, None, 0.5]}
    assert cpu_us_per_event(two) == pytest.approx(750.0)  # 0.75 cores x 2 s / 2,000
    assert cpu_us_per_event({"events": 10, "seconds": 1.0, "cpu_share": [None]}) is None
    assert cpu_us_per_event(None) is None


def test_the_budget_is_the_machine_s_cpu_at_the_target_rate() -> None:
    phases = {
        "worker": {
            "events": 10_000,
            "seconds": 2.0,
            "events_per_s": 5000.0,
            "cpu_share": [0.5],  # 100 us an event
            "services_cpu_s": {"postgresql": 0.8, "kafka": 0.2},
            "cpu_window_s": 2.0,  # 80 and 20 us an event
        },
        "null": {"events": 10_000, "seconds": 0.5, "events_per_s": 20_000.0},
    }
    assert services_us_per_event(phases["worker"]) == pytest.approx(
        {"postgresql": 80.0, "kafka": 20.0}
    )
    text = "\n".join(budget_lines({"phases": phases, "machine": {"cpus": 2}}))
    # 0.6 x 20,000 = 12,000 events/s: 2 CPUs / 12,000 = 167 us an event, against 200 used
    assert "12,000 events/s, at most 167 us" in text
    assert "used 200 us (worker 100 + kafka 20 + postgresql 80)" in text
    assert budget_lines({"phases": {"null": phases["null"]}, "machine": {"cpus": 2}}) == []
    short = {**phases["worker"], "cpu_window_s": 0.5}  # too short a window to say
    assert services_us_per_event(short) == {}


def test_services_cpu_counts_the_postmaster_s_ended_backends(tmp_path: Path) -> None:
    def stat(pid: int, name: str, ppid: int, times: tuple[int, int, int, int]) -> None:
        (tmp_path / str(pid)).mkdir()
        fields = ["S", str(ppid), *["0"] * 9, *map(str, times), "0"]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(fields)}\n")

    tick = os.sysconf("SC_CLK_TCK")
    stat(10, "postgres", 1, (tick, tick, 3 * tick, tick))  # postmaster: 2 s, 4 s reaped
    stat(11, "postgres", 10, (tick, 0, 50 * tick, 0))  # a backend: 1 s (no reaped time)
    stat(20, "java", 1, (2 * tick, tick, 0, 0))
    stat(30, "python3", 1, (99 * tick, 0, 0, 0))
    (tmp_path / "self").mkdir()
    assert services_cpu_seconds(tmp_path) == {"postgresql": 7.0, "kafka": 3.0}


def test_hot_spots_counts_a_function_once_per_stack() -> None:
    raw = [
        "main (worker/a.py:1);handle (worker/b.py:2);score (worker/c.py:3) 5",
        "main (worker/a.py:1);handle (worker/b.py:2);score (worker/c.py:4) 1",
        "main (worker/a.py:1);handle (worker/b.py:2);handle (worker/b.py:9) 2",
        "main (worker/a.py:1);poll (aiokafka/x.py:5) 1",
        " 1",
        "garbage",
    ]
    spots = hot_spots(raw)
    assert spots["samples"] == 10
    assert dict(spots["inclusive_pct"]) == {
        "main (worker/a.py)": 90.0,
        "handle (worker/b.py)": 80.0,
        "score (worker/c.py)": 60.0,
        "poll (aiokafka/x.py)": 10.0,
        "(no Python frame)": 10.0,
    }
    assert "poll (aiokafka/x.py)" not in dict(spots["project_inclusive_pct"])
    assert dict(spots["self_pct"])["handle (worker/b.py)"] == 20.0
