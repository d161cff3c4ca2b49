-- The learned deal model in the worker (worker/models/deal_scoring.py): every stored close
-- probability names the model version that produced it ('heuristic' for the framework's
-- formula), and the challenger's close probability is stored beside the champion's.
ALTER TABLE deals
    ADD COLUMN prob_model_version text NOT NULL DEFAULT 'heuristic',
    ADD COLUMN challenger_probability numeric(5, 2)
        CHECK (challenger_probability BETWEEN 0 AND 100),
    ADD COLUMN challenger_version text,
    ADD CONSTRAINT deals_challenger_named
        CHECK ((challenger_probability IS NULL) = (challenger_version IS NULL));

-- The daily snapshots keep them too: what was served, by which model, on each day.
ALTER TABLE deal_snapshots
    ADD COLUMN prob_model_version text,
    ADD COLUMN challenger_probability numeric(5, 2),
    ADD COLUMN challenger_version text;
