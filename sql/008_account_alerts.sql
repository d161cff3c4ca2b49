-- Account alerts: churn risk at or above the framework's alert line, or a renewal near at high
-- churn risk, raises an account alert through the same outbox as deal alerts (see
-- worker/domain/account_alerts.py).

-- What the worker remembers to alert on transitions only; the churn an alert reports as the
-- previous one is the row's churn_risk / churn_level. Existing accounts start at 'none' and
-- raise their alert, if they are at risk, at their next event or tick.
ALTER TABLE accounts
    ADD COLUMN alert_level text NOT NULL DEFAULT 'none'
        CHECK (alert_level IN ('none', 'at_risk', 'critical'));

-- One outbox for every alert, in one order: entity says whose alert a row is; deal_id holds
-- the subject's id (the deal's or the account's), the key the relay publishes it with.
ALTER TABLE alert_outbox
    ADD COLUMN entity text NOT NULL DEFAULT 'deal' CHECK (entity IN ('deal', 'account'));
COMMENT ON COLUMN alert_outbox.deal_id IS
    'the id of the alert''s subject: a deal id, or an account id when entity = ''account''';
COMMENT ON COLUMN alert_outbox.entity IS 'whose alert: deal or account';
