"""No command prints a secret. Secrets are planted everywhere one can be configured (the
database password in the URL, in its query string and percent-encoded, libpq's PGPASSWORD, the
Kafka SASL password, the TLS key password, an API key and a webhook secret of the environment),
then every command that touches PostgreSQL or Kafka is run against services that refuse it,
and all it printed (stdout and stderr, logs included) is searched for each secret."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import structlog

from worker.cli.common import mask_secrets
from worker.log import Masker, MaskingStream, configure_logging
from worker.settings import Settings

PLANTED = "Planted-s3cret-9f2c"
SASL_SECRET = "Sasl-s3cret-77ab"
KEY_SECRET = "Key-s3cret-31cd"
API_KEY = "Api-k3y-5e6f"
WEBHOOK_SECRET = "Webhook-s3cret-0a1b"
PGPASSWORD = "Pg-s3cret-4d4d"
ENCODED = "Enc@ded/s3cret:8e8e"  # needs percent-encoding in a URL
ALL_SECRETS = [PLANTED, SASL_SECRET, KEY_SECRET, API_KEY, WEBHOOK_SECRET, PGPASSWORD, ENCODED]

# every command that opens PostgreSQL or Kafka, with arguments that make it do so at once
DATABASE_COMMANDS = [
    ["migrate"],
    ["run"],
    ["show"],
    ["rescore"],
    ["forecast"],
    ["dashboard"],
    ["changes", "--since", "2026-01-01"],
    ["produce-sample", "--timeout", "5"],
    ["train", "churn"],
    ["train", "deal"],
    ["models", "list"],
    ["models", "report", "deal"],
    ["models", "promote", "deal", "no-such-version"],
]
KAFKA_COMMANDS = [
    ["forecast", "--publish", "--as-of", "2026-01-01"],
    ["tick", "--at", "2026-01-01"],
    ["alerts", "tail", "--limit", "1", "--idle-exit", "3"],
    ["seed", "--deals", "2"],
]
COMMANDS = DATABASE_COMMANDS + KAFKA_COMMANDS
# the database URL in each form for the commands that open PostgreSQL, one for the others
REFUSED = [(args, form) for args in DATABASE_COMMANDS for form in ("in-url", "in-query", "encoded")]
REFUSED += [(args, "in-url") for args in KAFKA_COMMANDS]
DATABASE_URLS = {
    "in-url": "postgresql://revintel:{secret}@{host}/revintel",
    "in-query": "postgresql://revintel@{host}/revintel?password={secret}",
    "encoded": "postgresql://revintel:" + quote(ENCODED, safe="") + "@{host}/revintel",
}


def _env(database_url: str, kafka: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REVINTEL_DEAL_TOPIC": "test.secrets-deal-events",
        "REVINTEL_LOG_JSON": "true",
        "REVINTEL_STARTUP_DEADLINE": "3",
        "REVINTEL_HTTP_PORT": "0",
        "REVINTEL_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "REVINTEL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "REVINTEL_KAFKA_SASL_USERNAME": "revintel-worker",
        "REVINTEL_KAFKA_SASL_PASSWORD": SASL_SECRET,
        "REVINTEL_KAFKA_SSL_KEY_PASSWORD": KEY_SECRET,
        "REVINTEL_CRM_API_KEY": API_KEY,
        "HUBSPOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PGPASSWORD": PGPASSWORD,
        "COLUMNS": "200",
        **extra,
    }


def _revintel(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _assert_no_secret(args: list[str], env: dict[str, str], must_fail: bool = True) -> str:
    done = _revintel(args, env)
    output = done.stdout + done.stderr
    shown = f"revintel {' '.join(args)} (exit {done.returncode}):\n{output[-3000:]}"
    for secret in ALL_SECRETS:
        for form in {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            assert form not in output, f"printed the secret {secret!r}: {shown}"
    if must_fail:
        assert done.returncode != 0, shown
        assert "error" in output.lower(), shown
    return output


def _url(form: str, host: str, secret: str = PLANTED) -> str:
    return DATABASE_URLS[form].format(secret=secret, host=host)


@pytest.mark.parametrize(
    ("args", "form"), REFUSED, ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_refused_services_print_no_secret(args, form):
    _assert_no_secret(args, _env(_url(form, "127.0.0.1:1"), "127.0.0.1:1"))


@pytest.mark.parametrize("args", [["migrate"], ["run"]], ids=" ".join)
def test_refused_migration_database_prints_no_secret(args):
    """The owner's URL (REVINTEL_MIGRATE_DATABASE_URL) carries the password; `run` names that
    database in its one line when it stays away."""
    env = _env(
        "postgresql://revintel_worker@127.0.0.1:1/revintel",
        "127.0.0.1:1",
        REVINTEL_MIGRATE_DATABASE_URL=_url("encoded", "127.0.0.1:1"),
    )
    output = _assert_no_secret(args, env)
    assert "127.0.0.1:1" in output


@pytest.mark.integration
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_rejected_credentials_print_no_secret(args, services):
    """Reachable servers that reject the planted password and the SASL handshake (the errors
    name the user)."""
    parts = urlsplit(services.database_url)
    host = f"{parts.hostname}:{parts.port or 5432}"
    url = urlunsplit(urlsplit(_url("in-url", host))._replace(path=parts.path))
    _assert_no_secret(args, _env(url, services.bootstrap))


@pytest.mark.integration
def test_debug_logs_of_every_library_print_no_secret(services):
    """At DEBUG, aiokafka logs its requests (the SASL handshake among them) and asyncpg its
    connection attempts: the worker still prints no secret."""
    parts = urlsplit(services.database_url)
    url = urlunsplit(parts._replace(netloc=f"revintel:{PLANTED}@{parts.hostname}:{parts.port}"))
    env = _env(url, services.bootstrap, REVINTEL_LOG_LEVEL="DEBUG")
    output = _assert_no_secret(["run"], env)
    assert "aiokafka" in output  # the libraries did log


def test_settings_list_every_configured_secret(monkeypatch):
    monkeypatch.setenv("HUBSPOT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    s = Settings(
        database_url="postgresql://app:" + quote(ENCODED, safe="") + "@db:5432/x",
        kafka_sasl_password=SASL_SECRET,
        kafka_ssl_key_password=KEY_SECRET,
    )
    assert {ENCODED, quote(ENCODED, safe=""), SASL_SECRET, KEY_SECRET, WEBHOOK_SECRET} <= set(
        s.secrets
    )
    query = Settings(database_url=f"postgresql://app@db/x?sslmode=require&password={PLANTED}")
    assert PLANTED in query.secrets
    # the local default revintel:revintel: the password is the user name, shown anyway
    assert "revintel" not in Settings(database_url="postgresql://revintel:revintel@h/db").secrets


def test_command_errors_mask_the_password_not_names_that_equal_it():
    """A command's error keeps `revintel.alerts` whole under the local revintel:revintel URL
    (the password is the user name, shown anyway), and masks a real password."""
    local = Settings(database_url="postgresql://revintel:revintel@h/db")
    message = "cannot read revintel.alerts at postgresql://revintel:revintel@h/db"
    assert mask_secrets(message, local) == (
        "cannot read revintel.alerts at postgresql://revintel:***@h/db"
    )
    owned = Settings(database_url=f"postgresql://revintel:{PLANTED}@h/db")
    assert mask_secrets(f"revintel.alerts: {PLANTED}", owned) == "revintel.alerts: ***"


def test_the_migration_url_is_a_secret_and_names_the_worker_role():
    """The owner's URL (REVINTEL_MIGRATE_DATABASE_URL) is masked like DATABASE_URL; its role
    migrates, DATABASE_URL's role gets DML."""
    s = Settings(
        database_url="postgresql://revintel_worker:revintel_worker@h/db",
        migrate_database_url=f"postgresql://owner:{PLANTED}@h/db",
    )
    assert PLANTED in s.secrets and "revintel_worker" not in s.secrets
    assert (s.migration_url, s.worker_role) == (s.migrate_database_url, "revintel_worker")
    same = Settings(database_url="postgresql://owner:pw-123@h/db")
    assert (same.migration_url, same.worker_role) == (same.database_url, None)


@pytest.fixture
def restored_logging():
    """Logging as it was after the test: configure_logging binds the captured stderr, which
    pytest closes (later tests would log into a closed file)."""
    previous = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**previous)
    root.handlers, root.level = handlers, level


def test_log_lines_of_structlog_and_stdlib_are_masked(capsys, restored_logging):
    secret = 'quote"and\\slash-s3cret'
    configure_logging("INFO", json=True, secrets=[secret, PLANTED])
    structlog.get_logger().warning("connect_failed", dsn=f"postgresql://u:{PLANTED}@h/db")
    structlog.get_logger().warning("odd", value=secret)
    logging.getLogger("aiokafka.conn").warning("auth failed with %s", secret)
    logging.getLogger("faststream").error("boom %r", PLANTED)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines), err
    for text in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], PLANTED):
        assert text not in err, err
    assert json.loads(lines[2])["logger"] == "aiokafka.conn"


def test_masking_stream_masks_what_is_written():
    out = io.StringIO()
    stream = MaskingStream(out, Masker([PLANTED]))
    stream.write(f"error: password {PLANTED} rejected\n")
    assert out.getvalue() == "error: password *** rejected\n"
    assert stream.getvalue() == out.getvalue()  # everything else is the stream's
