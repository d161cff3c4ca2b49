"""The public bank churn sample (10,000 retail-bank customers, 20.4 % churned) as account
events, to develop and test the churn model through the same path as real data.

The file (``customers.csv``; see its SOURCE.md) lives outside the repository, in
``../shared/data/bank_churn`` or wherever ``REVINTEL_BANK_CHURN_DATA`` points:
:func:`bank_churn_dir` finds it. It is never copied into the repository.

The data has no time column. The order chosen (and held out on) is the CustomerId: the
customer of rank ``i`` (0-based, by CustomerId) becomes the account ``bank-<CustomerId>``:

``bank-<id>-created`` (``account.created``) at ``START + i * SPACING`` (50 minutes: the
    10,000 customers arrive over 347 days), industry ``banking``, with attributes
    ``credit_score``, ``region`` (Geography), ``gender``, ``age``, ``tenure_years``,
    ``balance``, ``products`` (NumOfProducts), ``has_credit_card`` (1/0) and
    ``estimated_salary``.
``bank-<id>-usage`` (``account.usage_reported``) one hour later: the structured signal the
    data has, IsActiveMember, as one period of usage of one licensed seat (active seats and
    logins 1 for an active member, 0 otherwise), period ending on the creation day.
``bank-<id>-churned`` / ``-renewed`` (``account.churned`` / ``account.renewed``)
    ``OUTCOME_AFTER`` (365 days) after creation, from ``Exited``: so outcomes arrive in
    CustomerId order, and the newest outcomes are those of the highest ids.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.account_events import AccountEvent, AccountEventAdapter

BANK_CHURN_DATA_ENV = "REVINTEL_BANK_CHURN_DATA"
CUSTOMERS_FILE = "customers.csv"
SOURCE = "bank-churn/customers"
START = datetime(2024, 1, 1, tzinfo=UTC)
SPACING = timedelta(minutes=50)
USAGE_AFTER = timedelta(hours=1)
OUTCOME_AFTER = timedelta(days=365)


def bank_churn_dir() -> Path | None:
    """The data's directory: ``$REVINTEL_BANK_CHURN_DATA`` when set, else
    ``../shared/data/bank_churn`` next to the repository; ``None`` without customers.csv."""
    configured = os.environ.get(BANK_CHURN_DATA_ENV)
    if configured:
        candidate = Path(configured).expanduser()
    else:
        candidate = Path(__file__).resolve().parents[3] / "shared" / "data" / "bank_churn"
    return candidate if (candidate / CUSTOMERS_FILE).is_file() else None


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: int
    credit_score: int
    geography: str
    gender: str
    age: int
    tenure: int
    balance: float
    products: int
    has_credit_card: int
    active_member: int
    estimated_salary: float
    exited: bool

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Customer:
        return cls(
            customer_id=int(row["CustomerId"]),
            credit_score=int(row["CreditScore"]),
            geography=row["Geography"],
            gender=row["Gender"],
            age=int(row["Age"]),
            tenure=int(row["Tenure"]),
            balance=float(row["Balance"]),
            products=int(row["NumOfProducts"]),
            has_credit_card=int(row["HasCrCard"]),
            active_member=int(row["IsActiveMember"]),
            estimated_salary=float(row["EstimatedSalary"]),
            exited=row["Exited"].strip() == "1",
        )

    @property
    def account_id(self) -> str:
        return f"bank-{self.customer_id}"

    @property
    def attributes(self) -> dict[str, Any]:
        return {
            "credit_score": self.credit_score,
            "region": self.geography,
            "gender": self.gender,
            "age": self.age,
            "tenure_years": self.tenure,
            "balance": self.balance,
            "products": self.products,
            "has_credit_card": self.has_credit_card,
            "estimated_salary": self.estimated_salary,
        }


def customers(directory: Path, limit: int | None = None) -> list[Customer]:
    """The customers in CustomerId order (the first ``limit`` of that order)."""
    with (directory / CUSTOMERS_FILE).open(newline="", encoding="utf-8") as f:
        found = [Customer.from_row(row) for row in csv.DictReader(f)]
    found.sort(key=lambda c: c.customer_id)
    return found[:limit] if limit is not None else found


def _event(c: Customer, step: str, kind: str, at: datetime, data: dict[str, Any]) -> AccountEvent:
    return AccountEventAdapter.validate_python(
        {
            "id": f"{c.account_id}-{step}",
            "source": SOURCE,
            "type": f"account.{kind}",
            "time": at,
            "subject": c.account_id,
            "data": data,
        }
    )


def customer_events(c: Customer, rank: int) -> list[AccountEvent]:
    """The account events of the customer of ``rank`` (module docstring)."""
    created = START + rank * SPACING
    outcome = "churned" if c.exited else "renewed"
    return [
        _event(
            c,
            "created",
            "created",
            created,
            {
                "name": f"Customer {c.customer_id}",
                "industry": "banking",
                "attributes": c.attributes,
            },
        ),
        _event(
            c,
            "usage",
            "usage_reported",
            created + USAGE_AFTER,
            {
                "period_end": created.date().isoformat(),
                "active_seats": c.active_member,
                "logins": c.active_member,
                "licensed_seats": 1,
            },
        ),
        _event(c, outcome, outcome, created + OUTCOME_AFTER, {}),
    ]


def events(directory: Path, limit: int | None = None) -> Iterator[AccountEvent]:
    """Every customer's events, in time order (creations and usage of later customers come
    before the outcomes of earlier ones, as they would)."""
    all_events = [
        e for rank, c in enumerate(customers(directory, limit)) for e in customer_events(c, rank)
    ]
    all_events.sort(key=lambda e: (e.time, e.id))
    yield from all_events
