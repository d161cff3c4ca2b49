"""Settings read from the environment: an optional file setting left empty
(``REVINTEL_KAFKA_SSL_CAFILE=``, as a template or a compose file leaves it) means none; it used
to be the current directory, and TLS failed with "Is a directory"."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from worker.kafka.client import kafka_client
from worker.settings import Settings

FILE_SETTINGS = [
    name for name, field in Settings.model_fields.items() if field.annotation == Path | None
]


def test_every_optional_file_setting_is_checked():
    assert {"kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"} <= set(FILE_SETTINGS)
    assert {"stage_map_path", "framework_path"} <= set(FILE_SETTINGS)


@pytest.mark.parametrize("blank", ["", "  "], ids=["empty", "spaces"])
@pytest.mark.parametrize("name", FILE_SETTINGS)
def test_an_empty_file_setting_means_none(monkeypatch, name, blank):
    monkeypatch.setenv(f"REVINTEL_{name.upper()}", blank)
    assert getattr(Settings(), name) is None


def test_a_file_setting_is_still_a_path(monkeypatch, tmp_path):
    monkeypatch.setenv("REVINTEL_KAFKA_SSL_CAFILE", str(tmp_path / "ca.pem"))
    assert Settings().kafka_ssl_cafile == tmp_path / "ca.pem"


def test_tls_with_empty_file_settings_checks_the_broker_by_the_system_authorities(monkeypatch):
    monkeypatch.setenv("REVINTEL_KAFKA_SECURITY_PROTOCOL", "SSL")
    for name in ("CAFILE", "CERTFILE", "KEYFILE"):
        monkeypatch.setenv(f"REVINTEL_KAFKA_SSL_{name}", "")
    context = kafka_client(Settings())["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
