-- Pipeline change tracking ("flow"): what changed in a period's pipeline between two daily
-- snapshots (deal_snapshots, taken by the clock's ticks). The period's pipeline at a snapshot is
-- its open deals expected to close within [period_start, period_end]. Every deal in either
-- pipeline, or created and closed in between, falls in exactly one movement, so the rows add up:
--   closing = opening + created + pulled_in - pushed_out - won - lost - removed
--             + amount_up - amount_down                                    (value)
--   closing = opening + created + pulled_in - pushed_out - won - lost - removed    (deals)
-- Exits are valued at their opening amount, so the value identity holds exactly. pushed_out
-- counts deals still open whose close date left the period (either way); removed, deals that
-- left both pipelines without closing. stage_moved counts stayers whose stage changed (no
-- value). A snapshot date without a snapshot uses the latest one before it.

CREATE FUNCTION snapshot_on_or_before(day date) RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT max(snapshot_date) FROM deal_snapshots WHERE snapshot_date <= day
$$;

CREATE FUNCTION pipeline_changes(since date, until date, period_start date, period_end date)
RETURNS TABLE (movement text, deals bigint, value numeric, opening_date date, closing_date date)
LANGUAGE sql STABLE AS $$
WITH days AS (
    SELECT s, u, (s::timestamp AT TIME ZONE 'UTC') AS s_at, (u::timestamp AT TIME ZONE 'UTC') AS u_at
    FROM (SELECT snapshot_on_or_before(since) AS s, snapshot_on_or_before(until) AS u) d
),
opening AS (
    SELECT d.deal_id, coalesce(d.amount, 0) AS amount, d.stage, d.expected_close_date
    FROM deal_snapshots d, days WHERE d.snapshot_date = days.s
),
closing AS (
    SELECT d.deal_id, coalesce(d.amount, 0) AS amount, d.stage, d.expected_close_date
    FROM deal_snapshots d, days WHERE d.snapshot_date = days.u
),
o AS (SELECT * FROM opening WHERE expected_close_date BETWEEN period_start AND period_end),
c AS (SELECT * FROM closing WHERE expected_close_date BETWEEN period_start AND period_end),
-- closed between the two snapshots' instants, as the deals table has them now
closed AS (
    SELECT deal_id, stage, coalesce(amount, 0) AS amount, created_at, expected_close_date
    FROM deals, days
    WHERE stage IN ('closed_won', 'closed_lost')
      AND closed_at >= days.s_at AND closed_at < days.u_at
),
moves AS (
    -- in the opening pipeline: stayed (value = amount change), or left it at its opening value
    SELECT CASE
             WHEN c.deal_id IS NOT NULL THEN 'stayed'
             WHEN cl.stage = 'closed_won' THEN 'won'
             WHEN cl.stage = 'closed_lost' THEN 'lost'
             WHEN EXISTS (SELECT 1 FROM closing x WHERE x.deal_id = o.deal_id) THEN 'pushed_out'
             ELSE 'removed'
           END AS movement,
           o.deal_id,
           CASE WHEN c.deal_id IS NOT NULL THEN c.amount - o.amount ELSE o.amount END AS value,
           c.deal_id IS NOT NULL AND o.stage IS DISTINCT FROM c.stage AS stage_changed
    FROM o
    LEFT JOIN c USING (deal_id)
    LEFT JOIN closed cl USING (deal_id)
    UNION ALL
    -- in the closing pipeline only: created since the opening, or pulled in
    SELECT CASE WHEN d.created_at >= days.s_at THEN 'created' ELSE 'pulled_in' END,
           c.deal_id, c.amount, false
    FROM c
    CROSS JOIN days
    JOIN deals d USING (deal_id)
    WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.deal_id = c.deal_id)
    UNION ALL
    -- created and closed between the snapshots, in the period: created, then won or lost
    SELECT m.movement, cl.deal_id, cl.amount, false
    FROM closed cl
    CROSS JOIN days
    CROSS JOIN LATERAL (VALUES ('created'),
        (CASE WHEN cl.stage = 'closed_won' THEN 'won' ELSE 'lost' END)) AS m(movement)
    WHERE cl.created_at >= days.s_at
      AND cl.expected_close_date BETWEEN period_start AND period_end
      AND NOT EXISTS (SELECT 1 FROM o WHERE o.deal_id = cl.deal_id)
      AND NOT EXISTS (SELECT 1 FROM c WHERE c.deal_id = cl.deal_id)
),
flows AS (
    SELECT movement, count(*) AS deals, sum(value) AS value
    FROM moves WHERE movement <> 'stayed' GROUP BY movement
    UNION ALL
    SELECT 'amount_up', count(*), sum(value) FROM moves WHERE movement = 'stayed' AND value > 0
    UNION ALL
    SELECT 'amount_down', count(*), -sum(value) FROM moves WHERE movement = 'stayed' AND value < 0
    UNION ALL
    SELECT 'stage_moved', count(*), 0 FROM moves WHERE movement = 'stayed' AND stage_changed
    UNION ALL
    SELECT 'opening', count(*), sum(amount) FROM o
    UNION ALL
    SELECT 'closing', count(*), sum(amount) FROM c
)
SELECT k.movement, coalesce(f.deals, 0), coalesce(f.value, 0), days.s, days.u
FROM days
CROSS JOIN unnest(ARRAY['opening', 'created', 'pulled_in', 'pushed_out', 'won', 'lost',
                        'removed', 'amount_up', 'amount_down', 'stage_moved', 'closing'])
     WITH ORDINALITY AS k(movement, pos)
LEFT JOIN flows f ON f.movement = k.movement
ORDER BY k.pos
$$;

-- What changed in the current quarter's pipeline over the last 7 days of the data.
CREATE VIEW pipeline_changes_last_week AS
SELECT p.*
FROM (SELECT data_as_of_date() AS today OFFSET 0) n,
     LATERAL pipeline_changes(
         n.today - 7, n.today,
         date_trunc('quarter', n.today)::date,
         (date_trunc('quarter', n.today) + interval '3 months - 1 day')::date
     ) p;
