"""SIGKILL of the worker process five times during the stream, restarted each time: every
kill loses what was in flight, the redelivery is deduplicated, and the end state and alert
ids are those of an undisturbed run."""

from __future__ import annotations

import signal

import pytest

from tests.faults.conftest import (
    assert_same,
    kill_worker,
    process_env,
    spawn_worker,
    stop_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_sigkill_five_times_mid_stream(undisturbed, new_run):
    run = await new_run()
    env = process_env(run.settings)
    for share in (0.15, 0.3, 0.45, 0.6, 0.75):
        worker = await spawn_worker(env)
        try:
            await run.reached(share)
        finally:
            await kill_worker(worker)
        assert worker.returncode == -signal.SIGKILL
        assert await run.applied() < run.stream.events, "killed after the stream, not during it"
    last = await spawn_worker(env)
    try:
        outcome = await run.finished()
    finally:
        await stop_worker(last)
    assert_same(outcome, undisturbed)
