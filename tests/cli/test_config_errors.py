"""A bad framework file or an invalid setting is one line naming the field (exit 2), from every
command that reads it, never a traceback (``run`` used to print 60 lines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import worker.engine

# commands that load the framework before touching any service
FRAMEWORK_COMMANDS = [["run"], ["rescore"], ["forecast"]]


def _revintel(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env={
            **os.environ,
            "DATABASE_URL": "postgresql://revintel@127.0.0.1:1/revintel",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "REVINTEL_STARTUP_DEADLINE": "2",
            "COLUMNS": "200",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert done.returncode == 2, output[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), output[-3000:]
    assert "Traceback" not in output
    return lines[0]


@pytest.fixture
def bad_framework(tmp_path: Path) -> Path:
    text = (Path(worker.engine.__file__).parent / "framework.toml").read_text()
    assert "warning_min = 40" in text
    path = tmp_path / "framework.toml"
    path.write_text(text.replace("warning_min = 40", 'warning_min = "forty"'))
    return path


@pytest.mark.parametrize("args", FRAMEWORK_COMMANDS, ids=" ".join)
def test_bad_framework_file_is_one_line_naming_the_field(args, bad_framework):
    line = _one_line_error(_revintel(args, REVINTEL_FRAMEWORK_PATH=str(bad_framework)))
    assert "warning_min" in line and str(bad_framework) in line, line


def test_invalid_setting_is_one_line_naming_it():
    line = _one_line_error(_revintel(["show"], REVINTEL_BATCH_SIZE="lots"))
    assert "batch_size" in line, line
