"""No command prints a secret: a password planted in DATABASE_URL appears in no output of any
command that touches the database, when the database refuses the connection or the password."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

PLANTED = "Planted-s3cret-9f2c"
# every command that opens PostgreSQL, with arguments that make it do so at once
COMMANDS = [
    ["migrate"],
    ["run"],
    ["show"],
    ["rescore"],
    ["forecast"],
    ["dashboard"],
    ["produce-sample", "--timeout", "5"],
]


def _revintel(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "REVINTEL_DEAL_TOPIC": "test.secrets-deal-events",
        "REVINTEL_LOG_JSON": "true",
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def _assert_fails_without_the_secret(args: list[str], url: str) -> None:
    done = _revintel(args, url)
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"revintel {' '.join(args)} succeeded: {output[-2000:]}"
    assert PLANTED not in output, f"revintel {' '.join(args)} printed the password:\n{output}"
    assert "error" in output.lower(), output[-2000:]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_refused_connection_prints_no_password(args):
    url = f"postgresql://revintel:{PLANTED}@127.0.0.1:1/revintel"
    _assert_fails_without_the_secret(args, url)


@pytest.mark.integration
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_rejected_password_prints_no_password(args, services):
    """A reachable server that rejects the planted password (the error names the user)."""
    parts = urlsplit(services.database_url)
    netloc = f"revintel:{PLANTED}@{parts.hostname}:{parts.port or 5432}"
    _assert_fails_without_the_secret(args, urlunsplit(parts._replace(netloc=netloc)))
