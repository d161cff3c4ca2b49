"""Account expansion: ``score_expansion(account, framework)`` -> 0-100 and a recommended motion.

Components, each 0-100 (parameters: ``[defaults.expansion]`` + vertical overrides):

* seat_utilisation = clamp(100 * (u - utilisation_floor) / (utilisation_full - utilisation_floor)),
                     u = active_seats / licensed_seats (may exceed 1)
* feature_adoption = 100 * features_adopted / features_available
* plan_headroom    = tiers[plan_tier].headroom
* health           = the given health; else 100 - churn_risk; else default_health
* usage_growth     = clamp(50 + 50 * growth / growth_full); flat usage = 50. ``growth`` is the
                     given ``usage_growth`` or the trend of ``usage`` (recent half's mean against
                     the earlier half's; usage rising from nothing counts as +100 %); unknown: 50.

score = round_half_up(sum(weight * component)).

Recommended motion:

1. "none" when health < min_health_for_motion (fix the account first) or
   score < min_score_for_motion;
2. otherwise the candidates: "seat_expansion" when u >= seat_motion_utilisation;
   "plan_upgrade" when feature adoption >= upgrade_motion_adoption and the plan is not the top
   tier (highest rank), "cross_sell" for the same adoption on the top tier; the candidate with
   the higher component (seat_utilisation vs feature_adoption) wins, seats on a tie;
3. no candidate: "none".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._common import Model, Result, clamp, round_half_up, trend
from .framework import Framework, normalize_key

__all__ = [
    "ExpansionComponent",
    "ExpansionInput",
    "ExpansionResult",
    "Motion",
    "score_expansion",
]

Motion = Literal["seat_expansion", "plan_upgrade", "cross_sell", "none"]


class ExpansionInput(Model):
    account_id: str | None = Field(None, max_length=200, description="For the caller's use.")
    industry: str | None = Field(None, max_length=300, description="Industry (vertical).")
    plan_tier: str = Field(min_length=1, max_length=60, description="Current plan, e.g. starter.")
    licensed_seats: int = Field(ge=1, le=10_000_000, description="Seats paid for.")
    active_seats: int = Field(ge=0, le=10_000_000, description="Seats in use (may exceed).")
    features_adopted: int = Field(ge=0, le=100_000, description="Features the account uses.")
    features_available: int = Field(ge=1, le=100_000, description="Features available on the plan.")
    health: float | None = Field(None, ge=0, le=100, description="Account health 0-100.")
    churn_risk: float | None = Field(
        None, ge=0, le=100, description="Churn risk 0-100; health = 100 - churn_risk."
    )
    usage: list[float] = Field(
        default_factory=list, max_length=1000, description="Usage per period, oldest first."
    )
    usage_growth: float | None = Field(
        None, ge=-1, le=100, description="Relative usage growth (0.2 = +20 %); wins over usage."
    )

    @field_validator("plan_tier")
    @classmethod
    def _tier_key(cls, value: str) -> str:
        return normalize_key(value)

    @model_validator(mode="after")
    def _consistent(self) -> ExpansionInput:
        if self.features_adopted > self.features_available:
            raise ValueError("features_adopted cannot exceed features_available")
        if self.health is not None and self.churn_risk is not None:
            raise ValueError("give either health or churn_risk, not both")
        if any(x < 0 for x in self.usage):
            raise ValueError("usage counts must not be negative")
        return self


class ExpansionComponent(Model):
    value: float = Field(description="0-100.")
    weight: float
    contribution: float = Field(description="weight * value.")


class ExpansionBreakdown(Model):
    seat_utilisation: ExpansionComponent
    feature_adoption: ExpansionComponent
    plan_headroom: ExpansionComponent
    health: ExpansionComponent
    usage_growth: ExpansionComponent
    utilisation: float = Field(description="active / licensed seats.")
    adoption: float = Field(description="adopted / available features.")
    growth: float | None = Field(description="Relative usage growth used, None if unknown.")
    health_source: Literal["given", "churn_risk", "default"]
    top_tier: bool


class ExpansionResult(Result):
    score: int = Field(description="Expansion potential 0-100.")
    motion: Motion
    motion_reason: str
    drivers: tuple[str, ...] = Field(description="The components in words, biggest first.")
    breakdown: ExpansionBreakdown
    framework_version: str


def score_expansion(account: ExpansionInput, framework: Framework) -> ExpansionResult:
    """Expansion score and motion of an account (formula: module docstring).

    Raises ValueError for a plan tier the framework does not know."""
    resolved = framework.for_industry(account.industry)
    ep = resolved.params.expansion
    tier = ep.tiers.get(account.plan_tier)
    if tier is None:
        known = ", ".join(sorted(ep.tiers))
        raise ValueError(f"unknown plan tier {account.plan_tier!r} (known: {known})")
    top = tier.rank >= max(t.rank for t in ep.tiers.values())

    utilisation = account.active_seats / account.licensed_seats
    seat = clamp(
        100.0 * (utilisation - ep.utilisation_floor) / (ep.utilisation_full - ep.utilisation_floor)
    )
    adoption = account.features_adopted / account.features_available
    feature = 100.0 * adoption
    headroom = tier.headroom
    if account.health is not None:
        health, health_source = account.health, "given"
    elif account.churn_risk is not None:
        health, health_source = 100.0 - account.churn_risk, "churn_risk"
    else:
        health, health_source = ep.default_health, "default"
    growth = account.usage_growth
    if growth is None:
        tr = trend(account.usage)
        if tr is not None:
            growth = tr.change if tr.change is not None else (1.0 if tr.recent_mean else 0.0)
    growth_score = 50.0 if growth is None else clamp(50.0 + 50.0 * growth / ep.growth_full)

    w = ep.weights
    parts = {
        "seat_utilisation": (seat, w.seat_utilisation),
        "feature_adoption": (feature, w.feature_adoption),
        "plan_headroom": (headroom, w.plan_headroom),
        "health": (health, w.health),
        "usage_growth": (growth_score, w.usage_growth),
    }
    components = {
        name: ExpansionComponent(value=v, weight=wt, contribution=v * wt)
        for name, (v, wt) in parts.items()
    }
    score = round_half_up(sum(c.contribution for c in components.values()))

    texts = {
        "seat_utilisation": f"{utilisation:.0%} of licensed seats in use "
        f"({account.active_seats}/{account.licensed_seats})",
        "feature_adoption": f"Uses {account.features_adopted} of "
        f"{account.features_available} available features ({adoption:.0%})",
        "plan_headroom": f"On the {account.plan_tier} plan"
        + (" (top tier)" if top else f" (headroom {headroom:g}/100)"),
        "health": f"Account health {health:.0f}/100"
        + {"given": "", "churn_risk": " (from churn risk)", "default": " (assumed)"}[health_source],
        "usage_growth": "No usage trend data"
        if growth is None
        else f"Usage {'up' if growth > 0 else 'down' if growth < 0 else 'flat'}"
        + (f" {abs(growth):.0%}" if growth else ""),
    }
    order = sorted(components, key=lambda n: components[n].contribution, reverse=True)
    drivers = tuple(texts[n] for n in order)

    motion: Motion
    if health < ep.min_health_for_motion:
        motion = "none"
        reason = (
            f"Account health {health:.0f} is below {ep.min_health_for_motion:g}: "
            "stabilise the account before expanding"
        )
    elif score < ep.min_score_for_motion:
        motion = "none"
        reason = f"Expansion score {score} is below {ep.min_score_for_motion:g}"
    else:
        candidates: list[tuple[float, int, Motion, str]] = []
        if utilisation >= ep.seat_motion_utilisation:
            candidates.append(
                (seat, 1, "seat_expansion", f"{utilisation:.0%} of seats in use: add seats")
            )
        if adoption >= ep.upgrade_motion_adoption:
            if top:
                candidates.append(
                    (
                        feature,
                        0,
                        "cross_sell",
                        f"{adoption:.0%} of features adopted on the top "
                        "tier: offer adjacent products",
                    )
                )
            else:
                candidates.append(
                    (
                        feature,
                        0,
                        "plan_upgrade",
                        f"{adoption:.0%} of features adopted: upgrade to a higher plan",
                    )
                )
        if candidates:
            _, _, motion, reason = max(candidates)
        else:
            motion = "none"
            reason = "No seat pressure or broad feature adoption yet"

    return ExpansionResult(
        score=score,
        motion=motion,
        motion_reason=reason,
        drivers=drivers,
        breakdown=ExpansionBreakdown(
            **components,
            utilisation=utilisation,
            adoption=adoption,
            growth=growth,
            health_source=health_source,
            top_tier=top,
        ),
        framework_version=resolved.version,
    )
