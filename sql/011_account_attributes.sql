-- Accounts learn from their outcomes: named attributes (plan, contract type, tenure, region...),
-- the latest outcome (account.churned / account.renewed), which model scored the churn risk,
-- and every outcome kept with the account as it was just before it (the churn model's training
-- rows: the state at the outcome, never a later one, so nothing after it leaks in).
ALTER TABLE accounts
    ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(attributes) = 'object'),
    ADD COLUMN outcome text CHECK (outcome IN ('churned', 'renewed')),
    ADD COLUMN outcome_at timestamptz,
    -- 'heuristic' (the framework's formula) or a model_versions.version of kind 'churn'
    ADD COLUMN churn_model_version text NOT NULL DEFAULT 'heuristic';

CREATE TABLE account_outcomes (
    event_id        text PRIMARY KEY,            -- the outcome event
    account_id      text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('churned', 'renewed')),
    occurred_at     timestamptz NOT NULL,
    state           jsonb NOT NULL,              -- the account just before the outcome
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_outcomes_time_idx ON account_outcomes (occurred_at);
CREATE INDEX account_outcomes_account_idx ON account_outcomes (account_id, occurred_at);
