-- A clock tick rewrites the scores of every open deal. PostgreSQL keeps such an update on its
-- page, without a new entry in any index (a heap-only tuple), when no indexed column changes
-- and the page has room for the new version: measured on 100,000 deals, 1.6-2.7 s against
-- 7-13 s for the same UPDATE (bench/bench_tick.py).
--
-- * close_probability changes on nearly every tick: it leaves the indexes that carried it as
--   an INCLUDE column (deals_open_stage_idx, deals_open_pipeline_idx: the same key; after a
--   tick no page is all-visible anyway, so an index-only scan read the rows regardless).
--   health_category (deals_open_health_idx) changes on few deals a day: it stays.
-- * Pages of deals are filled to half (fillfactor 50): a deal's row (about 1.8 KB with its
--   score details) finds room for its next version on the same page; the version before is
--   pruned when the page is next visited. New pages only: existing rows move to such pages
--   as they are next rewritten (or at once with VACUUM FULL deals).
ALTER TABLE deals SET (fillfactor = 50);

DROP INDEX deals_open_stage_idx;
DROP INDEX deals_open_pipeline_idx;
CREATE INDEX deals_open_pipeline_idx ON deals (stage)
    INCLUDE (amount, stage_entered_at)
    WHERE stage NOT IN ('closed_won', 'closed_lost');
