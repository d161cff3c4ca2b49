-- The clock: ticks (events on every partition of the deal and account topics) age every open
-- deal and every account of their partition, and take a daily snapshot of the open pipeline.

-- The partition of the deal / account topic a row's events arrive on: a tick on partition p
-- rescores the rows of p, in that partition's order of events and ticks.
ALTER TABLE deals ADD COLUMN source_partition integer;
ALTER TABLE accounts ADD COLUMN source_partition integer;
CREATE INDEX deals_open_partition_idx ON deals (source_partition, deal_id)
    WHERE stage NOT IN ('closed_won', 'closed_lost');
CREATE INDEX accounts_partition_idx ON accounts (source_partition, account_id);

-- The last tick applied per topic partition: an older tick is stale.
CREATE TABLE clock (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    last_tick   timestamptz NOT NULL,
    tick_id     text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- The open pipeline as it was at each day's tick: scoring inputs and scores of every open
-- deal. What change tracking reads, and the training set of learned models (features as of a
-- day, outcome known later). One row per deal and day (a later tick that day replaces it);
-- rows older than REVINTEL_SNAPSHOT_RETENTION_DAYS are pruned.
CREATE TABLE deal_snapshots (
    snapshot_date           date NOT NULL,          -- UTC date of the tick
    deal_id                 text NOT NULL,
    taken_at                timestamptz NOT NULL,   -- the tick's instant: "now" of the scores
    name                    text,
    company                 text,
    owner                   text,
    industry                text,
    amount                  numeric(16, 2),
    predicted_amount        numeric,
    currency                char(3) NOT NULL,
    stage                   text NOT NULL,
    expected_close_date     date,
    lead_score              smallint,
    interactions            integer NOT NULL,
    objections_handled      integer NOT NULL,
    has_champion            boolean NOT NULL,
    budget_confirmed        boolean NOT NULL,
    decision_maker_engaged  boolean NOT NULL,
    competitors             integer NOT NULL,
    last_activity_at        timestamptz,
    close_date_pushes       integer NOT NULL,
    created_at              timestamptz NOT NULL,
    stage_entered_at        timestamptz NOT NULL,
    health_score            smallint,
    health_category         text,
    close_probability       numeric(5, 2),
    alert_level             text,
    framework_version       text,
    PRIMARY KEY (snapshot_date, deal_id)
);
CREATE INDEX deal_snapshots_deal_idx ON deal_snapshots (deal_id, snapshot_date);

-- The data's now: the newest event or tick applied (NULL while there are none). Ticks count:
-- a pipeline that went quiet still ages.
CREATE OR REPLACE FUNCTION data_as_of() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT greatest((SELECT max(last_event_time) FROM deals), (SELECT max(last_tick) FROM clock))
$$;

CREATE OR REPLACE FUNCTION data_as_of_date() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (data_as_of() AT TIME ZONE 'UTC')::date
$$;
