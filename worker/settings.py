"""Runtime settings, read from environment variables (and a .env file) with local defaults."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from croniter import croniter
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting can be overridden by ``REVINTEL_<NAME>``; the two connection strings also
    by their conventional names ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS``."""

    model_config = SettingsConfigDict(
        env_prefix="REVINTEL_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        "postgresql://revintel:revintel@127.0.0.1:5432/revintel",
        validation_alias=AliasChoices("DATABASE_URL", "REVINTEL_DATABASE_URL"),
    )
    migrate_database_url: str | None = Field(
        None,
        description="the schema owner's URL migrations run with (DDL); none: DATABASE_URL. "
        "When its user differs, DATABASE_URL's user is granted DML on the tables and nothing "
        "more: the worker's least-privilege role",
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "REVINTEL_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how every Kafka client connects"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle the broker is checked with")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    startup_deadline: float | None = Field(
        None,
        ge=0,
        description="seconds `run` waits for PostgreSQL and Kafka at start; None or 0: forever",
    )
    deal_topic: str = "crm.deal-events"
    account_topic: str = "crm.account-events"
    source_topics: dict[str, str] = Field(
        default_factory=lambda: {
            "crm.hubspot": "hubspot",
            "crm.salesforce": "salesforce",
            "crm.pipedrive": "pipedrive",
        },
        description="raw vendor webhook topics -> adapter (JSON in the environment)",
    )
    stage_map_path: Path | None = Field(None, description="vendor stage names -> our stages")
    source_currencies: dict[str, str] = Field(
        default_factory=dict,
        description="vendor -> ISO 4217 currency of its new deals when the CRM names none (JSON)",
    )
    alerts_topic: str = "revintel.alerts"
    forecasts_topic: str = "revintel.forecasts"
    metrics_topic: str = "revintel.metrics"
    topic_partitions: int = Field(3, ge=1, description="partitions for topics the worker creates")
    consumer_group: str = "revintel-worker"
    # A backlog is applied faster in larger transactions: bench_throughput, 100,000 events,
    # worker events/s at 500: 5,083; 1,000: 5,944; 2,000: 7,099-7,217; 5,000: 7,159 (RSS
    # 122 -> 135 MB at 2,000). A stream slower than the worker polls small batches anyway.
    batch_size: int = Field(2000, ge=1, le=10_000, description="max records per consumed batch")
    # A poll returns as soon as records are there; with none, FastStream waits this long, then
    # sleeps as long again before the next poll: the p99 from produce to commit at 2,000
    # events/s was 1,115 ms at 200, 244 at 20, 216 at 10 (bench_throughput, issue 11).
    batch_timeout_ms: int = Field(10, ge=1, description="wait of a poll with nothing to read")
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="larger payloads are rejected")
    framework_path: Path | None = Field(None, description="scoring framework file (TOML)")
    outbox_poll_seconds: float = Field(1.0, gt=0, description="relay poll interval")
    crash_point: str | None = Field(
        None, description="test hook: 'after_commit' kills the worker before alerts publish"
    )
    forecast_enabled: bool = Field(True, description="run the forecast job in this worker")
    forecast_cron: str = Field("*/15 * * * *", description="forecast schedule (cron, UTC)")
    forecast_daily_cron: str = Field("0 2 * * *", description="daily snapshot (cron, UTC)")
    forecast_months: int = Field(6, ge=1, le=60, description="forecast horizon in months")
    forecast_seed: int = Field(0, description="seed of the forecast's simulations")
    model_refresh_seconds: float = Field(
        30.0, gt=0, description="how often a worker checks the registry for a new champion"
    )
    churn_min_churned: int = Field(200, ge=1, description="fewer: no churn model (heuristic)")
    churn_min_renewed: int = Field(200, ge=1, description="fewer: no churn model (heuristic)")
    deal_min_won: int = Field(200, ge=1, description="fewer won deals: no deal model (heuristic)")
    deal_min_lost: int = Field(200, ge=1, description="fewer lost deals: no deal model (heuristic)")
    deal_challenger_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of deals (stable hash of the id) served the challenger's close "
        "probability; 0: the champion serves every deal",
    )
    retrain_cron: str | None = Field(
        "0 3 * * 0",
        description="scheduled retrain of the deal and churn models, challengers (cron, UTC); "
        "empty: none",
    )
    tick_interval: timedelta = Field(
        timedelta(days=1),
        description="clock tick period (seconds or ISO 8601, e.g. P1D); 0: publish no ticks",
    )
    snapshot_retention_days: float = Field(
        730.0, gt=0, description="keep daily deal snapshots this long"
    )
    retention_days: float = Field(
        30.0, gt=0, description="keep applied event ids and published alerts this long"
    )
    metrics_interval_seconds: float = Field(
        15.0, ge=0, description="metrics message period (0: do not publish)"
    )
    http_host: str = Field("127.0.0.1", description="where /metrics, /health, /asyncapi listen")
    http_port: int = Field(8080, ge=0, le=65535, description="0: any free port")
    # HTTP ingress of CRM webhooks and the API (worker/http/webhooks.py, worker/http/api.py)
    webhooks_enabled: bool = Field(True, description="serve /webhooks/* in `revintel run`")
    hubspot_client_secret: SecretStr | None = Field(
        None, description="HubSpot app client secret: checks X-HubSpot-Signature-v3"
    )
    pipedrive_webhook_user: str | None = Field(None, description="Pipedrive webhook basic auth")
    pipedrive_webhook_password: SecretStr | None = None
    salesforce_webhook_secret: SecretStr | None = Field(
        None, description="shared secret a Salesforce CDC relay sends in X-Revintel-Webhook-Secret"
    )
    public_url: str | None = Field(
        None,
        description="the scheme and host the vendors call (behind a proxy), for HubSpot's "
        "signed URI; default: the request's own",
    )
    api_keys: dict[str, Literal["read", "write"]] = Field(
        default_factory=dict,
        description="bearer API keys -> scope (JSON); none: the API listens on loopback only",
    )
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("tick_interval", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """A plain number in the environment is seconds ("86400"), as in the other settings."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("startup_deadline")
    @classmethod
    def _forever(cls, value: float | None) -> float | None:
        return value or None  # 0 means no deadline, as orchestrators expect of a service

    @field_validator("startup_deadline", mode="before")
    @classmethod
    def _blank_forever(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "stage_map_path",
        "framework_path",
        mode="before",
    )
    @classmethod
    def _blank_file_unset(cls, value: object) -> object:
        """An empty value (``REVINTEL_KAFKA_SSL_CAFILE=``, as templates leave them) means
        none, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("retrain_cron", mode="before")
    @classmethod
    def _no_retrain(cls, value: object) -> object:
        blank = isinstance(value, str) and value.strip().lower() in ("", "none", "off")
        if not blank and value is not None and not croniter.is_valid(str(value)):
            raise ValueError(f"not a cron expression: {value!r}")
        return None if blank else value

    @property
    def secrets(self) -> list[str]:
        """Every configured secret, as it may appear in a message: never to be printed."""
        found = [*database_secrets(self.database_url), *secrets_in_environment()]
        found += database_secrets(self.migration_url)
        for secret in (
            self.kafka_sasl_password,
            self.kafka_ssl_key_password,
            self.hubspot_client_secret,
            self.pipedrive_webhook_password,
            self.salesforce_webhook_secret,
        ):
            if secret is not None:
                found.append(secret.get_secret_value())
        found += list(self.api_keys)
        # A password equal to a user name is shown with that name anyway (the local default
        # revintel:revintel): masking it would mangle every topic and table name.
        shown = {
            _database_user(self.database_url),
            _database_user(self.migration_url),
            self.kafka_sasl_username,
        }
        return sorted({s for s in found if len(s) >= 3 and s not in shown}, key=len, reverse=True)

    @property
    def migration_url(self) -> str:
        """The URL migrations run with: the owner's, or DATABASE_URL's."""
        return self.migrate_database_url or self.database_url

    @property
    def worker_role(self) -> str | None:
        """The role to grant DML after migrating: DATABASE_URL's user, when migrations run as
        another (the owner); None when both are the same role."""
        user = _database_user(self.database_url)
        return user if user and user != _database_user(self.migration_url) else None

    @property
    def deal_dlq_topic(self) -> str:
        return dlq_topic(self.deal_topic)

    @property
    def input_topics(self) -> list[str]:
        return [self.deal_topic, *self.source_topics]


# Environment variables whose values are secrets whatever reads them (libpq's PGPASSWORD, API
# keys, webhook secrets of a deployment): masked too, so a new one is safe before it has a field.
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PASSPHRASE", re.IGNORECASE)


def secrets_in_environment() -> list[str]:
    return [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 3]


def database_secrets(url: str) -> list[str]:
    """The password of a database URL, as written and decoded (also ``?password=``)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password] if password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    for raw in re.findall(r"(?i)password=([^&]+)", parts.query):
        found.append(raw)
    return [*found, *(unquote(s) for s in found)]


def _database_user(url: str) -> str | None:
    try:
        return urlsplit(url).username
    except ValueError:
        return None


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


@lru_cache
def get_settings() -> Settings:
    return Settings()
