"""What every command shares: the date parser, the error helper (stderr, exit 2, masked)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import typer

from worker.cli.common import fail, parse_day, parse_instant

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_parse_instant():
    assert parse_instant("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_instant("2026-03-01T10:30:00Z") == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_instant("2026-03-01T10:30:00") == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_instant(None, default=lambda: AS_OF) == AS_OF
    with pytest.raises(typer.BadParameter, match="not an ISO date"):
        parse_instant("next tuesday")
    with pytest.raises(typer.BadParameter, match="required"):
        parse_instant(None)


def test_parse_day():
    assert parse_day(None) is None
    assert parse_day("2026-03-01") == date(2026, 3, 1)
    assert parse_day("2026-03-01T23:30:00+00:00") == date(2026, 3, 1)


def test_fail_masks_the_database_password_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr3t-pw@db.example:5432/revintel")
    with pytest.raises(typer.Exit) as exited:
        fail("cannot connect to postgresql://app:s3cr3t-pw@db.example:5432/revintel: refused")
    assert exited.value.exit_code == 2
    err = capsys.readouterr().err
    assert "s3cr3t-pw" not in err
    assert "postgresql://app:***@db.example:5432/revintel" in err
