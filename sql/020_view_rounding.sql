-- Views print what a reader can use: money to cents, rates and shares to 4 places, durations
-- in days to 2 places. A numeric division otherwise prints 20 digits (28.41508703703703703527).
-- Only the views round; the functions they wrap (pipeline_summary, forecast_monthly,
-- forecast_trend, ...) keep full precision for callers that compute further. Every column keeps
-- its name, order and type (CREATE OR REPLACE VIEW checks it): median_days stays double
-- precision. Money columns: amounts and their sums, averages and changes; percentages
-- (*_change_pct) and rates 4 places; expected_wins (a sum of probabilities) 4 places.

CREATE OR REPLACE VIEW revenue_pipeline_summary AS
SELECT n.as_of,
       p.stage,
       p.stage_position,
       p.deal_count,
       round(p.total_value, 2) AS total_value,
       round(p.weighted_value, 2) AS weighted_value,
       round(p.avg_deal_size, 2) AS avg_deal_size,
       round(p.avg_days_in_stage, 2) AS avg_days_in_stage
FROM (SELECT data_as_of() AS as_of OFFSET 0) n
CROSS JOIN LATERAL pipeline_summary(n.as_of) p
ORDER BY p.stage_position;

CREATE OR REPLACE VIEW revenue_forecast_monthly AS
SELECT n.as_of,
       f.line,
       f.month,
       f.deal_count,
       round(f.pipeline, 2) AS pipeline,
       round(f.weighted_forecast, 2) AS weighted_forecast
FROM (SELECT data_as_of_date() AS as_of OFFSET 0) n
CROSS JOIN LATERAL forecast_monthly(n.as_of) f
ORDER BY f.line DESC, f.month;

CREATE OR REPLACE VIEW won_deals_summary AS
SELECT date_trunc('month', d.closed_at AT TIME ZONE 'UTC')::date AS month,
       count(*) AS deal_count,
       round(coalesce(sum(d.amount), 0), 2) AS total_value,
       round(avg(d.amount), 2) AS avg_deal_size,
       round(avg(extract(epoch FROM d.closed_at - d.created_at) / 86400), 2) AS avg_cycle_days
FROM deals d
WHERE d.stage = 'closed_won' AND d.closed_at IS NOT NULL
GROUP BY 1
ORDER BY 1;

CREATE OR REPLACE VIEW deal_velocity_by_stage AS
SELECT s.stage,
       s.pos AS stage_position,
       coalesce(a.completed_stints, 0) AS completed_stints,
       round(a.avg_days, 2) AS avg_days,
       round(a.median_days::numeric, 2)::double precision AS median_days,
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

-- 004's definition with its rates rounded (the CTEs are unchanged).
CREATE OR REPLACE VIEW stage_conversion_rates AS
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
       round(c.advanced::numeric / nullif(c.entered, 0), 4) AS advance_rate,
       round(c.won::numeric / nullif(c.entered, 0), 4) AS win_rate,
       round(c.lost::numeric / nullif(c.entered, 0), 4) AS loss_rate
FROM (VALUES ('prospecting', 1, 'qualification'), ('qualification', 2, 'proposal'),
             ('proposal', 3, 'negotiation'), ('negotiation', 4, 'closed_won'))
     AS s (stage, pos, next_stage)
LEFT JOIN per_stage c ON c.pos = s.pos
ORDER BY s.pos;

-- The trend views over forecast_trend(lag, shift): same columns, rounded.
CREATE OR REPLACE VIEW forecast_trend_mom AS
    SELECT t.month, t.run_id, t.as_of, t.prior_month, t.prior_run_id, t.prior_as_of,
           t.deal_count, t.prior_deal_count, t.deal_count_change,
           round(t.deal_count_change_pct, 4) AS deal_count_change_pct,
           round(t.pipeline, 2) AS pipeline, round(t.prior_pipeline, 2) AS prior_pipeline,
           round(t.pipeline_change, 2) AS pipeline_change,
           round(t.pipeline_change_pct, 4) AS pipeline_change_pct,
           round(t.weighted, 2) AS weighted, round(t.prior_weighted, 2) AS prior_weighted,
           round(t.weighted_change, 2) AS weighted_change,
           round(t.weighted_change_pct, 4) AS weighted_change_pct,
           round(t.p10, 2) AS p10, round(t.prior_p10, 2) AS prior_p10,
           round(t.p10_change, 2) AS p10_change, round(t.p10_change_pct, 4) AS p10_change_pct,
           round(t.p50, 2) AS p50, round(t.prior_p50, 2) AS prior_p50,
           round(t.p50_change, 2) AS p50_change, round(t.p50_change_pct, 4) AS p50_change_pct,
           round(t.p90, 2) AS p90, round(t.prior_p90, 2) AS prior_p90,
           round(t.p90_change, 2) AS p90_change, round(t.p90_change_pct, 4) AS p90_change_pct,
           round(t.expected_wins, 4) AS expected_wins,
           round(t.prior_expected_wins, 4) AS prior_expected_wins,
           round(t.expected_wins_change, 4) AS expected_wins_change,
           round(t.expected_wins_change_pct, 4) AS expected_wins_change_pct
    FROM forecast_trend(interval '1 month', interval '0') t
    ORDER BY t.month;

CREATE OR REPLACE VIEW forecast_trend_yoy AS
    SELECT t.month, t.run_id, t.as_of, t.prior_month, t.prior_run_id, t.prior_as_of,
           t.deal_count, t.prior_deal_count, t.deal_count_change,
           round(t.deal_count_change_pct, 4) AS deal_count_change_pct,
           round(t.pipeline, 2) AS pipeline, round(t.prior_pipeline, 2) AS prior_pipeline,
           round(t.pipeline_change, 2) AS pipeline_change,
           round(t.pipeline_change_pct, 4) AS pipeline_change_pct,
           round(t.weighted, 2) AS weighted, round(t.prior_weighted, 2) AS prior_weighted,
           round(t.weighted_change, 2) AS weighted_change,
           round(t.weighted_change_pct, 4) AS weighted_change_pct,
           round(t.p10, 2) AS p10, round(t.prior_p10, 2) AS prior_p10,
           round(t.p10_change, 2) AS p10_change, round(t.p10_change_pct, 4) AS p10_change_pct,
           round(t.p50, 2) AS p50, round(t.prior_p50, 2) AS prior_p50,
           round(t.p50_change, 2) AS p50_change, round(t.p50_change_pct, 4) AS p50_change_pct,
           round(t.p90, 2) AS p90, round(t.prior_p90, 2) AS prior_p90,
           round(t.p90_change, 2) AS p90_change, round(t.p90_change_pct, 4) AS p90_change_pct,
           round(t.expected_wins, 4) AS expected_wins,
           round(t.prior_expected_wins, 4) AS prior_expected_wins,
           round(t.expected_wins_change, 4) AS expected_wins_change,
           round(t.expected_wins_change_pct, 4) AS expected_wins_change_pct
    FROM forecast_trend(interval '1 year', interval '1 year') t
    ORDER BY t.month;

CREATE OR REPLACE VIEW pipeline_changes_last_week AS
SELECT p.movement, p.deals, round(p.value, 2) AS value, p.opening_date, p.closing_date
FROM (SELECT data_as_of_date() AS today OFFSET 0) n,
     LATERAL pipeline_changes(
         n.today - 7, n.today,
         date_trunc('quarter', n.today)::date,
         (date_trunc('quarter', n.today) + interval '3 months - 1 day')::date
     ) p;
