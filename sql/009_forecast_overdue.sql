-- Honest about slipped deals: an open deal past its expected close date is no longer folded
-- into the current month. Forecast runs keep an overdue line of their own (its probabilities
-- decay with the time overdue), and the SQL monthly forecast shows it as a row of its own.

ALTER TABLE forecast_runs
    ADD COLUMN overdue_deals          integer,
    ADD COLUMN overdue_pipeline       numeric,
    ADD COLUMN overdue_weighted       numeric,
    ADD COLUMN overdue_p10            numeric,
    ADD COLUMN overdue_p50            numeric,
    ADD COLUMN overdue_p90            numeric,
    ADD COLUMN overdue_expected_wins  numeric;

INSERT INTO framework_params (key, value) VALUES ('overdue_half_life_days', 30)
ON CONFLICT (key) DO NOTHING;

-- Open deals with an expected close date by month from the as-of month on, and one 'overdue'
-- row (month NULL) for those past their expected close date (by day): its weighted_forecast
-- decays each probability by 0.5 ^ (days overdue / overdue_half_life_days).
DROP VIEW revenue_forecast_monthly;
DROP FUNCTION forecast_monthly(date);
CREATE FUNCTION forecast_monthly(as_of date)
RETURNS TABLE (
    line                    text,
    month                   date,
    deal_count              bigint,
    pipeline                numeric,
    weighted_forecast       numeric
)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN d.expected_close_date < as_of THEN 'overdue' ELSE 'month' END,
           CASE WHEN d.expected_close_date < as_of THEN NULL
                ELSE date_trunc('month', d.expected_close_date::timestamp)::date END,
           count(*),
           coalesce(sum(d.amount), 0),
           coalesce(sum(d.amount * d.close_probability / 100 * CASE
               WHEN d.expected_close_date < as_of
               THEN power(0.5, (as_of - d.expected_close_date)
                               / (SELECT framework_param('overdue_half_life_days')))
               ELSE 1 END), 0)
    FROM deals d
    WHERE d.stage NOT IN ('closed_won', 'closed_lost') AND d.expected_close_date IS NOT NULL
    GROUP BY 1, 2
    ORDER BY 1 DESC, 2
$$;

CREATE VIEW revenue_forecast_monthly AS
SELECT n.as_of, f.*
FROM (SELECT data_as_of_date() AS as_of OFFSET 0) n
CROSS JOIN LATERAL forecast_monthly(n.as_of) f
ORDER BY f.line DESC, f.month;

-- Month-over-month trends compare with the run a calendar month earlier: a run as of a
-- month's last day compares with the previous month's last day (30 April with 31 March, not
-- 30 March, which would miss a run on the 31st).
CREATE OR REPLACE FUNCTION months_earlier(day date, lag interval) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN day = (date_trunc('month', day) + interval '1 month - 1 day')::date
        THEN (date_trunc('month', day - lag) + interval '1 month - 1 day')::date
        ELSE (day - lag)::date
    END
$$;

CREATE OR REPLACE FUNCTION forecast_trend(lag interval, month_shift interval)
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
        WHERE s.month = (c.month - month_shift)::date AND s.as_of <= months_earlier(c.as_of, lag)
        ORDER BY s.as_of DESC, r.started_at DESC, s.run_id
        LIMIT 1
    ) p ON true
    ORDER BY c.month
$$;
