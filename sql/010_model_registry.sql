-- The model registry: every trained model version of every kind (deal, churn, timing...),
-- with its training window, sample counts, held-out figures, parameters and the fitted model
-- itself (pickled; worker/models/registry.py names and checks it). At most one champion (its
-- scores are the stored ones) and one challenger per kind; a promoted champion's predecessor
-- is retired (worker/store/models.py, in one transaction).
CREATE TABLE model_versions (
    kind                text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    version             text NOT NULL,
    role                text NOT NULL CHECK (role IN ('champion', 'challenger', 'retired')),
    trained_at          timestamptz NOT NULL,
    train_from          timestamptz,            -- earliest outcome trained on
    train_to            timestamptz,            -- latest outcome trained on
    samples             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(samples) = 'object'),
    metrics             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    params              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    artifact            bytea NOT NULL,
    artifact_sha256     text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    role_changed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, version),
    CHECK (train_from IS NULL OR train_to IS NULL OR train_from <= train_to)
);

CREATE UNIQUE INDEX model_versions_one_champion ON model_versions (kind)
    WHERE role = 'champion';
CREATE UNIQUE INDEX model_versions_one_challenger ON model_versions (kind)
    WHERE role = 'challenger';
CREATE INDEX model_versions_by_time ON model_versions (kind, trained_at DESC);
