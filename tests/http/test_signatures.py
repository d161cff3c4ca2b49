"""Webhook authentication as the vendors document it (pure: no server)."""

from __future__ import annotations

import base64

from worker.http.signatures import (
    check_basic_auth,
    check_hubspot_v3,
    check_shared_secret,
    hubspot_uri,
    hubspot_v3_signature,
)

# HubSpot's own test vector for signature v3, from its Python SDK's tests
# (HubSpot/hubspot-api-python, tests/spec/utils/test_signature.py, read 2026-11-26)
SDK_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
SDK_BODY = b"{'example_field':'example_value'}"
SDK_URL = "https://www.example.com/webhook_uri"
SDK_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


def test_the_v3_signature_is_hubspots_own_test_vector():
    assert hubspot_v3_signature(SDK_SECRET, "POST", SDK_URL, SDK_BODY, "15000000") == SDK_SIGNATURE


def check(**changes):
    request = {
        "secret": SDK_SECRET,
        "method": "POST",
        "uri": SDK_URL,
        "body": SDK_BODY,
        "timestamp": "15000000",
        "signature": SDK_SIGNATURE,
        "now_ms": 15000000 + 60_000,
    }
    return check_hubspot_v3(**{**request, **changes})


def test_a_signed_request_within_five_minutes_passes():
    assert check() is None
    assert check(now_ms=15000000 - 299_000) is None  # a clock a little behind HubSpot's


def test_an_old_request_is_refused_even_when_signed():
    assert "5 minutes" in check(now_ms=15000000 + 300_001)


def test_any_change_breaks_the_signature():
    assert "does not match" in check(body=SDK_BODY + b" ")
    assert "does not match" in check(uri=SDK_URL + "?x=1")
    assert "does not match" in check(secret="another")
    assert "does not match" in check(method="PUT")
    assert "missing" in check(signature=None)
    assert "epoch milliseconds" in check(timestamp="yesterday")


def test_the_uri_is_signed_with_hubspots_decoded_characters():
    assert hubspot_uri("https://h/p?a=%3A%2f%40x%2C") == "https://h/p?a=:/@x,"
    encoded = "https://h/webhooks/hubspot?portal=%3A1"
    signed = hubspot_v3_signature("s", "POST", "https://h/webhooks/hubspot?portal=:1", b"[]", "1")
    assert hubspot_v3_signature("s", "POST", encoded, b"[]", "1") == signed


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_pipedrive_basic_auth():
    assert check_basic_auth(header=basic("pd", "p:w"), user="pd", password="p:w") is None
    assert check_basic_auth(header=basic("pd", "no"), user="pd", password="p:w")
    assert check_basic_auth(header=basic("x", "p:w"), user="pd", password="p:w")
    assert check_basic_auth(header=None, user="pd", password="p:w")
    assert check_basic_auth(header="Basic !!", user="pd", password="p:w")
    assert check_basic_auth(header="Bearer abc", user="pd", password="p:w")


def test_salesforce_shared_secret():
    assert check_shared_secret(header="s3cret", secret="s3cret") is None
    assert check_shared_secret(header="other", secret="s3cret")
    assert check_shared_secret(header=None, secret="s3cret")
