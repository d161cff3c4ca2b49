import json
from types import SimpleNamespace

import pytest

from tests.factories import created
from worker.kafka.codec import Incoming, Rejected, decode


def record(value, key=b"D1", headers=()):
    return SimpleNamespace(
        topic="t", partition=2, offset=41, key=key, value=value, headers=list(headers)
    )


def test_valid_record_decodes():
    out = decode(record(created("D1").model_dump_json().encode()), 10_000)
    assert isinstance(out, list) and len(out) == 1
    assert isinstance(out[0], Incoming) and out[0].event.subject == "D1"
    assert out[0].ref.log_context() == {"topic": "t", "partition": 2, "offset": 41}


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


HUBSPOT = (
    b'[{"eventId": 1, "subscriptionId": 9, "portalId": 7, "appId": 3, "occurredAt": '
    b'1767225600000, "subscriptionType": "deal.propertyChange", "attemptNumber": 0, '
    b'"objectId": 555, "changeSource": "CRM", "propertyName": "amount", "propertyValue": "900"}]'
)


def test_vendor_topic_is_normalised_by_its_adapter():
    out = decode(record(HUBSPOT, key=None), 10_000, {"t": "hubspot"})
    assert isinstance(out, list) and [i.event.type for i in out] == ["deal.updated"]
    assert out[0].event.subject == "hs-7-555" and out[0].event.data.amount == 900


def test_source_header_overrides_the_topic():
    out = decode(record(HUBSPOT, key=None, headers=[("revintel-source", b"hubspot")]), 10_000)
    assert isinstance(out, list) and out[0].event.subject == "hs-7-555"


def test_unmappable_vendor_payload_is_rejected_with_the_adapter_reason():
    bad = HUBSPOT.replace(b'"amount"', b'"dealstage"').replace(b'"900"', b'"no-such-stage"')
    (out,) = decode(record(bad, key=None), 10_000, {"t": "hubspot"})  # the stage part alone
    assert isinstance(out, Rejected) and out.error == "unmapped_stage"
    assert "no-such-stage" in out.reason and out.ref.value == bad


def test_unknown_source_header_is_rejected():
    out = decode(record(HUBSPOT, headers=[("revintel-source", b"zoho")]), 10_000)
    assert isinstance(out, Rejected) and out.error == "unknown_source"


def test_a_bad_item_of_a_vendor_batch_is_rejected_alone():
    good = json.loads(HUBSPOT)[0]
    bad = {**good, "eventId": 2, "objectId": 556, "propertyName": "dealstage"}
    bad["propertyValue"] = "custom-stage-7"
    out = decode(record(json.dumps([good, bad]).encode(), key=None), 10_000, {"t": "hubspot"})
    assert isinstance(out, list)
    (rejected,) = [o for o in out if isinstance(o, Rejected)]
    (applied,) = [o for o in out if isinstance(o, Incoming)]
    assert applied.event.subject == "hs-7-555"
    assert rejected.error == "unmapped_stage" and "item [1]" in rejected.reason
    assert json.loads(rejected.ref.value) == bad  # the dead letter holds the bad item alone
    assert rejected.ref.log_context() == {"topic": "t", "partition": 2, "offset": 41}


def test_a_new_deal_gets_its_sources_configured_currency_never_a_silent_usd():
    creation = (
        b'[{"eventId": 1, "portalId": 7, "occurredAt": 1767225600000, '
        b'"subscriptionType": "deal.creation", "objectId": 555}]'
    )
    (incoming,) = decode(
        record(creation, key=None), 10_000, {"t": "hubspot"}, None, {"hubspot": "eur"}
    )
    assert incoming.event.data.currency == "EUR"
    (plain,) = decode(record(creation, key=None), 10_000, {"t": "hubspot"})
    assert plain.event.data.currency is None  # the CRM said none: USD by default, and logged
