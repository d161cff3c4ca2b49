"""The scoring framework: every weight, threshold and base rate, loaded from one TOML file.

``load_framework()`` reads the packaged ``framework.toml`` (or a user's file), validates it with
the pydantic models below (``FrameworkSpec``) and returns a :class:`Framework`. Per-vertical
overrides (``[verticals.<industry>]``) are deep-merged over ``[defaults]`` and validated at load,
so a bad override fails loudly at start-up rather than at the first deal of that industry.

``Framework.for_industry(industry)`` returns the :class:`ResolvedParams` for an industry: the
validated pydantic parameters plus :class:`DealTables`, the same numbers flattened into a slots
dataclass (per-stage tables precomputed) for the deal-scoring hot path. Results are cached per
industry string. Industry matching is case-insensitive and treats runs of spaces, hyphens and
underscores alike ("Financial Services" == "financial-services" == "financial_services"); an
unknown or missing industry gets the defaults.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.deal_events import OPEN_STAGES, DealStage

from ._common import JsonDict, json_dict

__all__ = [
    "ComponentWeights",
    "DealTables",
    "Framework",
    "FrameworkError",
    "FrameworkSpec",
    "ResolvedParams",
    "ScoringParams",
    "StageTable",
    "default_framework",
    "load_framework",
    "normalize_key",
]

DEFAULT_FRAMEWORK_FILE = "framework.toml"
_WEIGHT_TOLERANCE = 1e-6
_MAX_CACHED_INDUSTRY_SPELLINGS = 4096

Share = Annotated[float, Field(ge=0, le=1)]
Points = Annotated[float, Field(ge=0, le=100)]
Days = Annotated[float, Field(ge=0, le=3650)]


class FrameworkError(ValueError):
    """The framework file cannot be read, parsed or validated."""


def normalize_key(name: str) -> str:
    """Industry / plan / tier lookup key: case-folded, spaces and hyphens become underscores."""
    return re.sub(r"[\s_\-]+", "_", name.strip().casefold())


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_sum(name: str, values: Mapping[str, float], total: float) -> None:
    got = sum(values.values())
    if abs(got - total) > _WEIGHT_TOLERANCE:
        parts = ", ".join(f"{k}={v:g}" for k, v in values.items())
        raise ValueError(f"{name} must sum to {total:g}, got {got:g} ({parts})")


class _Weights(_Section):
    """A section whose fields are all weights that must sum to 1; ``label`` names them in the
    error."""

    label: ClassVar[str]

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        _check_sum(self.label, self.model_dump(), 1.0)
        return self


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


class StageParams(_Section):
    norm_days: float = Field(
        gt=0, le=3650, description="Expected number of days a deal spends in this stage."
    )
    base_rate: Points = Field(
        description="Share of deals in this stage that end up won, in percent: the starting "
        "point of the close probability."
    )
    qualification_expected: bool = Field(
        description="When true, a missing budget, champion or decision maker is reported as a "
        "risk factor at this stage (it always counts in the qualification component)."
    )
    qualification_floor: Points = Field(
        0,
        description="Lowest qualification component at this stage: early stages are not "
        "expected to be qualified yet, so a new, unqualified deal is not unhealthy for it.",
    )


class StagesParams(_Section):
    prospecting: StageParams = Field(description="First contact, need not yet established.")
    qualification: StageParams = Field(description="Need, budget and authority being checked.")
    proposal: StageParams = Field(description="A proposal or quote is with the buyer.")
    negotiation: StageParams = Field(description="Terms and price being negotiated.")

    def of(self, stage: DealStage) -> StageParams:
        return getattr(self, stage.value)


# --------------------------------------------------------------------------------------------
# Deal health
# --------------------------------------------------------------------------------------------


class HealthWeights(_Weights):
    label = "health weights"

    velocity: Share = Field(description="Weight of the velocity component (days in stage).")
    engagement: Share = Field(description="Weight of the engagement component (activity).")
    qualification: Share = Field(description="Weight of the qualification component.")
    slippage: Share = Field(description="Weight of the slippage component (close-date moves).")


class HealthCategories(_Section):
    healthy_min: Points = Field(description="Lowest health score categorised as healthy.")
    warning_min: Points = Field(
        description="Lowest health score categorised as warning; below it is critical."
    )

    @model_validator(mode="after")
    def _ordered(self) -> HealthCategories:
        if self.warning_min > self.healthy_min:
            raise ValueError("warning_min must not exceed healthy_min")
        return self


class VelocityParams(_Section):
    zero_at_norm_multiple: float = Field(
        gt=1,
        le=100,
        description="Velocity falls linearly from 100 at the stage norm to 0 at this multiple "
        "of the norm.",
    )
    stall_risk_norm_multiple: float = Field(
        ge=1,
        le=100,
        description="A deal longer in its stage than this multiple of the norm gets a "
        "'Stagnant in <stage>' risk factor.",
    )


class EngagementParams(_Section):
    recency_weight: Share = Field(description="Weight of recency within engagement.")
    frequency_weight: Share = Field(description="Weight of activity frequency within engagement.")
    recency_full_days: Days = Field(
        description="Recency is 100 while the last activity is at most this many days old."
    )
    recency_zero_days: Days = Field(
        description="Recency is 0 once the last activity is this many days old (linear between)."
    )
    target_interactions_per_week: float = Field(
        gt=0, le=1000, description="Interactions per week that earn a frequency of 100."
    )
    min_weeks: float = Field(
        gt=0,
        le=52,
        description="Deal age in weeks is at least this when computing interactions per week, "
        "so brand-new deals are not judged on a few hours.",
    )
    inactive_risk_days: Days = Field(
        description="Report 'No activity for N days' once N reaches this."
    )
    low_frequency_risk_ratio: Share = Field(
        description="Report a low activity rate when interactions per week fall below this "
        "share of the target."
    )
    frequency_risk_min_age_days: Days = Field(
        description="Only report a low activity rate for deals at least this many days old."
    )

    @model_validator(mode="after")
    def _consistent(self) -> EngagementParams:
        _check_sum(
            "engagement weights",
            {"recency_weight": self.recency_weight, "frequency_weight": self.frequency_weight},
            1.0,
        )
        if self.recency_zero_days <= self.recency_full_days:
            raise ValueError("recency_zero_days must be greater than recency_full_days")
        return self


class QualificationParams(_Section):
    budget_points: Points = Field(description="Points when the budget is confirmed.")
    champion_points: Points = Field(description="Points when the deal has a champion.")
    decision_maker_points: Points = Field(description="Points when a decision maker is engaged.")
    lead_score_points: Points = Field(
        description="Points at lead score 100 (scaled by lead_score / 100)."
    )
    unknown_lead_score: Points = Field(description="Lead score assumed when the CRM has none.")
    low_lead_score_risk: Points = Field(
        description="Report 'Low lead score' when the lead score is below this."
    )

    @model_validator(mode="after")
    def _sums_to_hundred(self) -> QualificationParams:
        _check_sum(
            "qualification points",
            {
                "budget_points": self.budget_points,
                "champion_points": self.champion_points,
                "decision_maker_points": self.decision_maker_points,
                "lead_score_points": self.lead_score_points,
            },
            100.0,
        )
        return self


class SlippageParams(_Section):
    points_per_push: Points = Field(description="Slippage points lost per close-date push.")
    max_push_penalty: Points = Field(description="Cap on the points lost to pushes.")
    points_per_overdue_day: Points = Field(
        description="Slippage points lost per day past the expected close date."
    )
    max_overdue_penalty: Points = Field(description="Cap on the points lost to overdue days.")
    push_risk_min: int = Field(
        ge=1, le=1000, description="Report 'Close date pushed N times' once N reaches this."
    )


class HealthParams(_Section):
    weights: HealthWeights = Field(description="Component weights; must sum to 1.")
    categories: HealthCategories = Field(description="Score thresholds of the categories.")
    velocity: VelocityParams = Field(description="Days-in-stage against the stage norm.")
    engagement: EngagementParams = Field(description="Activity recency and frequency.")
    qualification: QualificationParams = Field(description="Budget, champion, DM, lead score.")
    slippage: SlippageParams = Field(description="Close-date pushes and overdue close dates.")


# --------------------------------------------------------------------------------------------
# Close probability
# --------------------------------------------------------------------------------------------


class ProbabilityConfidence(_Section):
    min_interactions: int = Field(
        ge=0, le=100_000, description="Interactions needed for the 'enough activity' signal."
    )
    min_age_days: Days = Field(description="Deal age needed for the 'established deal' signal.")
    late_stages: tuple[DealStage, ...] = Field(
        description="Stages that count as the 'late stage' signal."
    )
    high_min_signals: int = Field(ge=0, le=5, description="Signals needed for high confidence.")
    medium_min_signals: int = Field(
        ge=0, le=5, description="Signals needed for medium confidence (fewer: low)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ProbabilityConfidence:
        if self.medium_min_signals > self.high_min_signals:
            raise ValueError("medium_min_signals must not exceed high_min_signals")
        return self


class ProbabilityParams(_Section):
    min_open: Points = Field(description="Lowest probability an open deal can have, in percent.")
    max_open: Points = Field(description="Highest probability an open deal can have, in percent.")
    engagement_max_boost: Points = Field(
        description="Percentage points added at engagement 100 (scaled by engagement / 100)."
    )
    budget_points: Points = Field(description="Points added when the budget is confirmed.")
    decision_maker_points: Points = Field(
        description="Points added when a decision maker is engaged."
    )
    champion_points: Points = Field(description="Points added when the deal has a champion.")
    lead_score_points: Points = Field(
        description="Points added at lead score 100 (scaled; unknown lead score adds nothing)."
    )
    objection_points: Points = Field(description="Points added per handled objection.")
    max_objections: int = Field(ge=0, le=1000, description="Handled objections counted at most.")
    velocity_max_penalty: Points = Field(
        description="Points subtracted at velocity 0 (scaled by (100 - velocity) / 100)."
    )
    competitor_points: Points = Field(description="Points subtracted per competitor mentioned.")
    max_competition_penalty: Points = Field(description="Cap on the competition penalty.")
    confidence: ProbabilityConfidence = Field(description="How confidence is graded.")

    @model_validator(mode="after")
    def _ordered(self) -> ProbabilityParams:
        if self.min_open >= self.max_open:
            raise ValueError("min_open must be below max_open")
        return self


# --------------------------------------------------------------------------------------------
# Deal value
# --------------------------------------------------------------------------------------------

BillingCycle = Literal["monthly", "quarterly", "annual"]
PlanKey = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,60}$")]


class ExpansionLevels(_Section):
    low: Share = Field(description="Expansion potential 'low' as a 0-1 number.")
    medium: Share = Field(description="Expansion potential 'medium' as a 0-1 number.")
    high: Share = Field(description="Expansion potential 'high' as a 0-1 number.")


class StageFactors(_Section):
    prospecting: float = Field(gt=0, le=10, description="Value factor in prospecting.")
    qualification: float = Field(gt=0, le=10, description="Value factor in qualification.")
    proposal: float = Field(gt=0, le=10, description="Value factor in proposal.")
    negotiation: float = Field(gt=0, le=10, description="Value factor in negotiation.")
    closed_won: float = Field(gt=0, le=10, description="Value factor of a won deal.")
    closed_lost: float = Field(gt=0, le=10, description="Value factor of a lost deal.")

    def of(self, stage: DealStage) -> float:
        return getattr(self, stage.value)


class PlanParams(_Section):
    list_price_per_user: float = Field(
        ge=0, le=1e9, description="List price per user per month, when the input gives none."
    )


class BillingCycleParams(_Section):
    discount: Share = Field(description="Price reduction for paying on this cycle.")
    multiplier: float = Field(
        gt=0, le=10, description="Expected share of the contracted term actually billed."
    )


class BillingCycles(_Section):
    monthly: BillingCycleParams = Field(description="Billed every month.")
    quarterly: BillingCycleParams = Field(description="Billed every quarter.")
    annual: BillingCycleParams = Field(description="Billed yearly in advance.")

    def of(self, cycle: BillingCycle) -> BillingCycleParams:
        return getattr(self, cycle)


class ValueConfidence(_Section):
    agreement_tolerance: float = Field(
        ge=0,
        le=10,
        description="Similar deals 'agree' with the model when |similar - model| <= this "
        "share of the model value.",
    )
    late_stages: tuple[DealStage, ...] = Field(description="Stages counted as the stage signal.")
    high_min_signals: int = Field(ge=0, le=4, description="Signals needed for high confidence.")
    medium_min_signals: int = Field(
        ge=0, le=4, description="Signals needed for medium confidence (fewer: low)."
    )


class ValueParams(_Section):
    industry_factor: float = Field(
        gt=0, le=100, description="Multiplier for deals in this industry (override per vertical)."
    )
    default_acv: float = Field(
        ge=0, le=1e12, description="Typical first-year contract value, for deals with no data."
    )
    similar_deals_weight: Share = Field(
        description="Weight of the similar closed deals' value in the blend."
    )
    expansion_max_uplift: float = Field(
        ge=0, le=10, description="Value uplift over the term at expansion potential 1."
    )
    expansion_levels: ExpansionLevels = Field(description="Expansion words mapped to 0-1.")
    stage_factors: StageFactors = Field(
        description="Expected final value relative to a list-price quote, per stage."
    )
    plans: dict[PlanKey, PlanParams] = Field(
        min_length=1, description="Product plans by lower-case name."
    )
    billing_cycles: BillingCycles = Field(description="Discount and multiplier per cycle.")
    confidence: ValueConfidence = Field(description="How confidence is graded.")


# --------------------------------------------------------------------------------------------
# Churn
# --------------------------------------------------------------------------------------------


class ChurnWeights(_Weights):
    label = "churn weights"

    usage: Share = Field(description="Weight of usage risk (trends and utilisation).")
    support: Share = Field(description="Weight of support risk (tickets, severity, escalations).")
    financial: Share = Field(description="Weight of financial risk (payments, downgrades).")
    sentiment: Share = Field(description="Weight of sentiment risk (NPS, CSAT).")


class ChurnLevels(_Section):
    medium_min: Points = Field(description="Lowest churn score rated medium.")
    high_min: Points = Field(description="Lowest churn score rated high.")
    critical_min: Points = Field(description="Lowest churn score rated critical.")

    @model_validator(mode="after")
    def _ordered(self) -> ChurnLevels:
        if not self.medium_min <= self.high_min <= self.critical_min:
            raise ValueError("churn levels must satisfy medium_min <= high_min <= critical_min")
        return self


class ChurnUsage(_Section):
    full_risk_decline: float = Field(
        gt=0, le=1, description="Relative usage decline that counts as risk 100."
    )
    healthy_utilisation: float = Field(
        gt=0, le=1, description="Seat utilisation at or above which utilisation risk is 0."
    )


class SeverityPoints(_Section):
    none: Points = Field(description="Points with no open ticket severity.")
    low: Points = Field(description="Points when the worst open ticket is low severity.")
    medium: Points = Field(description="Points when the worst open ticket is medium severity.")
    high: Points = Field(description="Points when the worst open ticket is high severity.")
    critical: Points = Field(description="Points when the worst open ticket is critical.")


class ChurnSupport(_Section):
    ticket_points: Points = Field(description="Support-risk points per open ticket.")
    max_ticket_points: Points = Field(description="Cap on the points from open tickets.")
    escalation_points: Points = Field(description="Points per escalation.")
    max_escalation_points: Points = Field(description="Cap on the points from escalations.")
    severity_points: SeverityPoints = Field(description="Points by worst open ticket severity.")


class ChurnFinancial(_Section):
    failed_payment_points: Points = Field(description="Financial-risk points per failed payment.")
    overdue_day_points: Points = Field(description="Points per day an invoice is overdue.")
    max_overdue_points: Points = Field(description="Cap on the points from overdue days.")
    downgrade_points: Points = Field(description="Points per downgrade request.")


class ChurnRenewal(_Section):
    horizon_days: float = Field(
        gt=0, le=3650, description="Renewal proximity rises from 0 to 100 over these last days."
    )
    renewal_max_amplification: float = Field(
        ge=0, le=10, description="Score multiplier increase at proximity 100 (0.5 = x1.5)."
    )


class ChurnParams(_Section):
    missing_data_risk: Points = Field(description="Risk of an area with no data at all.")
    worst_area_floor: Share = Field(
        description="The score is at least this share of the worst area's risk."
    )
    driver_min_risk: Points = Field(description="Areas and signals at this risk become drivers.")
    weights: ChurnWeights = Field(description="Area weights; must sum to 1.")
    levels: ChurnLevels = Field(description="Score thresholds of the levels.")
    usage: ChurnUsage = Field(description="Usage trend and utilisation.")
    support: ChurnSupport = Field(description="Support load.")
    financial: ChurnFinancial = Field(description="Payments and downgrades.")
    renewal: ChurnRenewal = Field(description="Renewal proximity amplification.")


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


class ExpansionWeights(_Weights):
    label = "expansion weights"

    seat_utilisation: Share = Field(description="Weight of seat utilisation.")
    feature_adoption: Share = Field(description="Weight of feature adoption breadth.")
    plan_headroom: Share = Field(description="Weight of the plan tier's headroom.")
    health: Share = Field(description="Weight of account health.")
    usage_growth: Share = Field(description="Weight of usage growth.")


class TierParams(_Section):
    rank: int = Field(ge=0, le=1000, description="Order of the plan; the highest is the top tier.")
    headroom: Points = Field(description="How much is left to sell above this plan, 0-100.")


class ExpansionParams(_Section):
    utilisation_floor: Share = Field(description="Utilisation scoring 0.")
    utilisation_full: Share = Field(description="Utilisation scoring 100.")
    growth_full: float = Field(
        gt=0, le=100, description="Usage growth scoring 100 (its negative scores 0; flat 50)."
    )
    default_health: Points = Field(description="Health assumed when none is given.")
    min_health_for_motion: Points = Field(description="No motion below this health.")
    min_score_for_motion: Points = Field(description="No motion below this expansion score.")
    seat_motion_utilisation: Share = Field(description="Utilisation triggering seat expansion.")
    upgrade_motion_adoption: Share = Field(
        description="Feature adoption triggering a plan upgrade (cross-sell on the top tier)."
    )
    weights: ExpansionWeights = Field(description="Component weights; must sum to 1.")
    tiers: dict[PlanKey, TierParams] = Field(
        min_length=1, description="Plan tiers by lower-case name."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ExpansionParams:
        if self.utilisation_full <= self.utilisation_floor:
            raise ValueError("utilisation_full must be greater than utilisation_floor")
        return self


# --------------------------------------------------------------------------------------------
# The whole file
# --------------------------------------------------------------------------------------------


class ScoringParams(_Section):
    """The full parameter set: ``[defaults]``, or the defaults merged with one vertical."""

    stages: StagesParams = Field(description="Norms and base rates of the open stages.")
    health: HealthParams = Field(description="Deal health scoring.")
    probability: ProbabilityParams = Field(description="Close probability scoring.")
    value: ValueParams = Field(description="Deal value prediction.")
    churn: ChurnParams = Field(description="Account churn risk scoring.")
    expansion: ExpansionParams = Field(description="Account expansion scoring.")


class AlertsParams(_Section):
    value_threshold: float = Field(
        ge=0, le=1e12, description="Alert on deals worth at least this (deal currency)."
    )
    probability_drop_points: float = Field(
        gt=0, le=100, description="Alert when close probability drops by at least this many points."
    )
    health_resolved_min: Points = Field(
        85,
        description="A deal at risk for its health resolves only once its health score is back "
        "at this (hysteresis: a deal hovering at the warning line does not flap).",
    )
    churn_risk_threshold: Points = Field(
        70, description="An account whose churn risk is at or above this is at risk."
    )
    renewal_days: Days = Field(
        60,
        description="An account renewing within this many days (or overdue) is at risk when its "
        "churn risk is at or above renewal_churn_min.",
    )
    renewal_churn_min: Points = Field(
        50, description="Lowest churn risk at which a renewal within renewal_days is at risk."
    )
    churn_recovery_points: Points = Field(
        5,
        description="Hysteresis: an account alert resolves only once churn risk is this many "
        "points below the line that raised it.",
    )


class ForecastParams(_Section):
    overdue_half_life_days: float = Field(
        30,
        gt=0,
        le=3650,
        description="An open deal past its expected close date has its close probability "
        "halved for every this many days overdue in the forecast's overdue line.",
    )


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it; nested tables merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


class FrameworkSpec(_Section):
    """The framework file, as validated at load."""

    version: str = Field(
        min_length=1,
        max_length=100,
        description="Version stored beside every score; change it whenever a number changes.",
    )
    description: str = Field("", max_length=2000, description="What this framework is for.")
    alerts: AlertsParams = Field(description="Thresholds used by the alerting feature.")
    forecast: ForecastParams = Field(
        default_factory=ForecastParams, description="How the forecast treats slipped deals."
    )
    defaults: ScoringParams = Field(description="The full parameter set used by default.")
    verticals: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-industry overrides: any subset of the defaults' keys, deep-merged "
        "over them. Names match case-insensitively (spaces/hyphens = underscores).",
    )

    @field_validator("verticals")
    @classmethod
    def _unique_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        seen: dict[str, str] = {}
        for name in value:
            key = normalize_key(name)
            if not key:
                raise ValueError("a vertical needs a name")
            if key in seen:
                raise ValueError(f"verticals {seen[key]!r} and {name!r} are the same industry")
            seen[key] = name
        return value

    @model_validator(mode="after")
    def _verticals_resolve(self) -> FrameworkSpec:
        for name in self.verticals:
            self.resolve_vertical(name)
        return self

    def resolve_vertical(self, name: str) -> ScoringParams:
        """Defaults deep-merged with vertical ``name``'s overrides, validated."""
        merged = deep_merge(self.defaults.model_dump(), self.verticals[name])
        try:
            return ScoringParams.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"vertical {name!r}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )


# --------------------------------------------------------------------------------------------
# Hot-path tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageTable:
    """One open stage's numbers, precomputed for the deal-scoring hot path."""

    stage: DealStage
    label: str  # the stage name as shown in sentences
    norm_days: float
    zero_days: float  # velocity reaches 0 here: norm * zero_at_norm_multiple
    decline_days: float  # zero_days - norm_days
    stall_risk_days: float  # norm * stall_risk_norm_multiple
    base_rate: float
    qualification_expected: bool
    qualification_floor: float
    late: bool  # counts as the late-stage confidence signal


@json_dict
@dataclass(frozen=True, slots=True)
class ComponentWeights(JsonDict):
    """Health component weights, shared by every HealthResult scored with them."""

    velocity: float
    engagement: float
    qualification: float
    slippage: float


@dataclass(frozen=True, slots=True)
class DealTables:
    """Deal health and probability parameters flattened into plain floats (see ScoringParams
    for the meaning of each; per-point factors are the point values divided by 100)."""

    stages: dict[DealStage, StageTable]
    weights: ComponentWeights
    # health weights and categories
    w_velocity: float
    w_engagement: float
    w_qualification: float
    w_slippage: float
    healthy_min: float
    warning_min: float
    # engagement
    recency_weight: float
    frequency_weight: float
    recency_full_days: float
    recency_zero_days: float
    recency_span_days: float
    target_per_week: float
    min_weeks: float
    inactive_risk_days: float
    low_frequency_rate: float  # low_frequency_risk_ratio * target
    frequency_risk_min_age_days: float
    # qualification component
    q_budget: float
    q_champion: float
    q_decision_maker: float
    q_lead_per_point: float
    q_unknown_lead: float  # points for an unknown lead score
    low_lead_score: float
    # slippage
    push_points: float
    max_push_penalty: float
    overdue_points: float
    max_overdue_penalty: float
    push_risk_min: int
    # probability
    p_min: float
    p_max: float
    p_engagement_per_point: float
    p_budget: float
    p_decision_maker: float
    p_champion: float
    p_lead_per_point: float
    p_objection: float
    p_max_objections: int
    p_velocity_per_point: float
    p_competitor: float
    p_max_competition: float
    conf_min_interactions: int
    conf_min_age_days: float
    conf_high: int
    conf_medium: int
    # Values derived from these numbers alone (closed-deal results, fixed sentences), filled
    # lazily by worker.engine.deal.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def compile(cls, p: ScoringParams) -> DealTables:
        h, pr = p.health, p.probability
        velocity, eng, qual, slip = h.velocity, h.engagement, h.qualification, h.slippage
        late = set(pr.confidence.late_stages)
        stages = {}
        for stage in OPEN_STAGES:
            sp = p.stages.of(stage)
            zero = sp.norm_days * velocity.zero_at_norm_multiple
            stages[stage] = StageTable(
                stage=stage,
                label=stage.value,
                norm_days=sp.norm_days,
                zero_days=zero,
                decline_days=zero - sp.norm_days,
                stall_risk_days=sp.norm_days * velocity.stall_risk_norm_multiple,
                base_rate=sp.base_rate,
                qualification_expected=sp.qualification_expected,
                qualification_floor=sp.qualification_floor,
                late=stage in late,
            )
        return cls(
            stages=stages,
            weights=ComponentWeights(
                h.weights.velocity,
                h.weights.engagement,
                h.weights.qualification,
                h.weights.slippage,
            ),
            w_velocity=h.weights.velocity,
            w_engagement=h.weights.engagement,
            w_qualification=h.weights.qualification,
            w_slippage=h.weights.slippage,
            healthy_min=h.categories.healthy_min,
            warning_min=h.categories.warning_min,
            recency_weight=eng.recency_weight,
            frequency_weight=eng.frequency_weight,
            recency_full_days=eng.recency_full_days,
            recency_zero_days=eng.recency_zero_days,
            recency_span_days=eng.recency_zero_days - eng.recency_full_days,
            target_per_week=eng.target_interactions_per_week,
            min_weeks=eng.min_weeks,
            inactive_risk_days=eng.inactive_risk_days,
            low_frequency_rate=eng.low_frequency_risk_ratio * eng.target_interactions_per_week,
            frequency_risk_min_age_days=eng.frequency_risk_min_age_days,
            q_budget=qual.budget_points,
            q_champion=qual.champion_points,
            q_decision_maker=qual.decision_maker_points,
            q_lead_per_point=qual.lead_score_points / 100.0,
            q_unknown_lead=qual.lead_score_points * qual.unknown_lead_score / 100.0,
            low_lead_score=qual.low_lead_score_risk,
            push_points=slip.points_per_push,
            max_push_penalty=slip.max_push_penalty,
            overdue_points=slip.points_per_overdue_day,
            max_overdue_penalty=slip.max_overdue_penalty,
            push_risk_min=slip.push_risk_min,
            p_min=pr.min_open,
            p_max=pr.max_open,
            p_engagement_per_point=pr.engagement_max_boost / 100.0,
            p_budget=pr.budget_points,
            p_decision_maker=pr.decision_maker_points,
            p_champion=pr.champion_points,
            p_lead_per_point=pr.lead_score_points / 100.0,
            p_objection=pr.objection_points,
            p_max_objections=pr.max_objections,
            p_velocity_per_point=pr.velocity_max_penalty / 100.0,
            p_competitor=pr.competitor_points,
            p_max_competition=pr.max_competition_penalty,
            conf_min_interactions=pr.confidence.min_interactions,
            conf_min_age_days=pr.confidence.min_age_days,
            conf_high=pr.confidence.high_min_signals,
            conf_medium=pr.confidence.medium_min_signals,
        )


@dataclass(frozen=True, slots=True)
class ResolvedParams:
    """The parameters in force for one industry."""

    version: str  # the framework version, to store beside scores
    vertical: str | None  # the [verticals.<name>] applied, None for the defaults
    params: ScoringParams  # validated, defaults deep-merged with the vertical's overrides
    deal: DealTables  # the same deal numbers, flattened for score_deal


class Framework:
    """A loaded, validated framework. Immutable; ``for_industry`` results are cached."""

    __slots__ = ("_by_key", "_cache", "alerts", "defaults", "forecast", "spec", "version")

    def __init__(self, spec: FrameworkSpec) -> None:
        self.spec = spec
        self.version = spec.version
        self.alerts = spec.alerts
        self.forecast = spec.forecast
        self.defaults = ResolvedParams(
            spec.version, None, spec.defaults, DealTables.compile(spec.defaults)
        )
        self._by_key: dict[str, ResolvedParams] = {}
        for name in spec.verticals:
            params = spec.resolve_vertical(name)
            self._by_key[normalize_key(name)] = ResolvedParams(
                spec.version, name, params, DealTables.compile(params)
            )
        # Raw industry spelling (as it arrives on deals) -> resolved params.
        self._cache: dict[str | None, ResolvedParams] = {None: self.defaults}

    @property
    def verticals(self) -> tuple[str, ...]:
        """The vertical names as written in the file."""
        return tuple(self.spec.verticals)

    def for_industry(self, industry: str | None) -> ResolvedParams:
        """Parameters for ``industry``: its vertical's overrides over the defaults, or the
        defaults when the industry is missing or has no vertical."""
        try:
            return self._cache[industry]
        except KeyError:
            pass
        assert industry is not None  # None is always cached
        resolved = self._by_key.get(normalize_key(industry), self.defaults)
        if len(self._cache) < _MAX_CACHED_INDUSTRY_SPELLINGS:
            self._cache[industry] = resolved
        return resolved

    def __repr__(self) -> str:
        return f"Framework(version={self.version!r}, verticals={list(self.verticals)!r})"


def load_framework(path: Path | None = None) -> Framework:
    """Load and validate a framework file; the packaged ``framework.toml`` when ``path`` is
    None. Raises :class:`FrameworkError` with a readable message on any problem."""
    if path is None:
        source = resources.files(__package__).joinpath(DEFAULT_FRAMEWORK_FILE)
        where = f"packaged {DEFAULT_FRAMEWORK_FILE}"
        try:
            raw = source.read_bytes()
        except OSError as exc:  # pragma: no cover - broken install
            raise FrameworkError(f"cannot read {where}: {exc}") from exc
    else:
        where = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise FrameworkError(f"cannot read framework file {where}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FrameworkError(f"framework file {where} is not valid TOML: {exc}") from exc
    try:
        spec = FrameworkSpec.model_validate(data)
    except ValidationError as exc:
        raise FrameworkError(f"framework file {where} is invalid: {_one_line(exc)}") from exc
    return Framework(spec)


@cache
def default_framework() -> Framework:
    """The packaged framework, loaded once per process."""
    return load_framework()
