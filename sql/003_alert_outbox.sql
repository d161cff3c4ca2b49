-- At-risk alerts: per-deal transition tracking and a transactional outbox.

-- What the worker remembers to alert on transitions only (see worker/alerts.py).
ALTER TABLE deals
    ADD COLUMN alert_level text NOT NULL DEFAULT 'none'
        CHECK (alert_level IN ('none', 'at_risk', 'critical')),
    ADD COLUMN alert_ref_probability numeric(5, 2);

-- Alerts are written here in the same transaction as the deal state that caused them; the
-- relay publishes pending rows in seq order and stamps published_at. A crash between the
-- commit and the publish delays an alert, never drops it.
CREATE TABLE alert_outbox (
    seq           bigserial PRIMARY KEY,
    alert_id      uuid NOT NULL UNIQUE,
    deal_id       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('at_risk', 'escalated', 'resolved')),
    payload       jsonb NOT NULL,
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX alert_outbox_pending_idx ON alert_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX alert_outbox_deal_idx ON alert_outbox (deal_id, seq);
