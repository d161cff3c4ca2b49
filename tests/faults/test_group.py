"""A second worker joins the consumer group mid-stream and the first leaves it (SIGTERM)
later: the partitions move twice, and the end state and alert ids are those of an
undisturbed run."""

from __future__ import annotations

import pytest

from tests.faults.conftest import assert_same, process_env, spawn_worker, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_a_worker_joins_and_another_leaves_mid_stream(undisturbed, new_run):
    run = await new_run()
    env = process_env(run.settings)
    first = await spawn_worker(env)
    second = None
    try:
        await run.reached(0.25)
        second = await spawn_worker(env)
        await run.reached(0.6)
        await stop_worker(first)  # leaves the group gracefully (exit 0)
        outcome = await run.finished()
    finally:
        if first.returncode is None:
            await stop_worker(first)
        if second is not None:
            await stop_worker(second)
    assert_same(outcome, undisturbed)
