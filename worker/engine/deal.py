"""Deal health and close probability: ``score_deal(facts, now, framework)``.

Pure and fast: no I/O, no clock ("now" is an argument), no pydantic models built per deal. All
numbers come from the framework (see framework.toml); ``t`` below is the industry's
:class:`~worker.engine.framework.DealTables`. Days are fractional (seconds / 86400) and never
negative (a timestamp after ``now`` counts as 0 days).

Health (0-100, integer) = round_half_up(w_v * velocity + w_e * engagement
                                        + w_q * qualification + w_s * slippage), where

* velocity      = 100 while days_in_stage <= norm; then 100 * (zero - days) / (zero - norm),
                  zero = norm * zero_at_norm_multiple; 0 from ``zero`` on.
* engagement    = recency_weight * recency + frequency_weight * frequency;
                  recency = 100 up to recency_full_days since the last activity (the deal's
                  creation when it never had one), 0 from recency_zero_days, linear between;
                  frequency = min(100, 100 * per_week / target), per_week = interactions /
                  max(min_weeks, age_days / 7).
* qualification = budget_points [budget confirmed] + champion_points [champion]
                  + decision_maker_points [decision maker engaged]
                  + lead_score_points * lead_score / 100 (unknown_lead_score when unknown),
                  at least the stage's qualification_floor.
* slippage      = max(0, 100 - min(max_push_penalty, points_per_push * pushes)
                  - min(max_overdue_penalty, points_per_overdue_day * days_overdue)),
                  days_overdue = whole days from the expected close date to now's date (in
                  now's timezone), 0 when not yet due.

Category: "healthy" at score >= healthy_min, "warning" at >= warning_min, else "critical".

Risk factors (health), in this order, N in whole days:

* "Stagnant in <stage> for N days (norm M)"   days_in_stage > stall_risk_norm_multiple * norm
* "No activity for N days" (or "No activity since the deal was created N days ago" when it
  never had one)                                days since activity >= inactive_risk_days
* "Low activity: X interactions per week (target T)"
                                                per_week < low_frequency_risk_ratio * target,
                                                deal age >= frequency_risk_min_age_days
* "Budget not confirmed", "No champion identified", "No decision maker engaged"
                                                only in stages with qualification_expected
* "Low lead score (N/100)"                      lead_score < low_lead_score_risk
* "Close date pushed N times"                   pushes >= push_risk_min
* "Expected close date passed N days ago"       days_overdue > 0

Close probability (percent) of an open deal = clamp(raw, min_open, max_open) with
raw = stage_base_rate + engagement_boost + qualification_boost + velocity_penalty
      + competition_penalty, each term rounded to 2 decimals and raw their sum (2 decimals):

* engagement_boost    = engagement_max_boost * engagement / 100
* qualification_boost = budget_points [budget] + decision_maker_points [DM] + champion_points
                        [champion] + lead_score_points * lead_score / 100 (0 when unknown)
                        + objection_points * min(objections_handled, max_objections)
* velocity_penalty    = -velocity_max_penalty * (100 - velocity) / 100       (<= 0)
* competition_penalty = -min(max_competition_penalty, competitor_points * competitors)  (<= 0)

``clamp_adjustment`` = probability - raw (0 unless clamped), so the breakdown always adds up.
Confidence counts evidence signals (lead score known, interactions >= min_interactions,
expected close date set, age >= min_age_days, stage in late_stages): >= high_min_signals is
"high", >= medium_min_signals "medium", else "low".

Key factors: the stage's base rate first, then each contribution with its signed points
("Budget confirmed (+8 pts)", "2 competitors in the deal (-8 pts)"), largest effect first; in
stages with qualification_expected a missing budget / champion / decision maker appears as a
missed contribution ("No decision maker engaged (0 of 8 pts)"); a clamp is noted last.

Closed deals are over: their scores do not depend on the deal's facts.

* closed_won:  health 100 "healthy", components all 100, no risk factors; probability 100.
* closed_lost: health 0 "critical", components all 0, risk factor "Deal closed lost";
  probability 0. Both have ``measures=None`` and confidence "high".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from itertools import product
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.deal_events import DealStage

from ._common import (
    AS_LIST,
    NESTED,
    OPTIONAL_NESTED,
    ROUNDED,
    Confidence,
    JsonDict,
    grade_confidence,
    json_dict,
)
from .framework import ComponentWeights, DealTables

if TYPE_CHECKING:
    from .framework import Framework

__all__ = [
    "DealFacts",
    "DealInput",
    "DealScore",
    "HealthComponents",
    "HealthMeasures",
    "HealthResult",
    "ProbabilityBreakdown",
    "ProbabilityResult",
    "score_deal",
]

HealthCategory = Literal["healthy", "warning", "critical"]

_DAY = 86400.0
_WON = DealStage.closed_won
_first = itemgetter(0)


@dataclass(frozen=True, slots=True)
class DealFacts:
    """What the engine needs to know about a deal. Timestamps are timezone-aware."""

    stage: DealStage
    amount: float | None
    industry: str | None
    lead_score: int | None  # 0-100 from the CRM
    interactions: int  # total logged activities
    objections_handled: int
    has_champion: bool
    budget_confirmed: bool
    decision_maker_engaged: bool
    competitors: int  # number of competitors mentioned
    last_activity_at: datetime | None
    stage_entered_at: datetime
    created_at: datetime
    expected_close_date: date | None
    close_date_pushes: int  # times the expected close date moved later

    @classmethod
    def from_record(cls, record: Any) -> DealFacts:
        """Facts from any object with these attribute names (e.g. the worker's deal state).
        ``competitors`` may be a count or a collection of names (counted once each);
        ``amount`` any number."""
        competitors = record.competitors
        if not isinstance(competitors, int):
            competitors = len(set(competitors))
        amount = record.amount
        return cls(
            **{name: getattr(record, name) for name in _COPIED_FACTS},
            stage=DealStage(record.stage),
            amount=None if amount is None else float(amount),
            competitors=competitors,
        )


# the fields ``from_record`` copies as they are (the others it converts)
_COPIED_FACTS = tuple(
    f.name for f in fields(DealFacts) if f.name not in {"stage", "amount", "competitors"}
)


class DealInput(BaseModel):
    """A deal as JSON (CLI, tests): the DealFacts fields plus ``as_of``, the "now" to score at.

    ``competitors`` may be a count or the list of competitor names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: DealStage = Field(description="Current stage.")
    amount: float | None = Field(None, ge=0, le=1e12, description="Deal value, if known.")
    industry: str | None = Field(None, max_length=300, description="Industry (vertical).")
    lead_score: int | None = Field(None, ge=0, le=100, description="CRM lead score 0-100.")
    interactions: int = Field(0, ge=0, le=1_000_000, description="Total logged activities.")
    objections_handled: int = Field(0, ge=0, le=10_000, description="Objections handled.")
    has_champion: bool = Field(False, description="Someone inside is selling for us.")
    budget_confirmed: bool = Field(False, description="The buyer confirmed the budget.")
    decision_maker_engaged: bool = Field(False, description="A decision maker is involved.")
    competitors: (
        Annotated[int, Field(ge=0, le=10_000)] | Annotated[list[str], Field(max_length=10_000)]
    ) = Field(0, description="Competitors mentioned: a count or their names.")
    last_activity_at: AwareDatetime | None = Field(None, description="Last logged activity.")
    stage_entered_at: AwareDatetime = Field(description="When the deal entered its stage.")
    created_at: AwareDatetime = Field(description="When the deal was created.")
    expected_close_date: date | None = Field(None, description="Expected close date.")
    close_date_pushes: int = Field(0, ge=0, le=10_000, description="Close-date moves later.")
    as_of: AwareDatetime = Field(description="The moment to score at ('now').")

    def to_facts(self) -> DealFacts:
        return DealFacts.from_record(self)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@json_dict
@dataclass(frozen=True, slots=True)
class HealthComponents(JsonDict):
    """The four components (0-100 each) and the weights that combine them."""

    velocity: float = field(metadata=ROUNDED)
    engagement: float = field(metadata=ROUNDED)
    qualification: float = field(metadata=ROUNDED)
    slippage: float = field(metadata=ROUNDED)
    weights: ComponentWeights = field(metadata=NESTED)


@json_dict
@dataclass(frozen=True, slots=True)
class HealthMeasures(JsonDict):
    """The measurements behind the components, in days and counts."""

    days_in_stage: float = field(metadata=ROUNDED)
    stage_norm_days: float
    # since the last activity, or creation when none
    days_since_activity: float = field(metadata=ROUNDED)
    interactions_per_week: float = field(metadata=ROUNDED)
    days_overdue: int  # days past the expected close date, 0 when not due
    close_date_pushes: int


@json_dict
@dataclass(frozen=True, slots=True)
class HealthResult(JsonDict):
    score: int  # 0-100
    category: HealthCategory
    risk_factors: tuple[str, ...] = field(metadata=AS_LIST)
    components: HealthComponents = field(metadata=NESTED)
    measures: HealthMeasures | None = field(metadata=OPTIONAL_NESTED)  # None for closed deals


@json_dict
@dataclass(frozen=True, slots=True)
class ProbabilityBreakdown(JsonDict):
    """Signed contributions in percentage points. ``raw`` is the sum of the first five;
    ``raw + clamp_adjustment`` is the probability."""

    stage_base_rate: float
    engagement_boost: float
    qualification_boost: float
    velocity_penalty: float  # <= 0
    competition_penalty: float  # <= 0
    raw: float
    clamp_adjustment: float


@json_dict
@dataclass(frozen=True, slots=True)
class ProbabilityResult(JsonDict):
    probability: float  # 0-100; open deals within [min_open, max_open]
    confidence: Confidence
    # the stage first, then by size of effect
    key_factors: tuple[str, ...] = field(metadata=AS_LIST)
    breakdown: ProbabilityBreakdown = field(metadata=NESTED)
    clamped: bool


@dataclass(frozen=True, slots=True)
class DealScore:
    health: HealthResult
    probability: ProbabilityResult
    framework_version: str

    def to_dict(self) -> dict[str, Any]:  # the version first, as stored and printed
        return {
            "framework_version": self.framework_version,
            "health": self.health.to_dict(),
            "probability": self.probability.to_dict(),
        }


def fast_constructor(cls: type) -> Any:
    """A positional constructor for a frozen slots dataclass that sets the slots through their
    descriptors: about twice as fast as the generated frozen ``__init__`` (which goes through
    ``object.__setattr__`` per field). Same result, same immutability; the hot path only."""
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": getattr(cls, n).__set__ for n in names})
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    exec(f"def make({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", namespace)
    return namespace["make"]


_new_components = fast_constructor(HealthComponents)
_new_measures = fast_constructor(HealthMeasures)
_new_health = fast_constructor(HealthResult)
_new_breakdown = fast_constructor(ProbabilityBreakdown)
_new_probability = fast_constructor(ProbabilityResult)
_new_score = fast_constructor(DealScore)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def _pts(x: float) -> str:
    """Signed points for sentences: +8 pts, -12.3 pts."""
    s = f"{x:+.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return s + " pts"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _count(n: int, noun: str) -> str:
    return f"1 {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True, slots=True)
class _Texts:
    """Sentences that depend only on the framework, built once per DealTables."""

    stage: dict[DealStage, str]
    # budget's, decision maker's and champion's key factors by (budget, decision maker,
    # champion, the stage expects them)
    qualification: dict[tuple[bool, bool, bool, bool], tuple[tuple[float, str], ...]]
    capped: str
    floored: str
    lead: tuple[str, ...]  # by lead score 0-100
    objections: tuple[str, ...]  # by objections counted, 0..max_objections
    competitors: tuple[str, ...]  # by competitor count, 0.._MEMO_COMPETITORS


_MEMO_COMPETITORS = 30


def _lead_text(lead: int, t: DealTables) -> str:
    return f"Lead score {lead}/100 ({_pts(lead * t.p_lead_per_point)})"


def _objection_text(n: int, t: DealTables) -> str:
    return f"{_count(n, 'objection')} handled ({_pts(n * t.p_objection)})"


def _competitor_text(n: int, t: DealTables) -> str:
    penalty = 0.0 - min(t.p_max_competition, n * t.p_competitor)
    return f"{_count(n, 'competitor')} in the deal ({_pts(round(penalty, 2))})"


def _qualification_factors(
    t: DealTables,
) -> dict[tuple[bool, bool, bool, bool], tuple[tuple[float, str], ...]]:
    """For every (budget, decision maker, champion, the stage expects them): the key factor of
    each that is there (points earned), or missing where the stage expects it (points missed)."""
    signals = (
        (t.p_budget, "Budget confirmed", "Budget not confirmed"),
        (t.p_decision_maker, "Decision maker engaged", "No decision maker engaged"),
        (t.p_champion, "Champion identified", "No champion identified"),
    )
    table = {}
    for *present, expected in product((False, True), repeat=4):
        table[(*present, expected)] = tuple(
            (points, f"{there} ({_pts(points)})" if has else f"{missing} (0 of {points:g} pts)")
            for (points, there, missing), has in zip(signals, present, strict=True)
            if has or expected
        )
    return table


def _texts(t: DealTables) -> _Texts:
    texts = _Texts(
        stage={
            s: f"{st.label.capitalize()} stage: {st.base_rate:g}% of such deals are won"
            for s, st in t.stages.items()
        },
        qualification=_qualification_factors(t),
        capped=f"Capped at {t.p_max:g}%: an open deal is never certain",
        floored=f"Raised to the {t.p_min:g}% floor for open deals",
        lead=tuple(_lead_text(n, t) for n in range(101)),
        objections=tuple(_objection_text(n, t) for n in range(t.p_max_objections + 1)),
        competitors=tuple(_competitor_text(n, t) for n in range(_MEMO_COMPETITORS + 1)),
    )
    t.memo["texts"] = texts
    return texts


def _closed_score(stage: DealStage, t: DealTables, version: str) -> DealScore:
    won = stage == _WON  # == not `is`: a plain "closed_won" string works too
    c = 100.0 if won else 0.0
    health = HealthResult(
        score=100 if won else 0,
        category="healthy" if won else "critical",
        risk_factors=() if won else ("Deal closed lost",),
        components=HealthComponents(c, c, c, c, t.weights),
        measures=None,
    )
    probability = ProbabilityResult(
        probability=c,
        confidence="high",
        key_factors=("Deal closed won",) if won else ("Deal closed lost",),
        breakdown=ProbabilityBreakdown(c, 0.0, 0.0, 0.0, 0.0, c, 0.0),
        clamped=False,
    )
    return DealScore(health, probability, version)


def score_deal(facts: DealFacts, now: datetime, framework: Framework) -> DealScore:  # noqa: C901 - one pass for speed (bench/bench_engine.py)
    """Health and close probability of one deal as of ``now`` (timezone-aware).

    Formulas: see the module docstring; parameters: the framework resolved for the deal's
    industry.
    """
    resolved = framework.for_industry(facts.industry)
    t = resolved.deal
    stage = facts.stage
    st = t.stages.get(stage)
    if st is None:  # closed
        cached = t.memo.get(stage)
        if cached is None:
            cached = t.memo[stage] = _closed_score(stage, t, resolved.version)
        return cached

    risks: list[str] = []

    # --- velocity ------------------------------------------------------------------------
    in_stage = (now - facts.stage_entered_at).total_seconds() / _DAY
    if in_stage < 0.0:
        in_stage = 0.0
    norm = st.norm_days
    if in_stage <= norm:
        velocity = 100.0
    elif in_stage >= st.zero_days:
        velocity = 0.0
    else:
        velocity = 100.0 * (st.zero_days - in_stage) / st.decline_days
    if in_stage > st.stall_risk_days:
        risks.append(f"Stagnant in {st.label} for {_days(int(in_stage))} (norm {norm:g})")

    # --- engagement ----------------------------------------------------------------------
    created_at = facts.created_at
    last = facts.last_activity_at
    since = (now - (created_at if last is None else last)).total_seconds() / _DAY
    if since < 0.0:
        since = 0.0
    if since <= t.recency_full_days:
        recency = 100.0
    elif since >= t.recency_zero_days:
        recency = 0.0
    else:
        recency = 100.0 * (t.recency_zero_days - since) / t.recency_span_days
    age = (now - created_at).total_seconds() / _DAY
    if age < 0.0:
        age = 0.0
    weeks = age / 7.0
    if weeks < t.min_weeks:
        weeks = t.min_weeks
    per_week = facts.interactions / weeks
    frequency = 100.0 * per_week / t.target_per_week
    if frequency > 100.0:
        frequency = 100.0
    engagement = t.recency_weight * recency + t.frequency_weight * frequency
    if since >= t.inactive_risk_days:
        if last is None:
            risks.append(f"No activity since the deal was created {_days(int(since))} ago")
        else:
            risks.append(f"No activity for {_days(int(since))}")
    if per_week < t.low_frequency_rate and age >= t.frequency_risk_min_age_days:
        risks.append(
            f"Low activity: {per_week:.1f} interactions per week (target {t.target_per_week:g})"
        )

    # --- qualification -------------------------------------------------------------------
    budget = facts.budget_confirmed
    champion = facts.has_champion
    dm = facts.decision_maker_engaged
    lead = facts.lead_score
    qualification = (
        (t.q_budget if budget else 0.0)
        + (t.q_champion if champion else 0.0)
        + (t.q_decision_maker if dm else 0.0)
        + (t.q_unknown_lead if lead is None else lead * t.q_lead_per_point)
    )
    if qualification < st.qualification_floor:
        qualification = st.qualification_floor
    expected = st.qualification_expected
    if expected:
        if not budget:
            risks.append("Budget not confirmed")
        if not champion:
            risks.append("No champion identified")
        if not dm:
            risks.append("No decision maker engaged")
    if lead is not None and lead < t.low_lead_score:
        risks.append(f"Low lead score ({lead}/100)")

    # --- slippage ------------------------------------------------------------------------
    pushes = facts.close_date_pushes
    push_penalty = pushes * t.push_points
    if push_penalty > t.max_push_penalty:
        push_penalty = t.max_push_penalty
    ecd = facts.expected_close_date
    overdue = 0
    if ecd is not None:
        overdue = (now.date() - ecd).days
        if overdue < 0:
            overdue = 0
    overdue_penalty = overdue * t.overdue_points
    if overdue_penalty > t.max_overdue_penalty:
        overdue_penalty = t.max_overdue_penalty
    slippage = 100.0 - push_penalty - overdue_penalty
    if slippage < 0.0:
        slippage = 0.0
    if pushes >= t.push_risk_min:
        risks.append(f"Close date pushed {_times(pushes)}")
    if overdue > 0:
        risks.append(f"Expected close date passed {_days(overdue)} ago")

    # --- health --------------------------------------------------------------------------
    weighted = (
        t.w_velocity * velocity
        + t.w_engagement * engagement
        + t.w_qualification * qualification
        + t.w_slippage * slippage
    )
    score = int(weighted + 0.5)  # round half up; weighted >= 0
    if score > 100:
        score = 100
    if score >= t.healthy_min:
        category: HealthCategory = "healthy"
    elif score >= t.warning_min:
        category = "warning"
    else:
        category = "critical"
    health = _new_health(
        score,
        category,
        tuple(risks),
        _new_components(velocity, engagement, qualification, slippage, t.weights),
        _new_measures(in_stage, norm, since, per_week, overdue, pushes),
    )

    # --- probability ---------------------------------------------------------------------
    base = st.base_rate
    eng_boost = round(engagement * t.p_engagement_per_point, 2)
    objections = facts.objections_handled
    if objections > t.p_max_objections:
        objections = t.p_max_objections
    lead_pts = 0.0 if lead is None else lead * t.p_lead_per_point
    obj_pts = objections * t.p_objection
    qual_boost = round(
        (t.p_budget if budget else 0.0)
        + (t.p_decision_maker if dm else 0.0)
        + (t.p_champion if champion else 0.0)
        + lead_pts
        + obj_pts,
        2,
    )
    vel_penalty = round((velocity - 100.0) * t.p_velocity_per_point, 2)
    competition = facts.competitors * t.p_competitor
    if competition > t.p_max_competition:
        competition = t.p_max_competition
    comp_penalty = round(0.0 - competition, 2)
    raw = round(base + eng_boost + qual_boost + vel_penalty + comp_penalty, 2)
    if raw > t.p_max:
        probability = t.p_max
    elif raw < t.p_min:
        probability = t.p_min
    else:
        probability = raw
    clamped = probability != raw

    # Key factors: the stage first, then every effect by size (points gained, lost, or
    # missed for want of budget / champion / decision maker where the stage expects them).
    tx = t.memo.get("texts") or _texts(t)
    factors: list[tuple[float, str]] = [
        (abs(eng_boost), f"Engagement {engagement:.0f}/100 ({_pts(eng_boost)})")
    ]
    factors.extend(tx.qualification[budget, dm, champion, expected])
    if lead is not None:
        factors.append((lead_pts, tx.lead[lead] if 0 <= lead <= 100 else _lead_text(lead, t)))
    if obj_pts:
        factors.append((obj_pts, tx.objections[objections]))
    if vel_penalty:
        factors.append(
            (
                -vel_penalty,
                f"{_days(int(in_stage))} in {st.label}, norm {norm:g} ({_pts(vel_penalty)})",
            )
        )
    if comp_penalty:
        n = facts.competitors
        factors.append(
            (competition, tx.competitors[n] if n <= _MEMO_COMPETITORS else _competitor_text(n, t))
        )
    factors.sort(key=_first, reverse=True)  # stable: equal effects keep the order above
    key_factors = [tx.stage[stage], *[text for _, text in factors]]
    if clamped:
        if probability == t.p_max:
            key_factors.append(tx.capped)
        else:
            key_factors.append(tx.floored)

    confidence_signals = (
        (lead is not None)
        + (facts.interactions >= t.conf_min_interactions)
        + (ecd is not None)
        + (age >= t.conf_min_age_days)
        + st.late
    )
    confidence = grade_confidence(confidence_signals, t.conf_high, t.conf_medium)

    prob = _new_probability(
        probability,
        confidence,
        tuple(key_factors),
        _new_breakdown(
            base,
            eng_boost,
            qual_boost,
            vel_penalty,
            comp_penalty,
            raw,
            round(probability - raw, 2),
        ),
        clamped,
    )
    return _new_score(health, prob, resolved.version)
