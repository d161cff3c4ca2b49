"""The scheduled retrain: when it runs (cron, UTC; weekly by default), its setting, and one
runner at a time across replicas (what it trains is tested end to end in
tests/app/test_deal_model.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from pydantic import ValidationError

from worker.engine import load_framework
from worker.settings import Settings
from worker.tasks.retrain import DEFAULT_CRON, RETRAIN_LOCK, Retrainer, next_retrain


def test_weekly_by_default_on_sunday_night_utc():
    thursday = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert Settings().retrain_cron == DEFAULT_CRON
    assert next_retrain(DEFAULT_CRON, thursday) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    sunday = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # strictly after: the next week's
    assert next_retrain(DEFAULT_CRON, sunday) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        next_retrain(DEFAULT_CRON, datetime(2026, 11, 26))


def test_the_setting_is_a_cron_expression_or_off():
    assert Settings(retrain_cron="").retrain_cron is None
    assert Settings(retrain_cron="off").retrain_cron is None
    assert Settings(retrain_cron="0 4 * * *").retrain_cron == "0 4 * * *"
    with pytest.raises(ValidationError, match="not a cron expression"):
        Settings(retrain_cron="every sunday")


@pytest.mark.integration
async def test_one_retrainer_at_a_time(database_url, db):
    holder = await asyncpg.connect(database_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", RETRAIN_LOCK)
        retrain = Retrainer(db, load_framework())
        assert await retrain.run_once() == {}  # another worker is retraining: skipped
        assert retrain.runs == 0
    finally:
        await holder.close()
