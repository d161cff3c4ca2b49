"""The pure centre never reads the clock and does no I/O: the engine (beyond loading its
framework file), the domain's batch logic and the forecast maths. Every module that calls
itself pure in its docstring is scanned, so a new pure module is covered without a list here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import worker

WORKER = Path(worker.__file__).parent
PURE_PACKAGES = ("engine", "domain", "models")
PURE_MODULES = ("forecast/maths.py", "forecast/learned.py", "http/signatures.py")
SOURCES = sorted(
    [p for pkg in PURE_PACKAGES for p in (WORKER / pkg).glob("*.py")]
    + [WORKER / m for m in PURE_MODULES]
)


def _calls_itself_pure(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""
    return bool(re.search(r"\bPure\b", doc))


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
    names = {str(p.relative_to(WORKER)) for p in SOURCES}
    assert {"engine/deal.py", "engine/framework.py", "domain/deal.py", "domain/batch.py"} <= names
    assert "forecast/maths.py" in names


def test_every_module_that_calls_itself_pure_is_scanned() -> None:
    claiming = {p for p in WORKER.rglob("*.py") if _calls_itself_pure(p)}
    assert claiming, "no module calls itself pure: the scan below would check nothing"
    assert claiming <= set(SOURCES), sorted(str(p) for p in claiming - set(SOURCES))


def test_pure_modules_never_read_the_clock() -> None:
    for path in SOURCES:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            assert not CLOCK.search(line), f"{path.name}:{number} reads the clock: {line.strip()}"


def test_pure_modules_import_no_clock_or_io_modules() -> None:
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
