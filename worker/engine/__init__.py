"""The scoring engine: pure functions from facts to scores with reasons.

No I/O, no Kafka, no database and never the wall clock: "now" (or "as of") is always an
argument. Every number comes from the framework file (``framework.toml``), whose ``version`` is
returned with each result so callers can store it beside the score.

Deal scoring (hot path, dataclasses only)::

    score_deal(facts: DealFacts, now: datetime, framework: Framework) -> DealScore

Other predictors (pydantic inputs, results with ``to_dict()``)::

    predict_deal_value(inputs: DealValueInput, framework) -> DealValuePrediction
    predict_value_for_deal(industry, stage, similar_avg, framework) -> DealValuePrediction
    score_churn(account: ChurnInput, framework, as_of=None) -> ChurnResult
    score_expansion(account: ExpansionInput, framework) -> ExpansionResult
    run_scenario(inputs: ScenarioInput) -> ScenarioResult
"""

from .churn import ChurnInput, ChurnResult, score_churn
from .deal import (
    DealFacts,
    DealInput,
    DealScore,
    HealthComponents,
    HealthMeasures,
    HealthResult,
    ProbabilityBreakdown,
    ProbabilityResult,
    score_deal,
)
from .expansion import ExpansionInput, ExpansionResult, score_expansion
from .framework import (
    Framework,
    FrameworkError,
    FrameworkSpec,
    ResolvedParams,
    ScoringParams,
    default_framework,
    load_framework,
)
from .scenario import ScenarioInput, ScenarioResult, run_scenario
from .value import DealValueInput, DealValuePrediction, predict_deal_value, predict_value_for_deal

__all__ = [
    "ChurnInput",
    "ChurnResult",
    "DealFacts",
    "DealInput",
    "DealScore",
    "DealValueInput",
    "DealValuePrediction",
    "ExpansionInput",
    "ExpansionResult",
    "Framework",
    "FrameworkError",
    "FrameworkSpec",
    "HealthComponents",
    "HealthMeasures",
    "HealthResult",
    "ProbabilityBreakdown",
    "ProbabilityResult",
    "ResolvedParams",
    "ScenarioInput",
    "ScenarioResult",
    "ScoringParams",
    "default_framework",
    "load_framework",
    "predict_deal_value",
    "predict_value_for_deal",
    "run_scenario",
    "score_churn",
    "score_deal",
    "score_expansion",
]
