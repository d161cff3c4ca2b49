"""Pure: what a stored model version is, and how a fitted model travels to and from its bytes.

A version is named ``<kind>-<trained_at, ISO, seconds, Z>-<first 8 hex of the artifact's
SHA-256>`` (``churn-2026-11-26T04:10:00Z-1a2b3c4d``): sortable by training time within a kind,
and two different artifacts trained in the same second still get different names.

The artifact is the fitted model pickled (protocol 5). Loading checks the SHA-256 recorded
beside it first: a truncated or altered artifact is refused, never unpickled. (The hash guards
integrity, not authenticity: only load artifacts from the project's own registry table.)

Roles: at most one ``champion`` (its scores are stored) and one ``challenger`` (trained, being
compared) per kind; a promoted champion's predecessor becomes ``retired``. The persistence is
``worker.store.models``.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ArtifactError",
    "ModelVersion",
    "Role",
    "SavedVersion",
    "dump_model",
    "load_model",
    "new_version",
    "sha256_hex",
    "version_name",
]

Role = Literal["champion", "challenger", "retired"]
ROLES: tuple[Role, ...] = ("champion", "challenger", "retired")


class ArtifactError(ValueError):
    """An artifact whose bytes do not match its recorded SHA-256 (or do not unpickle)."""


class ModelVersion(BaseModel):
    """One trained model version as the registry stores it (``model_versions`` row)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="deal, churn, timing...")
    version: str = Field(min_length=1, max_length=200)
    role: Role | None = Field(None, description="None until saved with a role")
    trained_at: datetime
    train_from: datetime | None = Field(None, description="earliest outcome trained on")
    train_to: datetime | None = Field(None, description="latest outcome trained on")
    samples: dict[str, int] = Field(default_factory=dict, description='{"rows": .., ...}')
    metrics: dict[str, Any] = Field(default_factory=dict, description="held-out figures")
    params: dict[str, Any] = Field(default_factory=dict, description="model choices")
    artifact: bytes = Field(repr=False)
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("trained_at", "train_from", "train_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must carry a UTC offset")
        return value

    def load(self) -> Any:
        """The fitted model (integrity checked)."""
        return load_model(self.artifact, self.artifact_sha256)


@dataclass(frozen=True, slots=True)
class SavedVersion:
    """A version as saved (a training's or a promotion's), with its role, and the scores
    recomputed with it (0 unless it became the champion)."""

    version: ModelVersion
    rescored: int


def sha256_hex(artifact: bytes) -> str:
    return hashlib.sha256(artifact).hexdigest()


def dump_model(model: Any) -> bytes:
    """The fitted model as bytes (pickle protocol 5)."""
    return pickle.dumps(model, protocol=5)


def load_model(artifact: bytes, expected_sha256: str) -> Any:
    """The model pickled in ``artifact``, after checking its SHA-256 against the recorded one."""
    actual = sha256_hex(artifact)
    if actual != expected_sha256:
        raise ArtifactError(
            f"artifact sha256 {actual[:12]}... does not match the recorded "
            f"{expected_sha256[:12]}...: refusing to load it"
        )
    try:
        return pickle.loads(artifact)  # integrity-checked, from our own table
    except Exception as exc:  # a library too old or too new for the pickle, for instance
        raise ArtifactError(f"artifact does not load: {type(exc).__name__}: {exc}") from exc


def version_name(kind: str, trained_at: datetime, artifact_sha256: str) -> str:
    """``<kind>-<trained_at UTC, seconds>Z-<8 hex of the artifact's SHA-256>``."""
    stamp = trained_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{kind}-{stamp}-{artifact_sha256[:8]}"


def new_version(
    kind: str,
    model: Any,
    *,
    trained_at: datetime,
    train_from: datetime | None = None,
    train_to: datetime | None = None,
    samples: dict[str, int] | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> ModelVersion:
    """A version of ``model`` ready to save: serialised, hashed and named. ``trained_at`` is
    the caller's (the pure centre never reads the clock)."""
    artifact = dump_model(model)
    digest = sha256_hex(artifact)
    return ModelVersion(
        kind=kind,
        version=version_name(kind, trained_at, digest),
        trained_at=trained_at,
        train_from=train_from,
        train_to=train_to,
        samples=dict(samples or {}),
        metrics=dict(metrics or {}),
        params=dict(params or {}),
        artifact=artifact,
        artifact_sha256=digest,
    )
