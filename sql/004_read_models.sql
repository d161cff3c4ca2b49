-- Read models for dashboards and forecasting: views over deals, the stage history behind
-- velocity and conversion, framework parameters, and forecast snapshots for trends.
--
-- Time is data. Nothing here reads the wall clock (no now(), CURRENT_DATE, ...) to decide what
-- a view shows. A view that needs "now" uses the data's now, data_as_of() = the latest
-- last_event_time over all deals (the time of the newest event applied), and is a thin wrapper
-- over a set-returning function that takes the as-of explicitly, so a replay, a backfill or a
-- test can ask "as of" any instant:
--     revenue_pipeline_summary  = pipeline_summary(data_as_of())
--     revenue_forecast_monthly  = forecast_monthly(data_as_of_date())
--     slipped_deals             = slipped_deals_as_of(data_as_of_date())
-- The functions read the deals table as it is now; as_of only sets the clock ages and
-- overdue-ness are measured with. Dates derived from timestamps, and calendar months, are UTC.
-- The views compute the as-of once, in (SELECT ... OFFSET 0): passed as a bare call, the SQL
-- function inliner would copy data_as_of() into every row's expressions (on 50,000 deals,
-- revenue_forecast_monthly took 450 ms that way, 35 ms this way).
-- (DEFAULT now() on bookkeeping columns records when a row was written; no view reads them.)
--
-- Open = stage NOT IN ('closed_won', 'closed_lost'), written exactly so, so that the partial
-- indexes of 001 (and here) match. Amounts are in each deal's currency; sums assume one.
-- NULLs: a deal with no amount counts in deal counts and adds nothing to sums and averages; a
-- deal with no close_probability (unscored) adds nothing to weighted figures.
--
-- Independent of migrations 002 and 003.

-- ---------------------------------------------------------------------------------------------
-- Helpers

-- Pipeline order of a stage: 1..4 open stages, 5 won, 6 lost.
CREATE FUNCTION stage_position(stage text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE stage
        WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2 WHEN 'proposal' THEN 3
        WHEN 'negotiation' THEN 4 WHEN 'closed_won' THEN 5 WHEN 'closed_lost' THEN 6 END
$$;

-- The data's now: the newest event time applied to any deal (NULL while there are none).
CREATE FUNCTION data_as_of() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT max(last_event_time) FROM deals
$$;

-- The data's today (UTC date of data_as_of()).
CREATE FUNCTION data_as_of_date() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (max(last_event_time) AT TIME ZONE 'UTC')::date FROM deals
$$;

-- max(last_event_time) as a backward index probe instead of a scan of all deals.
CREATE INDEX deals_last_event_time_idx ON deals (last_event_time);

-- ---------------------------------------------------------------------------------------------
-- Framework parameters: numbers from the scoring framework file that SQL needs. The worker
-- upserts them at start-up; the seed below keeps a fresh database usable before that.

CREATE TABLE framework_params (
    key         text PRIMARY KEY,
    value       numeric NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO framework_params (key, value) VALUES ('alert_value_threshold', 5000);

-- A parameter's value; raises if the key is missing (a silently empty at-risk list is worse).
-- Call it once per query, as a scalar subquery: (SELECT framework_param('...')).
CREATE FUNCTION framework_param(key text) RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    result numeric;
BEGIN
    SELECT p.value INTO result FROM framework_params p WHERE p.key = framework_param.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'framework parameter % is not set', framework_param.key
            USING ERRCODE = 'no_data_found', HINT = 'upsert it into framework_params';
    END IF;
    RETURN result;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Open pipeline by stage. Every open stage has a row (zeros when empty), in pipeline order.
-- avg_days_in_stage: mean of (as_of - stage_entered_at) in days, never below 0.
-- Plan: one pass over the open deals (sequential, or index-only on deals_open_pipeline_idx).

CREATE INDEX deals_open_pipeline_idx ON deals (stage)
    INCLUDE (amount, close_probability, stage_entered_at)
    WHERE stage NOT IN ('closed_won', 'closed_lost');

CREATE FUNCTION pipeline_summary(as_of timestamptz)
RETURNS TABLE (
    stage               text,
    stage_position      integer,
    deal_count          bigint,
    total_value         numeric,
    weighted_value      numeric,
    avg_deal_size       numeric,
    avg_days_in_stage   numeric
)
LANGUAGE sql STABLE AS $$
    SELECT s.stage,
           s.pos,
           coalesce(a.deal_count, 0),
           coalesce(a.total_value, 0),
           coalesce(a.weighted_value, 0),
           a.avg_deal_size,
           a.avg_days_in_stage
    FROM (VALUES ('prospecting', 1), ('qualification', 2), ('proposal', 3), ('negotiation', 4))
         AS s (stage, pos)
    LEFT JOIN (
        SELECT d.stage,
               count(*) AS deal_count,
               sum(d.amount) AS total_value,
               sum(d.amount * d.close_probability / 100) AS weighted_value,
               avg(d.amount) AS avg_deal_size,
               avg(greatest(extract(epoch FROM as_of - d.stage_entered_at), 0) / 86400)
                   AS avg_days_in_stage
        FROM deals d
        WHERE d.stage NOT IN ('closed_won', 'closed_lost')
        GROUP BY d.stage
    ) a ON a.stage = s.stage
    ORDER BY s.pos
$$;

CREATE VIEW revenue_pipeline_summary AS
SELECT n.as_of, p.*
FROM (SELECT data_as_of() AS as_of OFFSET 0) n
CROSS JOIN LATERAL pipeline_summary(n.as_of) p
ORDER BY p.stage_position;

-- ---------------------------------------------------------------------------------------------
-- Forecast by expected close month (open deals with an expected close date). Deals whose
-- expected close month is before the as-of month are carried over into the as-of month (they
-- are still open, so "now" is when they can close; worker/forecast.py does the same) and shown
-- separately in carried_over_*. Deals without an expected close date are left out.
-- Plan: one pass over the open deals (001's deals_open_close_date_idx covers the date).

CREATE FUNCTION forecast_monthly(as_of date)
RETURNS TABLE (
    month                   date,
    deal_count              bigint,
    pipeline                numeric,
    weighted_forecast       numeric,
    carried_over_deals      bigint,
    carried_over_pipeline   numeric
)
LANGUAGE sql STABLE AS $$
    SELECT greatest(date_trunc('month', d.expected_close_date::timestamp),
                    date_trunc('month', as_of::timestamp))::date AS month,
           count(*),
           coalesce(sum(d.amount), 0),
           coalesce(sum(d.amount * d.close_probability / 100), 0),
           count(*) FILTER (WHERE d.expected_close_date < date_trunc('month', as_of::timestamp)),
           coalesce(sum(d.amount) FILTER (
               WHERE d.expected_close_date < date_trunc('month', as_of::timestamp)), 0)
    FROM deals d
    WHERE d.stage NOT IN ('closed_won', 'closed_lost') AND d.expected_close_date IS NOT NULL
    GROUP BY 1
    ORDER BY 1
$$;

CREATE VIEW revenue_forecast_monthly AS
SELECT n.as_of, f.*
FROM (SELECT data_as_of_date() AS as_of OFFSET 0) n
CROSS JOIN LATERAL forecast_monthly(n.as_of) f
ORDER BY f.month;

-- ---------------------------------------------------------------------------------------------
-- At-risk deals: open, amount >= framework_param('alert_value_threshold'), health warning or
-- critical; largest first. Plan: 001's deals_open_health_idx (health_category, amount DESC)
-- with both conditions as index conditions; the threshold is read once (InitPlan).

CREATE VIEW at_risk_deals AS
SELECT d.deal_id,
       d.name,
       d.company,
       d.owner,
       d.stage,
       d.amount,
       d.currency,
       d.health_score,
       d.health_category,
       d.close_probability,
       d.risk_factors,
       d.expected_close_date,
       d.framework_version,
       d.scored_at
FROM deals d
WHERE d.stage NOT IN ('closed_won', 'closed_lost')
  AND d.health_category IN ('warning', 'critical')
  AND d.amount >= (SELECT framework_param('alert_value_threshold'))
ORDER BY d.amount DESC, d.deal_id;

-- ---------------------------------------------------------------------------------------------
-- Won deals by close month (UTC month of closed_at); won deals without closed_at are left out.
-- avg_cycle_days: mean of (closed_at - created_at) in days.

CREATE INDEX deals_won_closed_idx ON deals (closed_at) INCLUDE (amount, created_at)
    WHERE stage = 'closed_won';

CREATE VIEW won_deals_summary AS
SELECT date_trunc('month', d.closed_at AT TIME ZONE 'UTC')::date AS month,
       count(*) AS deal_count,
       coalesce(sum(d.amount), 0) AS total_value,
       avg(d.amount) AS avg_deal_size,
       avg(extract(epoch FROM d.closed_at - d.created_at) / 86400) AS avg_cycle_days
FROM deals d
WHERE d.stage = 'closed_won' AND d.closed_at IS NOT NULL
GROUP BY 1
ORDER BY 1;

-- ---------------------------------------------------------------------------------------------
-- Slipped deals: open deals whose expected close date is before the as-of date (overdue), or
-- whose close date was pushed at least once; most overdue first, then largest.
-- Plan: BitmapOr of 001's deals_open_close_date_idx (overdue) and deals_open_pushed_idx.

CREATE INDEX deals_open_pushed_idx ON deals (close_date_pushes)
    WHERE close_date_pushes > 0 AND stage NOT IN ('closed_won', 'closed_lost');

CREATE FUNCTION slipped_deals_as_of(as_of date)
RETURNS TABLE (
    deal_id              text,
    name                 text,
    company              text,
    owner                text,
    stage                text,
    amount               numeric,
    close_probability    numeric,
    health_category      text,
    expected_close_date  date,
    close_date_pushes    integer,
    overdue              boolean,
    days_overdue         integer,
    pushed               boolean
)
LANGUAGE sql STABLE AS $$
    SELECT d.deal_id, d.name, d.company, d.owner, d.stage, d.amount, d.close_probability,
           d.health_category, d.expected_close_date, d.close_date_pushes,
           coalesce(d.expected_close_date < as_of, false),
           CASE WHEN d.expected_close_date IS NOT NULL
                THEN greatest(as_of - d.expected_close_date, 0) END,
           d.close_date_pushes > 0
    FROM deals d
    WHERE d.stage NOT IN ('closed_won', 'closed_lost')
      AND (d.expected_close_date < as_of OR d.close_date_pushes > 0)
    ORDER BY 12 DESC NULLS LAST,
             d.amount DESC NULLS LAST, d.deal_id
$$;

CREATE VIEW slipped_deals AS
SELECT n.as_of, s.*
FROM (SELECT data_as_of_date() AS as_of OFFSET 0) n
CROSS JOIN LATERAL slipped_deals_as_of(n.as_of) s
ORDER BY s.days_overdue DESC NULLS LAST, s.amount DESC NULLS LAST, s.deal_id;

-- ---------------------------------------------------------------------------------------------
-- Stage history, filled by the worker: one row per stint of a deal in a stage. The current
-- stint has left_at NULL; at most one per deal (close it before opening the next: the unique
-- index is checked row by row). Terminal stages (closed_won / closed_lost) stay open.

CREATE TABLE deal_stage_history (
    deal_id     text NOT NULL,
    stage       text NOT NULL CHECK (stage IN ('prospecting', 'qualification', 'proposal',
                                               'negotiation', 'closed_won', 'closed_lost')),
    entered_at  timestamptz NOT NULL,
    left_at     timestamptz,
    PRIMARY KEY (deal_id, entered_at),
    CHECK (left_at IS NULL OR left_at >= entered_at)
);
-- The worker's lookup of a deal's current stint, and the one-open-stint rule.
CREATE UNIQUE INDEX deal_stage_history_open_idx ON deal_stage_history (deal_id)
    WHERE left_at IS NULL;
-- Per-stage scans (velocity; "deals that entered stage X in a period").
CREATE INDEX deal_stage_history_stage_idx ON deal_stage_history (stage, entered_at)
    INCLUDE (left_at);

-- Average days per open stage, over completed stints (left_at set). Stints still running are
-- counted in open_stints but not in the averages (a mean of finished stints: deals that stall
-- longest are the last to count).
CREATE VIEW deal_velocity_by_stage AS
SELECT s.stage,
       s.pos AS stage_position,
       coalesce(a.completed_stints, 0) AS completed_stints,
       a.avg_days,
       a.median_days,
       coalesce(a.open_stints, 0) AS open_stints
FROM (VALUES ('prospecting', 1), ('qualification', 2), ('proposal', 3), ('negotiation', 4))
     AS s (stage, pos)
LEFT JOIN (
    SELECT h.stage,
           count(h.left_at) AS completed_stints,
           avg(extract(epoch FROM h.left_at - h.entered_at) / 86400) AS avg_days,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM h.left_at - h.entered_at) / 86400) AS median_days,
           count(*) - count(h.left_at) AS open_stints
    FROM deal_stage_history h
    GROUP BY h.stage
) a ON a.stage = s.stage
ORDER BY s.pos;

-- Stage-to-stage conversion. For each open stage X, over the deals that ever entered X
-- (counted once, from their first entry): advanced = reached a later stage afterwards (the
-- next stage or beyond, closed_won included; closed_lost is not "later"), won / lost = reached
-- closed_won / closed_lost afterwards. Rates are shares of `entered`. Plan: one grouped pass
-- over the history (per deal), then four rows per deal unpivoted.
CREATE VIEW stage_conversion_rates AS
WITH per_deal AS (
    SELECT h.deal_id,
           min(h.entered_at) FILTER (WHERE h.stage = 'prospecting') AS in_1,
           min(h.entered_at) FILTER (WHERE h.stage = 'qualification') AS in_2,
           min(h.entered_at) FILTER (WHERE h.stage = 'proposal') AS in_3,
           min(h.entered_at) FILTER (WHERE h.stage = 'negotiation') AS in_4,
           max(h.entered_at) FILTER (WHERE stage_position(h.stage) BETWEEN 2 AND 5) AS past_1,
           max(h.entered_at) FILTER (WHERE stage_position(h.stage) BETWEEN 3 AND 5) AS past_2,
           max(h.entered_at) FILTER (WHERE stage_position(h.stage) BETWEEN 4 AND 5) AS past_3,
           max(h.entered_at) FILTER (WHERE h.stage = 'closed_won') AS won_at,
           max(h.entered_at) FILTER (WHERE h.stage = 'closed_lost') AS lost_at
    FROM deal_stage_history h
    GROUP BY h.deal_id
),
per_stage AS (
    SELECT x.pos,
           count(*) AS entered,
           count(*) FILTER (WHERE x.later > x.entered_at) AS advanced,
           count(*) FILTER (WHERE p.won_at > x.entered_at) AS won,
           count(*) FILTER (WHERE p.lost_at > x.entered_at) AS lost
    FROM per_deal p
    CROSS JOIN LATERAL (VALUES (1, p.in_1, p.past_1), (2, p.in_2, p.past_2),
                               (3, p.in_3, p.past_3), (4, p.in_4, p.won_at))
         AS x (pos, entered_at, later)
    WHERE x.entered_at IS NOT NULL
    GROUP BY x.pos
)
SELECT s.stage,
       s.pos AS stage_position,
       s.next_stage,
       coalesce(c.entered, 0) AS entered,
       coalesce(c.advanced, 0) AS advanced,
       coalesce(c.won, 0) AS won,
       coalesce(c.lost, 0) AS lost,
       c.advanced::numeric / nullif(c.entered, 0) AS advance_rate,
       c.won::numeric / nullif(c.entered, 0) AS win_rate,
       c.lost::numeric / nullif(c.entered, 0) AS loss_rate
FROM (VALUES ('prospecting', 1, 'qualification'), ('qualification', 2, 'proposal'),
             ('proposal', 3, 'negotiation'), ('negotiation', 4, 'closed_won'))
     AS s (stage, pos, next_stage)
LEFT JOIN per_stage c ON c.pos = s.pos
ORDER BY s.pos;

-- ---------------------------------------------------------------------------------------------
-- Forecast runs and their per-month snapshots (worker/forecast.py's MonthForecast rows), kept
-- for trend comparison. A run is written as 'running' and set to 'completed' (or 'failed')
-- with finished_at; only completed runs count in trends.

CREATE TABLE forecast_runs (
    run_id             uuid PRIMARY KEY,
    as_of              date NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('scheduled', 'daily', 'manual')),
    status             text NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'completed', 'failed')),
    horizon_months     integer CHECK (horizon_months > 0),
    deal_count         integer CHECK (deal_count >= 0),       -- open deals read
    framework_version  text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    duration_ms        integer CHECK (duration_ms >= 0),
    error              text,
    CHECK ((status = 'running') = (finished_at IS NULL)),
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX forecast_runs_as_of_idx ON forecast_runs (as_of DESC, started_at DESC);

CREATE TABLE forecast_snapshots (
    run_id             uuid NOT NULL REFERENCES forecast_runs (run_id) ON DELETE CASCADE,
    as_of              date NOT NULL,            -- the run's as_of (copied for the trend index)
    month              date NOT NULL CHECK (extract(day FROM month) = 1),
    deal_count         integer NOT NULL CHECK (deal_count >= 0),
    pipeline           numeric NOT NULL,
    weighted           numeric NOT NULL,
    p10                numeric NOT NULL,
    p50                numeric NOT NULL,
    p90                numeric NOT NULL,
    expected_wins      numeric NOT NULL,
    framework_version  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, month),
    CHECK (p10 <= p50 AND p50 <= p90)
);
-- Latest snapshot of a month (at or before a date): (month, as_of DESC) probes.
CREATE INDEX forecast_snapshots_month_idx ON forecast_snapshots (month, as_of DESC)
    INCLUDE (run_id);

-- For each forecast month M: the figures of the latest completed run that forecast M (greatest
-- as_of, then latest started_at), against the prior: the latest completed run whose as_of is
-- at least `lag` earlier, and its figures for month M - `month_shift` (prior_* NULL when there
-- is none). *_change = current - prior; *_change_pct = 100 * change / prior (NULL when the
-- prior is 0 or missing).
--   forecast_trend_mom: lag 1 month, shift 0: how the forecast of the same month was revised
--     over the last month.
--   forecast_trend_yoy: lag 1 year, shift 1 year: the same calendar month a year earlier, as
--     forecast a year earlier (same lead time). With no shift, a same-month comparison a year
--     apart needs a horizon of more than 12 months, and is forecast_trend('1 year', '0').
CREATE FUNCTION forecast_trend(lag interval, month_shift interval)
RETURNS TABLE (
    month                      date,
    run_id                     uuid,
    as_of                      date,
    prior_month                date,
    prior_run_id               uuid,
    prior_as_of                date,
    deal_count                 integer,
    prior_deal_count           integer,
    deal_count_change          integer,
    deal_count_change_pct      numeric,
    pipeline                   numeric,
    prior_pipeline             numeric,
    pipeline_change            numeric,
    pipeline_change_pct        numeric,
    weighted                   numeric,
    prior_weighted             numeric,
    weighted_change            numeric,
    weighted_change_pct        numeric,
    p10                        numeric,
    prior_p10                  numeric,
    p10_change                 numeric,
    p10_change_pct             numeric,
    p50                        numeric,
    prior_p50                  numeric,
    p50_change                 numeric,
    p50_change_pct             numeric,
    p90                        numeric,
    prior_p90                  numeric,
    p90_change                 numeric,
    p90_change_pct             numeric,
    expected_wins              numeric,
    prior_expected_wins        numeric,
    expected_wins_change       numeric,
    expected_wins_change_pct   numeric
)
LANGUAGE sql STABLE AS $$
    WITH latest AS (
        SELECT DISTINCT ON (s.month) s.*
        FROM forecast_snapshots s
        JOIN forecast_runs r ON r.run_id = s.run_id AND r.status = 'completed'
        ORDER BY s.month, s.as_of DESC, r.started_at DESC, s.run_id
    )
    SELECT c.month, c.run_id, c.as_of, p.month, p.run_id, p.as_of,
           c.deal_count, p.deal_count, c.deal_count - p.deal_count,
           100.0 * (c.deal_count - p.deal_count) / nullif(p.deal_count, 0),
           c.pipeline, p.pipeline, c.pipeline - p.pipeline,
           100 * (c.pipeline - p.pipeline) / nullif(p.pipeline, 0),
           c.weighted, p.weighted, c.weighted - p.weighted,
           100 * (c.weighted - p.weighted) / nullif(p.weighted, 0),
           c.p10, p.p10, c.p10 - p.p10, 100 * (c.p10 - p.p10) / nullif(p.p10, 0),
           c.p50, p.p50, c.p50 - p.p50, 100 * (c.p50 - p.p50) / nullif(p.p50, 0),
           c.p90, p.p90, c.p90 - p.p90, 100 * (c.p90 - p.p90) / nullif(p.p90, 0),
           c.expected_wins, p.expected_wins, c.expected_wins - p.expected_wins,
           100 * (c.expected_wins - p.expected_wins) / nullif(p.expected_wins, 0)
    FROM latest c
    LEFT JOIN LATERAL (
        SELECT s.*
        FROM forecast_snapshots s
        JOIN forecast_runs r ON r.run_id = s.run_id AND r.status = 'completed'
        WHERE s.month = (c.month - month_shift)::date AND s.as_of <= (c.as_of - lag)::date
        ORDER BY s.as_of DESC, r.started_at DESC, s.run_id
        LIMIT 1
    ) p ON true
    ORDER BY c.month
$$;

CREATE VIEW forecast_trend_mom AS
SELECT * FROM forecast_trend(interval '1 month', interval '0') ORDER BY month;
CREATE VIEW forecast_trend_yoy AS
SELECT * FROM forecast_trend(interval '1 year', interval '1 year') ORDER BY month;
