-- The learned forecast (worker/forecast/learned.py): each run names the deal model behind it,
-- and each month keeps its parts, so later runs can weigh the model against the seasonal
-- forecast by how both did (the errors of earlier month-0 forecasts against what was won).
ALTER TABLE forecast_runs
    ADD COLUMN model_version text NOT NULL DEFAULT 'heuristic';

ALTER TABLE forecast_snapshots
    ADD COLUMN method        text,
    ADD COLUMN open_pipeline numeric,   -- expected won from open deals not yet due
    ADD COLUMN overdue_part  numeric,   -- expected won from open deals past their close date
    ADD COLUMN new_business  numeric,   -- expected won from deals not created yet
    ADD COLUMN seasonal      numeric,   -- same month of the latest complete quarter
    ADD COLUMN model_weight  numeric,   -- of the model's point against the seasonal one
    ADD COLUMN model_point   numeric;   -- open_pipeline + overdue_part + new_business
