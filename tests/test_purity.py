"""The engine never reads the clock and does no I/O beyond loading its framework file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import worker.engine

ENGINE = Path(worker.engine.__file__).parent
SOURCES = sorted(ENGINE.glob("*.py"))

CLOCK = re.compile(
    r"\b(?:datetime|date|dt)\s*\.\s*(?:now|utcnow|today)\b"
    r"|\.\s*(?:now|utcnow|today)\s*\("
    r"|\btime\s*\.\s*(?:time|time_ns|monotonic|monotonic_ns|perf_counter|process_time|localtime|"
    r"gmtime|ctime)\b"
)
FORBIDDEN_MODULES = {
    "time",
    "socket",
    "asyncio",
    "asyncpg",
    "aiokafka",
    "faststream",
    "subprocess",
    "random",
    "os",
}


def test_sources_found() -> None:
    names = {p.name for p in SOURCES}
    assert {"deal.py", "framework.py", "value.py", "churn.py", "expansion.py"} <= names


def test_engine_never_reads_the_clock() -> None:
    for path in SOURCES:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            assert not CLOCK.search(line), f"{path.name}:{number} reads the clock: {line.strip()}"


def test_engine_imports_no_clock_or_io_modules() -> None:
    for path in SOURCES:
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}: {module}"


def test_the_scan_catches_clock_reads() -> None:
    for line in (
        "now = datetime.now(UTC)",
        "d = date.today()",
        "x = datetime.utcnow()",
        "t = time.time()",
        "t = time.perf_counter()",
        "t = dt.datetime.now()",
    ):
        assert CLOCK.search(line), line
    assert not CLOCK.search("def score_deal(facts, now, framework):")
    assert not CLOCK.search("in_stage = (now - facts.stage_entered_at).total_seconds()")
