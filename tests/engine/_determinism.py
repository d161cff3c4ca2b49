"""Determinism across processes: the same inputs scored here and in a fresh interpreter.

Calling a function twice in one process cannot see a result that depends on the process: the
iteration order of a set of strings, ``hash()``, ``id()``. Python seeds string hashing per
process (PYTHONHASHSEED), so the determinism tests score a fixed sample of inputs here and in
a child interpreter whose hash seed differs from this one's, and compare the JSON.

The samples come from ``random.Random`` with a fixed seed, which gives the same inputs in every
process (unlike Hypothesis, whose examples cannot be shared with a child process).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemas.deal_events import DealStage
from worker.engine import ChurnInput, DealFacts, ExpansionInput, score_churn, score_deal
from worker.engine.expansion import score_expansion
from worker.engine.framework import default_framework

from ._helpers import NOW

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = 150
INDUSTRIES = [None, "healthcare", "Financial Services", "technology", "retail", "x"]


def other_hash_seed() -> str:
    """A PYTHONHASHSEED that differs from this process's (random unless the variable is set)."""
    return "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"


def in_another_process(function: Callable[[], Any]) -> Any:
    """``function()`` (module-level, no arguments, JSON-ready result) computed in a new
    interpreter with a different hash seed."""
    module, name = function.__module__, function.__name__
    code = f"import json, sys\nfrom {module} import {name}\njson.dump({name}(), sys.stdout)"
    env = {**os.environ, "PYTHONHASHSEED": other_hash_seed()}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def here(function: Callable[[], Any]) -> Any:
    """``function()`` in this process, through JSON like ``in_another_process``."""
    return json.loads(json.dumps(function()))


def _maybe(rng: random.Random, value: Any, none_share: float = 0.2) -> Any:
    return None if rng.random() < none_share else value


def deal_scores() -> list[dict[str, Any]]:
    rng = random.Random(20250602)
    fw = default_framework()
    out = []
    for _ in range(SAMPLES):

        def ago(days: float) -> Any:
            return NOW - timedelta(days=days)

        facts = DealFacts(
            stage=rng.choice(list(DealStage)),
            amount=_maybe(rng, rng.uniform(0, 1e6)),
            industry=rng.choice(INDUSTRIES),
            lead_score=_maybe(rng, rng.randint(0, 100)),
            interactions=rng.randint(0, 200),
            objections_handled=rng.randint(0, 10),
            has_champion=rng.random() < 0.5,
            budget_confirmed=rng.random() < 0.5,
            decision_maker_engaged=rng.random() < 0.5,
            competitors=rng.randint(0, 6),
            last_activity_at=_maybe(rng, ago(rng.uniform(0, 120))),
            stage_entered_at=ago(rng.uniform(0, 200)),
            created_at=ago(rng.uniform(0, 400)),
            expected_close_date=_maybe(rng, NOW.date() + timedelta(days=rng.randint(-90, 180))),
            close_date_pushes=rng.randint(0, 5),
        )
        out.append(score_deal(facts, NOW, fw).to_dict())
    return out


def churn_scores() -> list[dict[str, Any]]:
    rng = random.Random(20250603)
    fw = default_framework()
    out = []
    for _ in range(SAMPLES):
        periods = rng.randint(0, 8)
        account = ChurnInput(
            industry=rng.choice(INDUSTRIES),
            logins=[float(rng.randint(0, 500)) for _ in range(periods)],
            active_seats=[float(rng.randint(0, 80)) for _ in range(periods)],
            licensed_seats=_maybe(rng, rng.randint(1, 100)),
            open_tickets=rng.randint(0, 8),
            max_ticket_severity=rng.choice(["none", "low", "medium", "high", "critical"]),
            escalations=rng.randint(0, 3),
            failed_payments=rng.randint(0, 4),
            days_overdue=rng.randint(0, 90),
            downgrade_requests=rng.randint(0, 2),
            nps=_maybe(rng, rng.randint(0, 10)),
            csat=_maybe(rng, rng.uniform(1, 5)),
            days_to_renewal=_maybe(rng, rng.randint(-30, 400)),
        )
        out.append(score_churn(account, fw).to_dict())
    return out


def expansion_scores() -> list[dict[str, Any]]:
    rng = random.Random(20250604)
    fw = default_framework()
    out = []
    for _ in range(SAMPLES):
        available = rng.randint(1, 40)
        health, churn_risk = _maybe(rng, rng.uniform(0, 100), 0.5), None
        if health is None:
            churn_risk = _maybe(rng, rng.uniform(0, 100))
        account = ExpansionInput(
            industry=rng.choice(INDUSTRIES),
            plan_tier=rng.choice(["starter", "professional", "enterprise"]),
            licensed_seats=rng.randint(1, 200),
            active_seats=rng.randint(0, 250),
            features_adopted=rng.randint(0, available),
            features_available=available,
            health=health,
            churn_risk=churn_risk,
            usage=[float(rng.randint(0, 1000)) for _ in range(rng.randint(0, 6))],
        )
        out.append(score_expansion(account, fw).to_dict())
    return out
