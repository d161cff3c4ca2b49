"""Pure: the churn model's explanations in words.

Which factors: for each raw feature, how much the (uncalibrated, smooth) model's probability
moves when that feature alone is set to its typical training value (the median of a number,
the most common level of a string): an occlusion, the same for boosted trees and for a
logistic regression. Positive: the feature raises the risk; negative: it lowers it.

What is said about a factor: the churn rate, in the training rows, of the accounts in the same
group as this one (the same level, the same value of a number with few values, or the same
quintile of the number) against all the others, e.g. ``Is active member 0: churned 27 % vs
14 % for the others``. Rates are the data's, not the model's: a reader can check them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worker.models.churn_features import FeatureSpec, RawRow, label
from worker.models.tree_occlusion import Forest, Occlusion, occluded_proba

__all__ = ["Explanation", "Profile", "contributions", "tree_contributions"]

FEW_VALUES = 6  # a number with at most this many distinct values is grouped by value
QUANTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True, slots=True)
class Explanation:
    raises: tuple[str, ...]  # biggest first
    lowers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Group:
    text: str  # "Age 46-92", "Region Germany", "NPS answer unknown"
    count: int
    churned: int


@dataclass(frozen=True, slots=True)
class NumericProfile:
    cuts: tuple[float, ...]  # group i: cuts[i-1] < v <= cuts[i] (values: v == cuts[i])
    by_value: bool
    groups: tuple[Group, ...]  # one per cut interval (or value)
    missing: Group | None


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _numeric_profile(name: str, values: np.ndarray, y: np.ndarray) -> NumericProfile:
    known = ~np.isnan(values)
    distinct = np.unique(values[known])
    by_value = len(distinct) <= FEW_VALUES
    cuts = distinct if by_value else np.unique(np.quantile(values[known], QUANTILES))
    if not by_value:
        cuts = np.append(cuts, np.inf)
    which = np.searchsorted(cuts, values[known], side="left")
    groups = []
    for g in range(len(cuts)):
        sel = which == g
        vals = values[known][sel]
        if by_value or len(vals) == 0:
            text = f"{label(name)} {_fmt(float(cuts[g]))}"
        else:
            lo, hi = float(vals.min()), float(vals.max())
            span = _fmt(lo) if lo == hi else f"{_fmt(lo)}-{_fmt(hi)}"
            text = f"{label(name)} {span}"
        groups.append(Group(text, int(sel.sum()), int(y[known][sel].sum())))
    missing = None
    if (~known).any():
        missing = Group(f"{label(name)} unknown", int((~known).sum()), int(y[~known].sum()))
    return NumericProfile(tuple(float(c) for c in cuts), by_value, tuple(groups), missing)


@dataclass(frozen=True, slots=True)
class Profile:
    """What the explanations need from the training rows."""

    total: int
    churned: int
    numeric: dict[str, NumericProfile]
    levels: dict[str, dict[str, Group]]  # string feature -> level -> group
    reference: np.ndarray  # the typical row, in matrix columns

    @classmethod
    def learn(cls, spec: FeatureSpec, rows: Sequence[RawRow], y: np.ndarray) -> Profile:
        x = spec.matrix(rows)
        numeric = {name: _numeric_profile(name, x[:, j], y) for j, name in enumerate(spec.numeric)}
        levels: dict[str, dict[str, Group]] = {}
        for name in spec.categorical:
            values = [str(r.get(name)) if r.get(name) is not None else None for r in rows]
            groups: dict[str, Group] = {}
            for lv in sorted({v for v in values if v is not None}):
                sel = np.array([v == lv for v in values])
                groups[lv] = Group(f"{label(name)} {lv}", int(sel.sum()), int(y[sel].sum()))
            levels[name] = groups
        reference = np.zeros(x.shape[1])
        for j in range(len(spec.numeric)):
            col = x[:, j]
            reference[j] = np.nanmedian(col) if (~np.isnan(col)).any() else math.nan
        for sl in spec.groups()[len(spec.numeric) :]:
            block = x[:, sl]
            reference[sl.start + int(block.sum(axis=0).argmax())] = 1.0
        return cls(len(y), int(y.sum()), numeric, levels, reference)

    def group_of(self, name: str, value: object) -> Group | None:
        if name in self.levels:
            return None if value is None else self.levels[name].get(str(value))
        p = self.numeric[name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return p.missing
        v = float(value)  # type: ignore[arg-type]
        if p.by_value:
            return next((g for c, g in zip(p.cuts, p.groups, strict=True) if c == v), None)
        return p.groups[bisect.bisect_left(p.cuts, v)]  # the cuts are sorted, the last inf

    def rates(self, name: str, value: object) -> tuple[Group, float, float] | None:
        """The account's group for one feature, its churn rate and the others' (None: no such
        group in training)."""
        g = self.group_of(name, value)
        if g is None or g.count == 0 or g.count == self.total:
            return None
        return g, g.churned / g.count, (self.churned - g.churned) / (self.total - g.count)

    def sentence(self, name: str, value: object) -> str | None:
        """``<group>: churned X % vs Y % for the others``."""
        found = self.rates(name, value)
        return None if found is None else _said(*found)

    def explain(
        self,
        spec: FeatureSpec,
        row: RawRow,
        contribution: np.ndarray,
        top: int = 3,
        min_effect: float = 0.005,
    ) -> Explanation:
        """The ``top`` factors raising and lowering one account's risk, in words. A factor is
        said only when its group's churn rate agrees with the direction the model gives it
        (the model may weigh a feature against its plain rate through another one: a sentence
        then would contradict itself), and a group already said (the same accounts under
        another name, e.g. logins and active seats) is not said again."""
        order = np.argsort(-np.abs(contribution), kind="stable")
        raises: list[str] = []
        lowers: list[str] = []
        said: set[tuple[int, int]] = set()
        for k in order:
            c = float(contribution[k])
            if abs(c) < min_effect:
                break
            bucket = raises if c > 0 else lowers
            name = spec.features[k]
            found = self.rates(name, row.get(name))
            if len(bucket) >= top or found is None:
                continue
            g, rate_in, rate_out = found
            if (rate_in > rate_out) != (c > 0) or (g.count, g.churned) in said:
                continue
            if round(rate_in * 100) == round(rate_out * 100):
                continue  # "20 % vs 20 %" explains nothing
            said.add((g.count, g.churned))
            bucket.append(_said(g, rate_in, rate_out))
        return Explanation(tuple(raises), tuple(lowers))


def _said(g: Group, rate_in: float, rate_out: float) -> str:
    return f"{g.text}: churned {rate_in:.0%} vs {rate_out:.0%} for the others".replace("%", " %")


def contributions(
    predict: object, spec: FeatureSpec, x: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities of the rows of ``x`` and, per row and raw feature, how much setting
    that feature to ``reference`` lowers them (one batched prediction)."""
    groups = spec.groups()
    n = x.shape[0]
    blocks = [x]
    for sl in groups:
        occluded = x.copy()
        occluded[:, sl] = reference[sl]
        blocks.append(occluded)
    p = predict(np.vstack(blocks))  # type: ignore[operator]
    base = p[:n]
    moved = p[n:].reshape(len(groups), n).T
    return base, base[:, None] - moved


def tree_contributions(
    forest: Forest, spec: FeatureSpec, x: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`contributions` of a histogram gradient boosting's trees, the same numbers for a
    fraction of the cost: a row whose feature is already at the reference moves nothing and
    is not predicted again; an occluded row runs only through the trees whose path it took
    tests that feature (:mod:`worker.models.tree_occlusion`)."""
    n = x.shape[0]
    groups = spec.groups()
    blocks: list[tuple[int, Occlusion]] = []
    for g, sl in enumerate(groups):
        moved = np.flatnonzero((x[:, sl] != reference[sl]).any(axis=1))
        if len(moved):
            blocks.append((g, Occlusion(list(range(sl.start, sl.stop)), moved, 1 << g)))
    p = occluded_proba(forest, x, 1, reference, [b for _, b in blocks])[:, 1]
    base, effect = p[:n], np.zeros((n, len(groups)))
    start = n
    for g, block in blocks:
        effect[block.moved, g] = base[block.moved] - p[start : start + len(block.moved)]
        start += len(block.moved)
    return base, effect
