-- A deal with no amount yet gets a predicted value (worker/engine/value.py,
-- predict_value_for_deal: the framework's typical deal size for its industry). Kept apart from
-- amount: pipeline sums and alerts use real amounts only; the breakdown is in
-- score_details->'value'.
ALTER TABLE deals ADD COLUMN predicted_amount numeric(16, 2) CHECK (predicted_amount >= 0);
