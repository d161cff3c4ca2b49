"""Pure: the churn model's features. An account becomes a *raw row* (name -> number, string or
None) from the structured signals the heuristic also reads (``ChurnInput``: usage, support,
payments, sentiment, renewal), a few account facts (plan, ARR, feature adoption) and its named
attributes (``attr.<name>``); a :class:`FeatureSpec` learned from training rows turns raw rows
into a matrix: numbers as they are (NaN when missing), strings one-hot over the levels seen at
least ``min_level_count`` times (rarer ones and unseen ones share no column).

A raw feature that is constant or missing in every training row is left out: it cannot teach
the model anything, and it would only clutter the explanations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from worker.engine import ChurnInput
from worker.engine._common import trend

__all__ = ["FeatureSpec", "RawRow", "account_features", "label", "signal_features"]

RawValue = float | str | None
RawRow = dict[str, RawValue]
ATTRIBUTE_PREFIX = "attr."
_SEVERITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

LABELS: dict[str, str] = {
    "logins_last": "Logins in the last period",
    "logins_trend": "Login trend",
    "active_seats_last": "Active seats in the last period",
    "active_seats_trend": "Active-seat trend",
    "seat_utilisation": "Seat utilisation",
    "open_tickets": "Open support tickets",
    "ticket_severity": "Worst open ticket severity (0-4)",
    "escalations": "Escalated tickets",
    "failed_payments": "Failed payments",
    "days_overdue": "Days overdue",
    "downgrade_requests": "Downgrade requests",
    "nps": "NPS answer",
    "csat": "CSAT",
    "days_to_renewal": "Days to renewal",
    "plan": "Plan",
    "arr": "ARR",
    "feature_adoption": "Feature adoption",
}


def label(name: str) -> str:
    """A feature's name in words (``attr.tenure_months`` -> ``Tenure months``)."""
    if name in LABELS:
        return LABELS[name]
    bare = name.removeprefix(ATTRIBUTE_PREFIX).replace("_", " ").strip()
    return bare[:1].upper() + bare[1:]


def _last(series: Sequence[float]) -> float | None:
    return float(series[-1]) if series else None


def _change(series: Sequence[float]) -> float | None:
    tr = trend(series)
    return None if tr is None else tr.change


def signal_features(a: ChurnInput) -> RawRow:
    """The structured signals of ``a`` as raw features (None: unknown)."""
    days = a.days_to_renewal
    if a.renewal_date is not None and a.as_of is not None:
        days = (a.renewal_date - a.as_of).days
    seats = _last(a.active_seats)
    return {
        "logins_last": _last(a.logins),
        "logins_trend": _change(a.logins),
        "active_seats_last": seats,
        "active_seats_trend": _change(a.active_seats),
        "seat_utilisation": (
            None if seats is None or a.licensed_seats is None else seats / a.licensed_seats
        ),
        "open_tickets": float(a.open_tickets),
        "ticket_severity": float(_SEVERITY_RANK[a.max_ticket_severity]),
        "escalations": float(a.escalations),
        "failed_payments": float(a.failed_payments),
        "days_overdue": float(a.days_overdue),
        "downgrade_requests": float(a.downgrade_requests),
        "nps": None if a.nps is None else float(a.nps),
        "csat": a.csat,
        "days_to_renewal": None if days is None else float(days),
    }


def account_features(
    signals: ChurnInput,
    attributes: Mapping[str, str | int | float],
    facts: Mapping[str, RawValue] | None = None,
) -> RawRow:
    """One account's raw row: its signals, its ``facts`` (plan, arr, ...) and its attributes
    (``attr.<name>``)."""
    row = signal_features(signals)
    row.update(facts or {})
    for name, value in attributes.items():
        row[ATTRIBUTE_PREFIX + name] = value if isinstance(value, str) else float(value)
    return row


def _is_number(value: RawValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _present(value: RawValue) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which raw features a model uses and how they become matrix columns."""

    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]  # name -> levels with a column each

    @classmethod
    def learn(
        cls, rows: Sequence[RawRow], min_level_count: int = 20, max_levels: int = 30
    ) -> FeatureSpec:
        names = sorted({k for r in rows for k in r})
        numeric: list[str] = []
        categorical: dict[str, tuple[str, ...]] = {}
        for name in names:
            values = [r.get(name) for r in rows]
            present = [v for v in values if _present(v)]
            if len(set(present)) < 2 and len(present) in (0, len(values)):
                continue  # constant or never known: nothing to learn
            if all(_is_number(v) for v in present):
                numeric.append(name)
                continue
            counts = Counter(str(v) for v in present)
            levels = [lv for lv, n in counts.most_common(max_levels) if n >= min_level_count]
            if levels:
                categorical[name] = tuple(sorted(levels))
        return cls(tuple(numeric), categorical)

    @property
    def columns(self) -> list[str]:
        cats = [f"{n}={lv}" for n, levels in self.categorical.items() for lv in levels]
        return [*self.numeric, *cats]

    @property
    def features(self) -> list[str]:
        """The raw features, in the order of :meth:`groups`."""
        return [*self.numeric, *self.categorical]

    def groups(self) -> list[slice]:
        """The matrix columns of each raw feature (one for a number, its levels for a
        string), in :attr:`features` order."""
        out = [slice(i, i + 1) for i in range(len(self.numeric))]
        start = len(self.numeric)
        for levels in self.categorical.values():
            out.append(slice(start, start + len(levels)))
            start += len(levels)
        return out

    def matrix(self, rows: Sequence[RawRow]) -> np.ndarray:
        """Rows as a float matrix (NaN: a missing number; all zeros: a string none of whose
        learned levels it is)."""
        x = np.zeros((len(rows), len(self.columns)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            x[:, j] = [_number(r.get(name)) for r in rows]
        start = len(self.numeric)
        for name, levels in self.categorical.items():
            index = {lv: start + k for k, lv in enumerate(levels)}
            for i, r in enumerate(rows):
                value = r.get(name)
                col = index.get(str(value)) if _present(value) else None
                if col is not None:
                    x[i, col] = 1.0
            start += len(levels)
        return x


def _number(value: RawValue) -> float:
    return float(value) if _is_number(value) else math.nan
