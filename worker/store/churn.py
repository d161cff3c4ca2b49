"""The churn model's data in PostgreSQL: the outcomes it trains on (``account_outcomes``, each
with the account as it was just before), and rescoring every stored account's churn with a new
champion (or the heuristic), a page of accounts per transaction, each page scored in one batch
and its scores written in one statement."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg
import structlog

from worker.domain.account import AccountOutcome, AccountState, score_accounts
from worker.engine import Framework
from worker.models.churn import LoadedChurnModel
from worker.store.accounts import LOAD_COLUMNS, UPDATE_SCORED, scored_row, stored_from_row
from worker.store.upsert import rows_json

log = structlog.get_logger(__name__)

_OUTCOMES = """
SELECT account_id, event_id, outcome, occurred_at, state FROM account_outcomes
WHERE ($1::timestamptz IS NULL OR occurred_at >= $1)
  AND ($2::timestamptz IS NULL OR occurred_at < $2)
ORDER BY occurred_at, event_id
"""


async def outcomes(
    conn: asyncpg.Connection, since: datetime | None = None, until: datetime | None = None
) -> list[AccountOutcome]:
    """Every recorded outcome (in ``[since, until)``), oldest first."""
    rows = await conn.fetch(_OUTCOMES, since, until)
    return [
        AccountOutcome(
            account_id=r["account_id"],
            event_id=r["event_id"],
            outcome=r["outcome"],
            occurred_at=r["occurred_at"],
            before=AccountState.model_validate(
                json.loads(r["state"]) if isinstance(r["state"], str) else r["state"]
            ),
        )
        for r in rows
    ]


_PAGE = (
    f"SELECT {LOAD_COLUMNS}, scored_at FROM accounts WHERE account_id > $1 "
    "ORDER BY account_id LIMIT $2 FOR UPDATE"
)


async def rescore(
    pool: asyncpg.Pool,
    framework: Framework,
    churn_model: LoadedChurnModel | None,
    page: int = 2000,
) -> int:
    """Rescore every account's churn (and the expansion that reads it) with ``churn_model``
    (``None``: the heuristic), "now" being the instant each was last scored at. Alert levels
    are left as they are: the account's next event or tick re-evaluates them. Returns how many
    accounts were rescored."""
    done, after = 0, ""
    version = churn_model.version if churn_model else "heuristic"
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_PAGE, after, page)
            if not rows:
                break
            stored = [stored_from_row(r) for r in rows]
            moments = [
                r["scored_at"] or s.state.last_event_time for r, s in zip(rows, stored, strict=True)
            ]
            scores = score_accounts(
                [(s.state, at) for s, at in zip(stored, moments, strict=True)],
                framework,
                churn_model,
            )
            written = (
                scored_row(s.state, score, s.track) for s, score in zip(stored, scores, strict=True)
            )
            await conn.execute(UPDATE_SCORED, rows_json(written))
        done += len(rows)
        after = rows[-1]["account_id"]
        if len(rows) < page:
            break
    log.info("accounts_rescored", accounts=done, churn_model_version=version)
    return done
