"""Decoding account records: a validated event, or a rejection with a class and reason."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from schemas.account_events import AccountEvent
from tests.account_factories import created, raw_event
from worker.domain.batch import Rejected
from worker.kafka.codec import decode_account


def record(value: bytes | None, key: bytes | None = None, offset: int = 7) -> SimpleNamespace:
    return SimpleNamespace(
        topic="crm.account-events", partition=1, offset=offset, key=key, value=value, headers=[]
    )


def encoded(event: AccountEvent) -> bytes:
    return event.model_dump_json().encode()


def test_decode_valid_record():
    event = created("A")
    out = decode_account(record(encoded(event), key=b"A"), 4096)
    assert not isinstance(out, Rejected)
    assert out[0].event == event and out[0].ref.partition == 1 and out[0].ref.offset == 7


@pytest.mark.parametrize(
    ("value", "key", "error", "fragment"),
    [
        (None, None, "empty_payload", "no payload"),
        (b"   ", None, "empty_payload", "no payload"),
        (b"{" + b" " * 5000 + b"}", None, "oversized", "exceeds 4096"),
        (b'{"id": "x", "type": ', None, "malformed_json", "EOF"),
        (
            json.dumps(raw_event("A", "merged")).encode(),
            None,
            "unknown_event_type",
            "account.merged",
        ),
        (
            json.dumps({**raw_event("A", "created"), "type": "deal.created"}).encode(),
            None,
            "unknown_event_type",
            "deal.created",
        ),
        (
            json.dumps(raw_event("A", "nps_submitted", {"score": 42})).encode(),
            None,
            "schema_violation",
            "data.score",
        ),
        (json.dumps(raw_event("A", "created")).encode(), b"B", "key_mismatch", "differs"),
    ],
)
def test_decode_rejects_with_a_class_and_reason(value, key, error, fragment):
    out = decode_account(record(value, key=key), 4096)
    assert isinstance(out, Rejected)
    assert out.error == error
    assert fragment in out.reason
