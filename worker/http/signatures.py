"""Request authentication of the CRM webhooks, as each vendor documents it. Pure: no I/O, the
time is passed in. Each check returns None when the request is authentic, else the reason
(logged, never the secret or the expected value).

- HubSpot, signature v3 (https://developers.hubspot.com/docs/api/webhooks/validating-requests):
  ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body +
  timestamp)), the URI as HubSpot called it (scheme, host, path, query) with a few
  percent-encoded characters decoded, and ``X-HubSpot-Request-Timestamp`` (epoch ms) no more
  than 5 minutes old.
- Pipedrive: HTTP basic auth, the user and password set on the webhook
  (https://pipedrive.readme.io/docs/guide-for-webhooks-v2). Pipedrive signs nothing.
- Salesforce Change Data Capture reaches HTTP through a relay or connector, which Salesforce
  does not sign: a shared secret in ``X-Revintel-Webhook-Secret``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000
SALESFORCE_SECRET_HEADER = "x-revintel-webhook-secret"

# HubSpot decodes these in the URI before signing (its "validating requests" guide)
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-encodings decoded (either case)."""
    for encoded, char in _HUBSPOT_DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The base64 HMAC-SHA256 HubSpot sends (what a test or a relay computes)."""
    message = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_hubspot_v3(
    *,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now_ms: int,
) -> str | None:
    if not signature or not timestamp:
        return "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp"
    try:
        sent_ms = int(timestamp)
    except ValueError:
        return "X-HubSpot-Request-Timestamp is not epoch milliseconds"
    if abs(now_ms - sent_ms) > HUBSPOT_MAX_AGE_MS:
        return "X-HubSpot-Request-Timestamp is more than 5 minutes away from now"
    expected = hubspot_v3_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "X-HubSpot-Signature-v3 does not match (client secret, URI or body differ)"
    return None


def check_basic_auth(*, header: str | None, user: str, password: str) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return "missing basic credentials"
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "malformed basic credentials"
    given_user, sep, given_password = decoded.partition(":")
    # both compared, whatever the first gives, so the time does not tell which one differs
    same_user = hmac.compare_digest(given_user.encode(), user.encode())
    same_password = hmac.compare_digest(given_password.encode(), password.encode())
    if not (sep and same_user and same_password):
        return "wrong basic credentials"
    return None


def check_shared_secret(*, header: str | None, secret: str) -> str | None:
    if not header:
        return f"missing {SALESFORCE_SECRET_HEADER}"
    if not hmac.compare_digest(header.strip().encode(), secret.encode()):
        return f"wrong {SALESFORCE_SECRET_HEADER}"
    return None
