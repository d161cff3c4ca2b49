-- Accounts: the current state of every customer account, merged from its events (see
-- worker/accounts.py), with its latest churn and expansion scores. Event ids are remembered in
-- applied_events (001) like the deals' (its deal_id column then holds the account id).
CREATE TABLE accounts (
    account_id              text PRIMARY KEY,
    name                    text,
    industry                text,
    owner                   text,
    plan                    text,
    licensed_seats          integer CHECK (licensed_seats >= 1),
    features_available      integer CHECK (features_available >= 1),
    features_used           integer CHECK (features_used >= 0),   -- latest known count
    -- the last periods reported, oldest first: [{period_end, active_seats, logins,
    -- features_used}], bounded by the worker (MAX_USAGE_PERIODS)
    usage_history           jsonb NOT NULL DEFAULT '[]'
                              CHECK (jsonb_typeof(usage_history) = 'array'
                                     AND jsonb_array_length(usage_history) <= 52),
    active_seats            integer CHECK (active_seats >= 0),    -- latest period's
    logins                  integer CHECK (logins >= 0),          -- latest period's
    -- open support tickets: {ticket_id: {severity, escalated, opened_at}}
    open_tickets            jsonb NOT NULL DEFAULT '{}'
                              CHECK (jsonb_typeof(open_tickets) = 'object'),
    open_ticket_count       integer NOT NULL DEFAULT 0,
    escalated_tickets       integer NOT NULL DEFAULT 0,           -- open and escalated
    max_ticket_severity     text NOT NULL DEFAULT 'none'
                              CHECK (max_ticket_severity IN ('none', 'low', 'medium', 'high',
                                                             'critical')),
    -- invoices whose payment failed and has not succeeded since:
    -- {invoice_id: {amount, days_overdue, failures, failed_at}}
    failed_invoices         jsonb NOT NULL DEFAULT '{}'
                              CHECK (jsonb_typeof(failed_invoices) = 'object'),
    failed_payments         integer NOT NULL DEFAULT 0,   -- failures on still-open invoices
    failed_payments_total   integer NOT NULL DEFAULT 0,   -- every failure ever reported
    days_overdue            integer NOT NULL DEFAULT 0,   -- oldest open invoice, at scored_at
    nps                     smallint CHECK (nps BETWEEN 0 AND 10),
    csat                    numeric(3, 2) CHECK (csat BETWEEN 1 AND 5),
    nps_submitted_at        timestamptz,
    renewal_date            date,
    arr                     numeric(16, 2) CHECK (arr >= 0),
    downgrade_requested     boolean NOT NULL DEFAULT false,
    -- scores, computed with "now" = last_event_time
    churn_risk              smallint CHECK (churn_risk BETWEEN 0 AND 100),
    churn_level             text CHECK (churn_level IN ('low', 'medium', 'high', 'critical')),
    churn_drivers           jsonb NOT NULL DEFAULT '[]',
    expansion_score         smallint CHECK (expansion_score BETWEEN 0 AND 100),  -- NULL: unscored
    expansion_motion        text CHECK (expansion_motion IN ('seat_expansion', 'plan_upgrade',
                                                             'cross_sell', 'none')),
    expansion_drivers       jsonb NOT NULL DEFAULT '[]',
    score_details           jsonb,
    framework_version       text,
    scored_at               timestamptz,
    -- event bookkeeping
    created_at              timestamptz NOT NULL,   -- time of the account's first event
    last_event_id           text NOT NULL,
    last_event_time         timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Accounts at risk, worst first (churn read models, CS work queues).
CREATE INDEX accounts_at_risk_idx ON accounts (churn_risk DESC) INCLUDE (arr, renewal_date)
    WHERE churn_level IN ('high', 'critical');
-- Upcoming renewals.
CREATE INDEX accounts_renewal_idx ON accounts (renewal_date) WHERE renewal_date IS NOT NULL;
-- Expansion candidates by motion, best first.
CREATE INDEX accounts_expansion_idx ON accounts (expansion_motion, expansion_score DESC)
    WHERE expansion_motion IS NOT NULL AND expansion_motion <> 'none';
CREATE INDEX accounts_owner_idx ON accounts (owner);
