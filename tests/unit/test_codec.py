from types import SimpleNamespace

import pytest

from tests.factories import created
from worker.codec import Incoming, Rejected, decode


def record(value, key=b"D1", headers=()):
    return SimpleNamespace(
        topic="t", partition=2, offset=41, key=key, value=value, headers=list(headers)
    )


def test_valid_record_decodes():
    out = decode(record(created("D1").model_dump_json().encode()), 10_000)
    assert isinstance(out, Incoming) and out.event.subject == "D1"
    assert out.ref.log_context() == {"topic": "t", "partition": 2, "offset": 41}


@pytest.mark.parametrize(
    ("value", "key", "error"),
    [
        (b"{not json", b"D1", "malformed_json"),
        (b"", b"D1", "empty_payload"),
        (None, b"D1", "empty_payload"),
        (b'{"type": "deal.vanished", "id": "x"}', b"D1", "unknown_event_type"),
        (b'{"type": "deal.created", "id": "x"}', b"D1", "schema_violation"),
        (b"[]", b"D1", "schema_violation"),
    ],
)
def test_bad_records_are_rejected_with_error_class(value, key, error):
    out = decode(record(value, key), 10_000)
    assert isinstance(out, Rejected) and out.error == error and out.reason


def test_oversized_payload_is_rejected_before_parsing():
    out = decode(record(b"x" * 2000), 1000)
    assert isinstance(out, Rejected) and out.error == "oversized"


def test_key_must_match_subject():
    out = decode(record(created("D1").model_dump_json().encode(), key=b"D2"), 10_000)
    assert isinstance(out, Rejected) and out.error == "key_mismatch"
