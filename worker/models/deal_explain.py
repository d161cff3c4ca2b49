"""Pure: the learned close probability's explanations in words.

Which factors: the base features (:mod:`worker.models.deal_features`) fall into groups a
reader recognises (the stage, days in stage, the deal's age, recent activity, the close date,
pushes, the amount, the lead score, engagement, qualification, competitors, and the earlier
win rates of the owner, the account and the industry). For each group, the close probability
is computed again with that group set to the model's typical deal (``DealModel.reference``,
the median of the training rows; the stage block set to the most common stage): an
occlusion, all groups of all deals in one call of the classifier. Positive: the group raises
the close probability; negative: it lowers it.

What is said about a factor is the data's, never the model's: the deal's own value against
the training rows ("42 days in qualification, longer than 80 % of deals seen in it") or the
earlier closes ("Won 71 % of earlier deals with this account (Acme)"), followed by the
model's effect in points. A win-rate sentence is said only when the rate agrees with the
direction of the effect (the model may weigh a group against its plain rate through another
one: the sentence would then contradict itself).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.deal_events import OPEN_STAGES
from worker.models.deal import LOST, NEITHER, WON, DealModel, TrainingSet
from worker.models.deal_features import BASE_FEATURES, FEATURES, STAGE_FEATURES, History
from worker.models.tree_occlusion import Occlusion, forest_of, occluded_proba

__all__ = ["FACTOR_GROUPS", "DealExplanation", "DealProfile", "effects", "explain"]

# readable groups of base features, in the order ties are told
FACTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "stage": STAGE_FEATURES,
    "days_in_stage": ("days_in_stage",),
    "age": ("age_days",),
    "activity": ("days_since_activity",),
    "close_date": ("days_overdue", "days_to_close_date"),
    "pushes": ("close_date_pushes",),
    "amount": ("log_amount_vs_typical",),
    "lead_score": ("lead_score",),
    "engagement": ("interactions", "objections_handled"),
    "qualification": ("has_champion", "budget_confirmed", "decision_maker_engaged"),
    "competitors": ("competitors",),
    "owner": ("owner_win_rate", "owner_closed_log"),
    "company": ("company_win_rate", "company_closed_log"),
    "industry": ("industry_win_rate", "industry_closed_log"),
}
_COLUMNS = {g: [BASE_FEATURES.index(f) for f in fs] for g, fs in FACTOR_GROUPS.items()}
_COL = {f: i for i, f in enumerate(BASE_FEATURES)}
# features told as "more / less than X % of deals seen": their quantiles are kept
_RANKED = (
    "age_days",
    "days_since_activity",
    "days_overdue",
    "days_to_close_date",
    "close_date_pushes",
    "lead_score",
    "interactions",
)
_QUANTILES = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True, slots=True)
class DealExplanation:
    raises: tuple[str, ...]  # biggest effect first
    lowers: tuple[str, ...]

    @property
    def key_factors(self) -> list[str]:
        """What raises the close probability, then what lowers it."""
        return [*self.raises, *self.lowers]


def _quantiles(values: np.ndarray) -> np.ndarray:
    return np.quantile(values, _QUANTILES) if len(values) else np.zeros(len(_QUANTILES))


def _share_below(quantiles: np.ndarray, value: float) -> float:
    """The share of the training values below ``value`` (to the percent)."""
    return max(0, int(np.searchsorted(quantiles, value, side="left")) - 1) / 100.0


def _share_above(quantiles: np.ndarray, value: float) -> float:
    """The share of the training values above ``value`` (to the percent)."""
    above = len(quantiles) - int(np.searchsorted(quantiles, value, side="right"))
    return max(0, above - 1) / 100.0


@dataclass(frozen=True)
class DealProfile:
    """What the explanations need from the training rows: the typical deal to occlude with,
    quantiles of the ranked features (days in stage per stage), each stage's share won."""

    reference: np.ndarray  # base features of the typical deal
    quantiles: dict[str, np.ndarray]
    stage_days: dict[str, np.ndarray]  # stage -> quantiles of days in stage
    stage_won: dict[str, tuple[int, int]]  # stage -> (won, closed) of the deals seen in it
    won: int
    closed: int

    @classmethod
    def learn(cls, data: TrainingSet, model: DealModel) -> DealProfile:
        """From the rows of forecast month 0 (one per deal and snapshot)."""
        width = len(BASE_FEATURES)
        first = data.features[:, FEATURES.index("month_ahead")] == 0
        base = data.features[first, :width]
        stage = np.argmax(base[:, : len(STAGE_FEATURES)], axis=1) if len(base) else np.array([])
        reference = np.array(model.reference, dtype=np.float64, copy=True)
        modal = int(np.bincount(stage.astype(int)).argmax()) if len(stage) else 0
        reference[: len(STAGE_FEATURES)] = np.eye(len(STAGE_FEATURES))[modal]
        # a deal closes in at most one month window: its label over all rows says how
        closing = data.labels != NEITHER
        closes: dict[tuple[str, float], int] = {
            (str(d), t): int(lbl)
            for d, t, lbl in zip(
                data.deal_ids[closing], data.taken_at[closing], data.labels[closing], strict=True
            )
        }
        ids, taken = data.deal_ids[first], data.taken_at[first]
        stage_won: dict[str, tuple[int, int]] = {}
        for s, st in enumerate(OPEN_STAGES):
            sel = np.flatnonzero(stage == s)
            labels = [closes.get((str(ids[i]), float(taken[i]))) for i in sel]
            won = sum(lbl == WON for lbl in labels)
            lost = sum(lbl == LOST for lbl in labels)
            stage_won[st.value] = (won, won + lost)
        every = [lbl for lbl in closes.values()]
        days = base[:, _COL["days_in_stage"]]
        return cls(
            reference=reference,
            quantiles={f: _quantiles(_known(f, base[:, _COL[f]])) for f in _RANKED},
            stage_days={st.value: _quantiles(days[stage == s]) for s, st in enumerate(OPEN_STAGES)},
            stage_won=stage_won,
            won=sum(lbl == WON for lbl in every),
            closed=len(every),
        )


def _known(feature: str, values: np.ndarray) -> np.ndarray:
    return values[values >= 0] if feature == "lead_score" else values


def effects(
    model: DealModel, rows: np.ndarray, n: int, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The close probabilities of ``n`` deals (feature ``rows`` as :meth:`DealModel.rows_each`
    gives them) and, per deal and factor group, how much setting that group to ``reference``
    lowers them: one call of the classifier for all. A group already at the reference moves
    nothing and is not predicted again (most of a batch's groups: the trees' cost is per row).
    A histogram gradient boosting runs an occluded row only through the trees whose path it
    took tests the group (:mod:`worker.models.tree_occlusion`: the same probabilities)."""
    months = rows.shape[0] // n if n else model.months
    per_deal = rows.reshape(n, months, rows.shape[1])
    base_rows = per_deal[:, 0, :]
    owners = []
    for g, cols in enumerate(_COLUMNS.values()):
        moved = np.flatnonzero((base_rows[:, cols] != reference[cols]).any(axis=1))
        if len(moved):
            owners.append((g, moved))
    total = n + sum(len(moved) for _, moved in owners)
    known = _class_proba(model, rows, months, reference, owners)
    if known is not None:
        p = model.predict_known(known, rows[:months], total).close_probability
    else:
        blocks = [per_deal]
        for g, moved in owners:
            cols = list(_COLUMNS.values())[g]
            occluded = per_deal[moved].copy()
            occluded[:, :, cols] = reference[cols]
            blocks.append(occluded)
        stacked = np.concatenate(blocks).reshape(-1, rows.shape[1])
        p = model.predict_rows(stacked, total).close_probability
    base, effect = p[:n], np.zeros((n, len(_COLUMNS)))
    start = n
    for g, moved in owners:
        effect[moved, g] = base[moved] - p[start : start + len(moved)]
        start += len(moved)
    return base, effect


def _class_proba(
    model: DealModel,
    rows: np.ndarray,
    months: int,
    reference: np.ndarray,
    owners: list[tuple[int, np.ndarray]],
) -> np.ndarray | None:
    """The classifier's probabilities of the rows and their occlusions, stacked as
    :func:`effects` stacks them, by the trees' shortcut; None when the classifier has none."""
    forest = forest_of(model.classifier, list(_COLUMNS.values()))
    if forest is None or not len(rows):
        return None
    groups = list(_COLUMNS.values())
    blocks = [Occlusion(groups[g], moved, 1 << g) for g, moved in owners]
    return occluded_proba(forest, rows, months, reference, blocks)


def _pct(x: float) -> str:
    return f"{x:.0%}".replace("%", " %")


def _pts(effect: float) -> str:
    points = 100 * effect
    return f"({points:+.1f} pts)" if abs(points) < 1 else f"({points:+.0f} pts)"


def _days(n: float) -> str:
    d = round(n)
    return "1 day" if d == 1 else f"{d} days"


def _ranked(quantiles: np.ndarray, value: float, more: str, less: str) -> str:
    """``more than X % of deals seen`` or ``less than Y %``, whichever says more."""
    below, above = _share_below(quantiles, value), _share_above(quantiles, value)
    if max(below, above) >= 1.0:
        return f"{more if below >= above else less} than every deal seen"
    if below >= above:
        return f"{more} than {_pct(below)} of deals seen"
    return f"{less} than {_pct(above)} of deals seen"


@dataclass(frozen=True, slots=True)
class _Deal:
    """One deal's base features by name, with the names its sentences quote."""

    row: np.ndarray
    stage: str
    owner: str | None
    company: str | None
    industry: str | None

    def __getitem__(self, feature: str) -> float:
        return float(self.row[_COL[feature]])


def _rate_sentence(
    group: str, d: _Deal, profile: DealProfile, history: History, effect: float
) -> str | None:
    """The earlier closes of the deal's owner, account or industry; None when its plain rate
    contradicts the effect's sign."""
    value = getattr(d, group)
    if value is None:
        return None
    what = {
        "owner": "of this owner",
        "company": "with this account",
        "industry": "in this industry",
    }
    closed = history.closed.get(group, {}).get(value, 0)
    if closed == 0:
        return f"No earlier closed deals {what[group]} ({value})"
    rate = history.won.get(group, {}).get(value, 0) / closed
    if rate != history.base_rate and (rate > history.base_rate) != (effect > 0):
        return None
    return f"Won {_pct(rate)} of {closed} earlier deals {what[group]} ({value})"


def _stage(d: _Deal, profile: DealProfile, effect: float) -> str | None:
    won, closed = profile.stage_won.get(d.stage, (0, 0))
    overall = profile.won / profile.closed if profile.closed else 0.0
    if not closed or (won / closed > overall) != (effect > 0):
        return None
    return f"In {d.stage}: {_pct(won / closed)} of {closed} deals seen in it closed won"


def _days_in_stage(d: _Deal, profile: DealProfile) -> str:
    days = d["days_in_stage"]
    rank = _ranked(profile.stage_days[d.stage], days, "longer", "shorter")
    return f"{_days(days)} in {d.stage}, {rank} in it"


def _age(d: _Deal, profile: DealProfile) -> str:
    age = d["age_days"]
    return f"Open {_days(age)}, {_ranked(profile.quantiles['age_days'], age, 'longer', 'shorter')}"


def _activity(d: _Deal, profile: DealProfile) -> str:
    idle = d["days_since_activity"]
    q = profile.quantiles["days_since_activity"]
    return f"No activity for {_days(idle)}, {_ranked(q, idle, 'longer', 'shorter')}"


def _close_date(d: _Deal, profile: DealProfile) -> str:
    over, ahead = d["days_overdue"], d["days_to_close_date"]
    if over > 0:
        rank = _ranked(profile.quantiles["days_overdue"], over, "more", "fewer")
        return f"{_days(over)} past its expected close date, {rank}"
    if ahead > 0:
        rank = _ranked(profile.quantiles["days_to_close_date"], ahead, "later", "sooner")
        return f"Expected to close in {_days(ahead)}, {rank}"
    return "Expected to close today, or no close date"


def _pushes(d: _Deal, profile: DealProfile) -> str:
    n = int(d["close_date_pushes"])
    if n == 0:
        return "Close date never pushed"
    times = "once" if n == 1 else f"{n} times"
    rank = _ranked(profile.quantiles["close_date_pushes"], n, "more", "fewer")
    return f"Close date pushed {times}, {rank}"


def _amount(d: _Deal, profile: DealProfile) -> str:
    ratio = math.exp(d["log_amount_vs_typical"])
    return f"Amount {ratio:.2g}x the typical {d.industry or 'deal'} deal".replace(
        "deal deal", "deal"
    )


def _lead_score(d: _Deal, profile: DealProfile) -> str:
    lead = d["lead_score"]
    if lead < 0:
        return "No lead score"
    rank = _ranked(profile.quantiles["lead_score"], lead, "higher", "lower")
    return f"Lead score {lead:.0f}, {rank}"


def _engagement(d: _Deal, profile: DealProfile) -> str:
    n, handled = int(d["interactions"]), int(d["objections_handled"])
    what = "1 interaction" if n == 1 else f"{n} interactions"
    objections = f", {handled} objections handled" if handled else ""
    rank = _ranked(profile.quantiles["interactions"], n, "more", "fewer")
    return f"{what}{objections}, {rank}"


def _qualification(d: _Deal, profile: DealProfile) -> str:
    parts = [
        "champion" if d["has_champion"] else "no champion",
        "budget confirmed" if d["budget_confirmed"] else "budget not confirmed",
        "decision maker engaged" if d["decision_maker_engaged"] else "no decision maker",
    ]
    return ", ".join(parts).capitalize()


def _competitors(d: _Deal, profile: DealProfile) -> str:
    n = int(d["competitors"])
    return "No competitor in the deal" if n == 0 else f"{n} competitor{'s' * (n > 1)} in the deal"


# groups whose sentence depends on the deal's values only (never contradicts the effect)
_PLAIN = {
    "days_in_stage": _days_in_stage,
    "age": _age,
    "activity": _activity,
    "close_date": _close_date,
    "pushes": _pushes,
    "amount": _amount,
    "lead_score": _lead_score,
    "engagement": _engagement,
    "qualification": _qualification,
    "competitors": _competitors,
}


def _sentence(
    group: str, d: _Deal, profile: DealProfile, history: History, effect: float
) -> str | None:
    """The factor in words, or None when the data would contradict the effect's sign."""
    if group == "stage":
        return _stage(d, profile, effect)
    if group in ("owner", "company", "industry"):
        return _rate_sentence(group, d, profile, history, effect)
    return _PLAIN[group](d, profile)


def explain(
    model: DealModel,
    profile: DealProfile,
    deals: Sequence[Any],
    rows: np.ndarray,
    effect: np.ndarray,
    top: int = 3,
    min_effect: float = 0.001,
) -> list[DealExplanation]:
    """The ``top`` factors raising and lowering each deal's close probability, in words (an
    effect under ``min_effect``, a tenth of a point, says nothing). ``rows`` and ``effect`` as
    :func:`effects` used and gave them."""
    width, months = len(BASE_FEATURES), model.months
    base = rows.reshape(len(deals), months, len(FEATURES))[:, 0, :width]
    names = list(_COLUMNS)
    out = []
    for i, deal in enumerate(deals):
        d = _Deal(base[i], str(deal.stage), deal.owner, deal.company, deal.industry)
        raises: list[str] = []
        lowers: list[str] = []
        for k in np.argsort(-np.abs(effect[i]), kind="stable"):
            e = float(effect[i, k])
            if abs(e) < min_effect:
                break
            bucket = raises if e > 0 else lowers
            if len(bucket) >= top:
                continue
            text = _sentence(names[k], d, profile, model.history, e)
            if text is not None:
                bucket.append(f"{text} {_pts(e)}")
        out.append(DealExplanation(tuple(raises), tuple(lowers)))
    return out
