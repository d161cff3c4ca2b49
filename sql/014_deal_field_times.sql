-- The per-field merge (worker/domain/deal.py): each deal field remembers the time of the
-- change that last set or cleared it, so a late change wins or loses by its own time (HubSpot
-- sends one notification per property, unordered, retried for a day). Keys are the deal
-- columns; a field without a key was never set by a change.
ALTER TABLE deals ADD COLUMN field_times jsonb NOT NULL DEFAULT '{}';

-- Deals merged before this column: every field set is as old as the deal's last event (what
-- the merge compared against until now); the stage as old as its stint.
UPDATE deals SET field_times = jsonb_strip_nulls(jsonb_build_object(
    'name', CASE WHEN name IS NOT NULL THEN last_event_time END,
    'company', CASE WHEN company IS NOT NULL THEN last_event_time END,
    'owner', CASE WHEN owner IS NOT NULL THEN last_event_time END,
    'industry', CASE WHEN industry IS NOT NULL THEN last_event_time END,
    'amount', CASE WHEN amount IS NOT NULL THEN last_event_time END,
    'expected_close_date', CASE WHEN expected_close_date IS NOT NULL THEN last_event_time END,
    'lead_score', CASE WHEN lead_score IS NOT NULL THEN last_event_time END,
    'competitors', CASE WHEN competitors <> '{}' THEN last_event_time END,
    'stage', stage_entered_at
));

-- Merged deals (deal.merged: a CRM merged one deal into another). The merged deal leaves
-- `deals` and its stage history (it was neither won nor lost, so it must not count in the
-- pipeline, the win rates or the funnel); its tombstone here makes its later events stale.
-- `deals.merged_into` only mirrors the domain state's field and is always null in `deals`.
ALTER TABLE deals ADD COLUMN merged_into text;
CREATE TABLE merged_deals (
    deal_id         text PRIMARY KEY,
    merged_into     text NOT NULL,
    last_event_id   text NOT NULL,
    last_event_time timestamptz NOT NULL
);

-- A deal first seen through a change, its creation not arrived yet (a dropped webhook): its
-- facts are partial, so it carries no scores, raises no alerts and is not aged by the clock
-- until its deal.created arrives.
ALTER TABLE deals ADD COLUMN incomplete boolean NOT NULL DEFAULT false;
