"""The registry's pure part: names, serialised models and their integrity check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from worker.models.registry import (
    ArtifactError,
    ModelVersion,
    dump_model,
    load_model,
    new_version,
    sha256_hex,
    version_name,
)

T = datetime(2026, 11, 26, 4, 10, tzinfo=UTC)


def _fitted() -> LogisticRegression:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    return LogisticRegression().fit(x, [0, 0, 1, 1])


def test_version_name_is_kind_utc_second_and_hash_prefix():
    local = T.astimezone(timezone(timedelta(hours=2)))
    assert version_name("churn", local, "1a2b3c4d" + "0" * 56) == (
        "churn-2026-11-26T04:10:00Z-1a2b3c4d"
    )


def test_a_model_round_trips_through_its_bytes():
    model = _fitted()
    mv = new_version(
        "churn",
        model,
        trained_at=T,
        train_from=T - timedelta(days=90),
        train_to=T,
        samples={"rows": 4, "positive": 2, "negative": 2},
        metrics={"auc": 1.0},
        params={"family": "logistic"},
    )
    assert mv.artifact_sha256 == sha256_hex(mv.artifact)
    assert mv.version.endswith(mv.artifact_sha256[:8])
    assert mv.role is None
    loaded = mv.load()
    x = np.array([[0.5], [2.5]])
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_a_changed_artifact_is_refused_before_unpickling():
    artifact = dump_model(_fitted())
    digest = sha256_hex(artifact)
    tampered = artifact[:-1] + bytes([artifact[-1] ^ 1])
    with pytest.raises(ArtifactError, match="does not match"):
        load_model(tampered, digest)
    with pytest.raises(ArtifactError, match="does not match"):
        load_model(b"", digest)


def test_timestamps_must_be_aware():
    with pytest.raises(ValueError, match="UTC offset"):
        ModelVersion(
            kind="churn",
            version="v",
            trained_at=datetime(2026, 1, 1),
            artifact=b"x",
            artifact_sha256=sha256_hex(b"x"),
        )
