"""CRM webhooks in over HTTP: ``POST /webhooks/hubspot``, ``/webhooks/pipedrive``,
``/webhooks/salesforce``.

Each request is authenticated as its vendor documents it (``worker.http.signatures``), size
limited, checked to be JSON, and its raw body is published to the vendor's topic with
``acks=all`` before the 2xx is sent: once a vendor hears 200, the body is on the broker's log,
and the worker's normaliser maps it (or dead-letters it with a reason). A redelivered webhook
is published again; its events keep their vendor-derived ids, so the worker applies them once.

Answers: 200 published; 400 not JSON (the raw body also goes to ``<topic>.dlq`` with the
reason, so a signed body is never lost); 401 authentication failed (nothing published); 413
too large; 503 the vendor's secret is not configured, or Kafka did not acknowledge (the vendor
retries).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from worker.http import signatures
from worker.kafka.topics import dlq_topic
from worker.log import get_logger
from worker.settings import Settings

SOURCE_HEADER = "revintel-source"
RECEIVED_HEADER = "revintel-received-at"
PUBLISH_TIMEOUT_SECONDS = 10.0  # HubSpot waits 5 s, Pipedrive 10 s; a retry is the fallback

Header = tuple[str, bytes]
Publish = Callable[[str, bytes | None, bytes, Sequence[Header]], Awaitable[tuple[int, int]]]
"""``publish(topic, key, value, headers)`` -> (partition, offset) once the broker acknowledged
it with acks=all; raises when it cannot (no producer yet, Kafka away)."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """What the endpoints need of the settings: secrets (never logged), topics, limits."""

    topics: Mapping[str, str]  # vendor -> raw topic
    max_bytes: int
    hubspot_secret: str | None = None
    pipedrive_user: str | None = None
    pipedrive_password: str | None = None
    salesforce_secret: str | None = None
    public_url: str | None = None

    @classmethod
    def of(cls, s: Settings) -> WebhookConfig:
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            topics={vendor: topic for topic, vendor in s.source_topics.items()},
            max_bytes=s.max_message_bytes,
            hubspot_secret=secret(s.hubspot_client_secret),
            pipedrive_user=s.pipedrive_webhook_user,
            pipedrive_password=secret(s.pipedrive_webhook_password),
            salesforce_secret=secret(s.salesforce_webhook_secret),
            public_url=s.public_url,
        )


class Accepted(BaseModel):
    """The body is on the vendor's topic (acks=all)."""

    status: str = "accepted"
    topic: str
    partition: int
    offset: int


class Problem(BaseModel):
    detail: str


class TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def signed_uri(request: Request, public_url: str | None) -> str:
    """The URI HubSpot called: the configured public base (behind a proxy), else the
    request's own scheme and host; then the path and query as sent."""
    base = public_url.rstrip("/") if public_url else f"{request.url.scheme}://{request.url.netloc}"
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


def _auth_problem(vendor: str, request: Request, body: bytes, cfg: WebhookConfig) -> str | None:
    """None when the request is authentic, else why (configuration problems start "config")."""
    headers = request.headers
    if vendor == "hubspot":
        if not cfg.hubspot_secret:
            return "config: set REVINTEL_HUBSPOT_CLIENT_SECRET"
        return signatures.check_hubspot_v3(
            secret=cfg.hubspot_secret,
            method=request.method,
            uri=signed_uri(request, cfg.public_url),
            body=body,
            timestamp=headers.get("x-hubspot-request-timestamp"),
            signature=headers.get("x-hubspot-signature-v3"),
            now_ms=int(time.time() * 1000),
        )
    if vendor == "pipedrive":
        if not (cfg.pipedrive_user and cfg.pipedrive_password):
            return "config: set REVINTEL_PIPEDRIVE_WEBHOOK_USER and _PASSWORD"
        return signatures.check_basic_auth(
            header=headers.get("authorization"),
            user=cfg.pipedrive_user,
            password=cfg.pipedrive_password,
        )
    if not cfg.salesforce_secret:
        return "config: set REVINTEL_SALESFORCE_WEBHOOK_SECRET"
    return signatures.check_shared_secret(
        header=headers.get(signatures.SALESFORCE_SECRET_HEADER), secret=cfg.salesforce_secret
    )


def partition_key(vendor: str, body: Any) -> bytes | None:
    """The deal a body is about, when it is about one (keeps one deal's deliveries in one
    partition); None for a batch of several."""
    one = body[0] if isinstance(body, list) and len(body) == 1 else body
    if not isinstance(one, dict):
        return None
    if vendor == "hubspot":
        key = one.get("objectId")
    elif vendor == "pipedrive":
        meta = one.get("meta") if isinstance(one.get("meta"), dict) else {}
        key = meta.get("entity_id") or meta.get("id")
    else:
        payload = one.get("payload", one)
        payload = payload if isinstance(payload, dict) else {}
        header = payload.get("ChangeEventHeader")
        ids = header.get("recordIds") if isinstance(header, dict) else None
        key = ids[0] if isinstance(ids, list) and len(ids) == 1 else None
    return str(key).encode() if isinstance(key, str | int) and not isinstance(key, bool) else None


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class Ingress:
    """The endpoints' work, one instance per app: authenticate, check, publish."""

    def __init__(self, cfg: WebhookConfig, publish: Publish) -> None:
        self.cfg = cfg
        self.publish = publish

    async def handle(self, vendor: str, request: Request) -> JSONResponse:
        log = get_logger().bind(vendor=vendor, path=request.url.path)
        topic = self.cfg.topics.get(vendor)
        if topic is None:
            return _problem(503, f"no topic is configured for {vendor} (REVINTEL_SOURCE_TOPICS)")
        try:
            body = await read_body(request, self.cfg.max_bytes)
        except TooLarge:
            log.warning("webhook_rejected", status=413, reason="too large")
            return _problem(413, f"body larger than {self.cfg.max_bytes} bytes")
        problem = _auth_problem(vendor, request, body, self.cfg)
        if problem is not None:
            configured = not problem.startswith("config: ")
            log.warning("webhook_rejected", status=401 if configured else 503, reason=problem)
            if not configured:
                return _problem(503, f"{vendor} webhooks are not configured: {problem[8:]}")
            basic = {"WWW-Authenticate": 'Basic realm="revintel"'} if vendor == "pipedrive" else {}
            return _problem(401, "authentication failed", basic)
        return await self._accept(vendor, topic, body, log)

    async def _accept(self, vendor: str, topic: str, body: bytes, log: Any) -> JSONResponse:
        received = str(int(time.time() * 1000)).encode()
        headers: list[Header] = [(SOURCE_HEADER, vendor.encode()), (RECEIVED_HEADER, received)]
        try:
            parsed = json.loads(body)
            if not isinstance(parsed, dict | list) or not parsed:
                raise ValueError("not a JSON object or a non-empty array")
        except (ValueError, UnicodeDecodeError) as exc:
            reason = f"{vendor} webhook body is not JSON: {exc}"[:300]
            # signed but unreadable: kept on the dead-letter topic for a person to look at
            dead = [*headers, ("dlq.reason", b"not_json"), ("dlq.error", reason.encode())]
            stored = await self._publish(dlq_topic(topic), None, body, dead, log)
            log.warning("webhook_rejected", status=400, reason=reason, dead_lettered=stored)
            return _problem(400, reason)
        key = partition_key(vendor, parsed)
        where = await self._publish(topic, key, body, headers, log)
        if where is None:
            return _problem(503, "Kafka did not acknowledge the body: retry", {"Retry-After": "5"})
        partition, offset = where
        log.info("webhook_published", topic=topic, partition=partition, offset=offset)
        accepted = Accepted(topic=topic, partition=partition, offset=offset)
        return JSONResponse(accepted.model_dump())

    async def _publish(
        self, topic: str, key: bytes | None, body: bytes, headers: list[Header], log: Any
    ) -> tuple[int, int] | None:
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                return await self.publish(topic, key, body, headers)
        except Exception as exc:  # the vendor retries: say so, keep serving
            log.error("webhook_publish_failed", topic=topic, error=f"{type(exc).__name__}: {exc}")
            return None


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "not JSON (kept on the topic's dead-letter topic)"},
    401: {"model": Problem, "description": "authentication failed; nothing published"},
    413: {"model": Problem, "description": "body too large"},
    503: {"model": Problem, "description": "not configured, or Kafka did not acknowledge"},
}


def webhook_router(cfg: WebhookConfig, publish: Publish) -> APIRouter:
    ingress = Ingress(cfg, publish)
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    @router.post("/hubspot", response_model=Accepted, responses=RESPONSES)
    async def hubspot(request: Request) -> JSONResponse:
        """HubSpot webhook notifications (a JSON array), signed with X-HubSpot-Signature-v3."""
        return await ingress.handle("hubspot", request)

    @router.post("/pipedrive", response_model=Accepted, responses=RESPONSES)
    async def pipedrive(request: Request) -> JSONResponse:
        """Pipedrive webhooks v1 or v2, with the webhook's HTTP basic auth."""
        return await ingress.handle("pipedrive", request)

    @router.post("/salesforce", response_model=Accepted, responses=RESPONSES)
    async def salesforce(request: Request) -> JSONResponse:
        """Salesforce Change Data Capture events as JSON (from a relay or connector), with the
        shared secret in X-Revintel-Webhook-Secret."""
        return await ingress.handle("salesforce", request)

    return router


def producer_publish(producer: Callable[[], Any]) -> Publish:
    """A :data:`Publish` over an aiokafka producer (``producer()`` gives the running one, or
    None while the worker is still starting)."""

    async def publish(
        topic: str, key: bytes | None, value: bytes, headers: Sequence[Header]
    ) -> tuple[int, int]:
        running = producer()
        if running is None:
            raise RuntimeError("the Kafka producer is not started yet")
        sent = await running.send(topic, value=value, key=key, headers=list(headers))
        meta = await sent
        return meta.partition, meta.offset

    return publish
