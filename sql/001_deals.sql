-- Deals: the current state of every deal, merged from its events, with its latest scores.
CREATE TABLE deals (
    deal_id                 text PRIMARY KEY,
    name                    text,
    company                 text,
    owner                   text,
    industry                text,
    amount                  numeric(16, 2) CHECK (amount >= 0),
    currency                char(3) NOT NULL DEFAULT 'USD',
    stage                   text NOT NULL CHECK (stage IN ('prospecting', 'qualification',
                              'proposal', 'negotiation', 'closed_won', 'closed_lost')),
    expected_close_date     date,
    lead_score              smallint CHECK (lead_score BETWEEN 0 AND 100),
    interactions            integer NOT NULL DEFAULT 0,
    objections_handled      integer NOT NULL DEFAULT 0,
    has_champion            boolean NOT NULL DEFAULT false,
    budget_confirmed        boolean NOT NULL DEFAULT false,
    decision_maker_engaged  boolean NOT NULL DEFAULT false,
    competitors             text[] NOT NULL DEFAULT '{}',
    last_activity_at        timestamptz,
    close_date_pushes       integer NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL,   -- time of the deal's first event
    stage_entered_at        timestamptz NOT NULL,
    closed_at               timestamptz,
    -- scores, computed with "now" = last_event_time
    health_score            smallint CHECK (health_score BETWEEN 0 AND 100),
    health_category         text CHECK (health_category IN ('healthy', 'warning', 'critical')),
    close_probability       numeric(5, 2) CHECK (close_probability BETWEEN 0 AND 100),
    risk_factors            jsonb NOT NULL DEFAULT '[]',
    score_details           jsonb,
    framework_version       text,
    scored_at               timestamptz,
    -- event bookkeeping
    last_event_id           text NOT NULL,
    last_event_time         timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER deals_set_updated_at BEFORE UPDATE ON deals
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Open pipeline by stage and by expected close month (read models, forecasts).
CREATE INDEX deals_open_stage_idx ON deals (stage) INCLUDE (amount, close_probability)
    WHERE stage NOT IN ('closed_won', 'closed_lost');
CREATE INDEX deals_open_close_date_idx ON deals (expected_close_date)
    WHERE stage NOT IN ('closed_won', 'closed_lost');
-- At-risk deals: open, by category, largest first.
CREATE INDEX deals_open_health_idx ON deals (health_category, amount DESC)
    WHERE stage NOT IN ('closed_won', 'closed_lost');
CREATE INDEX deals_owner_idx ON deals (owner);

-- Every event id the worker has applied (or recognised as stale): a redelivered event is
-- found here and changes nothing. Rows older than the retention window may be pruned.
CREATE TABLE applied_events (
    event_id    text PRIMARY KEY,
    deal_id     text NOT NULL,
    event_time  timestamptz NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('applied', 'stale')),
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_events_applied_at_idx ON applied_events (applied_at);
