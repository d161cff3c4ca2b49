"""Deal value prediction.

``predict_deal_value(inputs, framework)`` prices a deal from its plan and seats. All factors come
from the framework resolved for the deal's industry (``[defaults.value]`` + vertical overrides)::

    base_value  = users * list_price_per_user * (1 - discount) * (1 - billing_discount)
                  * contract_term_months * billing_multiplier
    model_value = base_value * industry_factor * stage_factor * expansion_factor
    expansion_factor = 1 + expansion_max_uplift * expansion        (expansion in 0-1)
    predicted_value  = (1 - blend_weight) * model_value + blend_weight * similar_deals_value
    similar_deals_value = similar_deals_avg_acv * contract_term_months / 12
    blend_weight = similar_deals_weight when similar deals are given, else 0
    annual_value = predicted_value * 12 / contract_term_months

The prediction is a total contract value over the term, in the deal's currency. The list price
defaults to the plan's list price; the stage factor is 1 when no stage is given. Money is rounded
to cents only in the result (``predicted_value``, ``annual_value``); the breakdown keeps full
precision so that it multiplies out to the prediction.

``predict_value_for_deal(industry, stage, similar_avg, framework)`` is for deals that have no
amount yet and no pricing inputs (what the worker knows from deal events):

* with ``similar_avg`` (the average ACV of comparable closed-won deals, chosen by the caller,
  e.g. same industry): value = similar_avg * term / 12. No industry or stage factor: the
  comparables are real closing values that already reflect both.
* without: value = default_acv * term / 12 * industry_factor (the framework's typical deal,
  sized for the vertical).

There the stage only affects confidence (stage factors describe how list-price quotes shrink
before closing; neither base is a quote).

Confidence counts signals: similar deals given; similar deals agree with the model (within
``agreement_tolerance`` of the model value); stage in ``late_stages``; list price given
explicitly. >= high_min_signals -> "high", >= medium_min_signals -> "medium", else "low".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from schemas.deal_events import DealStage

from ._common import Confidence, Model, Result, grade_confidence, money
from .framework import BillingCycle, Framework, ValueParams, normalize_key

__all__ = [
    "DealValueInput",
    "DealValuePrediction",
    "ValueBreakdown",
    "predict_deal_value",
    "predict_value_for_deal",
]

ExpansionWord = Literal["low", "medium", "high"]


class DealValueInput(Model):
    plan: str = Field(min_length=1, max_length=60, description="Product plan, e.g. professional.")
    users: int = Field(ge=1, le=10_000_000, description="Planned number of users (seats).")
    list_price_per_user: float | None = Field(
        None, ge=0, le=1e9, description="List price per user per month; default: the plan's."
    )
    discount: float = Field(0.0, ge=0, le=1, description="Negotiated discount, 0-1.")
    billing_cycle: BillingCycle = Field("annual", description="monthly, quarterly or annual.")
    contract_term_months: int = Field(12, ge=1, le=120, description="Contract length in months.")
    industry: str | None = Field(None, max_length=300, description="Industry (vertical).")
    stage: DealStage | None = Field(None, description="Deal stage; none: stage factor 1.")
    similar_deals_avg_acv: float | None = Field(
        None, ge=0, le=1e12, description="Average annual value of similar closed deals."
    )
    expansion_potential: Annotated[float, Field(ge=0, le=1)] | ExpansionWord = Field(
        0.0, description="Expansion potential: 0-1, or low / medium / high."
    )

    @field_validator("plan")
    @classmethod
    def _plan_key(cls, value: str) -> str:
        return normalize_key(value)


class ValueBreakdown(Model):
    """Every number of the formula (see module docstring)."""

    users: int
    list_price_per_user: float
    price_source: Literal["input", "plan", "similar_deals", "framework_default"]
    discount: float
    billing_cycle: BillingCycle | None
    billing_discount: float
    billing_multiplier: float
    contract_term_months: int
    base_value: float
    industry_factor: float
    stage_factor: float
    expansion: float
    expansion_factor: float
    model_value: float
    similar_deals_value: float | None
    blend_weight: float


class DealValuePrediction(Result):
    predicted_value: float = Field(description="Total contract value over the term.")
    annual_value: float = Field(description="predicted_value per 12 months.")
    confidence: Confidence
    method: Literal["pricing", "similar_deals", "framework_default"]
    notes: tuple[str, ...] = Field(description="How the value was reached, in words.")
    breakdown: ValueBreakdown
    framework_version: str


def _confidence(signals: int, vp: ValueParams) -> Confidence:
    c = vp.confidence
    return grade_confidence(signals, c.high_min_signals, c.medium_min_signals)


def _expansion(value: float | str, vp: ValueParams) -> float:
    return getattr(vp.expansion_levels, value) if isinstance(value, str) else float(value)


def predict_deal_value(inputs: DealValueInput, framework: Framework) -> DealValuePrediction:
    """Predicted total contract value of a deal from its pricing (formula: module docstring).

    Raises ValueError when the plan is not in the framework and no list price is given.
    """
    resolved = framework.for_industry(inputs.industry)
    vp = resolved.params.value
    notes: list[str] = []

    if inputs.list_price_per_user is not None:
        price, source = inputs.list_price_per_user, "input"
    else:
        plan = vp.plans.get(inputs.plan)
        if plan is None:
            known = ", ".join(sorted(vp.plans))
            raise ValueError(
                f"unknown plan {inputs.plan!r} (known: {known}); give list_price_per_user"
            )
        price, source = plan.list_price_per_user, "plan"
    cycle = vp.billing_cycles.of(inputs.billing_cycle)
    term = inputs.contract_term_months
    base = (
        inputs.users
        * price
        * (1.0 - inputs.discount)
        * (1.0 - cycle.discount)
        * term
        * cycle.multiplier
    )
    notes.append(
        f"{inputs.users} users at {price:,.2f} per user per month "
        f"({'quoted' if source == 'input' else inputs.plan + ' list price'}) over {term} months"
    )
    if inputs.discount:
        notes.append(f"{inputs.discount:.0%} negotiated discount")
    notes.append(
        f"{inputs.billing_cycle.capitalize()} billing: {cycle.discount:.0%} billing discount, "
        f"{cycle.multiplier:.0%} of the term expected to be billed"
    )

    industry_factor = vp.industry_factor
    if industry_factor != 1.0:
        notes.append(f"Industry {inputs.industry}: deals run x{industry_factor:g} the typical size")
    stage = inputs.stage
    stage_factor = 1.0 if stage is None else vp.stage_factors.of(stage)
    if stage_factor != 1.0:
        notes.append(
            f"{stage.value.capitalize()} stage: quotes end at x{stage_factor:g} on average"
        )
    expansion = _expansion(inputs.expansion_potential, vp)
    expansion_factor = 1.0 + vp.expansion_max_uplift * expansion
    if expansion:
        notes.append(f"Expansion potential {expansion:.0%}: x{expansion_factor:.3g} over the term")
    model_value = base * industry_factor * stage_factor * expansion_factor

    similar_value = None
    weight = 0.0
    signals = (stage is not None and stage in vp.confidence.late_stages) + (source == "input")
    if inputs.similar_deals_avg_acv is not None:
        similar_value = inputs.similar_deals_avg_acv * term / 12.0
        weight = vp.similar_deals_weight
        signals += 1
        agree = abs(similar_value - model_value) <= vp.confidence.agreement_tolerance * model_value
        signals += agree
        notes.append(
            f"Blended {weight:.0%} with similar closed deals ({similar_value:,.2f} over the term"
            f"{', in line with the pricing' if agree else ', far from the pricing'})"
        )
    predicted = (1.0 - weight) * model_value + weight * (similar_value or 0.0)

    return DealValuePrediction(
        predicted_value=money(predicted),
        annual_value=money(predicted * 12.0 / term),
        confidence=_confidence(signals, vp),
        method="pricing",
        notes=tuple(notes),
        breakdown=ValueBreakdown(
            users=inputs.users,
            list_price_per_user=price,
            price_source=source,
            discount=inputs.discount,
            billing_cycle=inputs.billing_cycle,
            billing_discount=cycle.discount,
            billing_multiplier=cycle.multiplier,
            contract_term_months=term,
            base_value=base,
            industry_factor=industry_factor,
            stage_factor=stage_factor,
            expansion=expansion,
            expansion_factor=expansion_factor,
            model_value=model_value,
            similar_deals_value=similar_value,
            blend_weight=weight,
        ),
        framework_version=resolved.version,
    )


def predict_value_for_deal(
    industry: str | None,
    stage: DealStage | None,
    similar_avg: float | None,
    framework: Framework,
    *,
    contract_term_months: int = 12,
) -> DealValuePrediction:
    """Expected value of a deal that has no amount yet (see module docstring): the similar
    deals' average ACV when known, else the framework's default ACV times the industry factor;
    scaled to ``contract_term_months``."""
    if not 1 <= contract_term_months <= 120:
        raise ValueError("contract_term_months must be within 1..120")
    resolved = framework.for_industry(industry)
    vp = resolved.params.value
    term = contract_term_months
    late = stage is not None and stage in vp.confidence.late_stages
    if similar_avg is not None:
        if similar_avg < 0:
            raise ValueError("similar_avg must not be negative")
        annual, industry_factor = float(similar_avg), 1.0
        method = source = "similar_deals"
        notes = [f"Average of similar closed deals: {annual:,.2f} per year"]
        signals = 1 + late
    else:
        annual, industry_factor = vp.default_acv, vp.industry_factor
        method = source = "framework_default"
        notes = [f"No amount or similar deals: typical deal of {annual:,.2f} per year"]
        if industry_factor != 1.0:
            notes.append(f"Industry {industry}: deals run x{industry_factor:g} the typical size")
        signals = late
    base = annual * term / 12.0
    model_value = base * industry_factor
    return DealValuePrediction(
        predicted_value=money(model_value),
        annual_value=money(model_value * 12.0 / term),
        confidence=_confidence(signals, vp),
        method=method,
        notes=tuple(notes),
        breakdown=ValueBreakdown(
            users=0,
            list_price_per_user=0.0,
            price_source=source,
            discount=0.0,
            billing_cycle=None,
            billing_discount=0.0,
            billing_multiplier=1.0,
            contract_term_months=term,
            base_value=base,
            industry_factor=industry_factor,
            stage_factor=1.0,
            expansion=0.0,
            expansion_factor=1.0,
            model_value=model_value,
            similar_deals_value=None,
            blend_weight=0.0,
        ),
        framework_version=resolved.version,
    )
