"""The AsyncAPI document, complete and readable offline.

FastStream documents a batch subscriber's payload from its handler's signature, which takes
raw records (the codec validates them), so the deal and account channels came out with empty
payload schemas: :func:`complete` puts our contracts there (the deal or account event union,
and the clock tick both topics carry). FastStream's HTML page loads its viewer from a CDN and
is blank without internet: :func:`render_html` writes a self-contained page instead (no
script, no external asset), and :func:`asyncapi_routes` serves both at ``/asyncapi`` and
``/asyncapi.json``.
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any, Union, get_args

from faststream.asgi import AsgiResponse, get
from pydantic import Field, TypeAdapter

from schemas.account_events import AccountEvent
from schemas.clock import ClockTick
from schemas.deal_events import DealEvent

REF = "#/components/schemas/{model}"


def _with_ticks(union: Any) -> Any:
    """The envelope union of a topic that also carries clock ticks (as the codec reads it)."""
    members = get_args(get_args(union)[0])
    return Annotated[Union[(*members, ClockTick)], Field(discriminator="type")]


def _payloads() -> dict[str, Any]:
    """Payload schema of each consumed channel family (FastStream's payload name prefix)."""
    return {
        "deal-events": TypeAdapter(_with_ticks(DealEvent)),
        "account-events": TypeAdapter(_with_ticks(AccountEvent)),
    }


VENDOR_PAYLOAD = {
    "title": "Vendor webhook body",
    "description": "The vendor's own JSON, as its webhook delivers it: a HubSpot notification "
    "array, a Salesforce Change Data Capture event (or array, or CometD message), a Pipedrive "
    "webhooks v1 or v2 body. Mapped by the topic's adapter (worker/adapters).",
    "type": ["object", "array"],
}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (AsyncAPI 3 as JSON) with the deal, account and vendor payload schemas."""
    doc = json.loads(json.dumps(document))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for prefix, adapter in _payloads().items():
        schema = adapter.json_schema(ref_template=REF, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[f"{prefix}:Message:Payload"] = schema
    schemas["vendor-events:Message:Payload"] = VENDOR_PAYLOAD
    return doc


def _schema_block(schema: Any) -> str:
    return f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>"


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node


def _channel(doc: dict[str, Any], name: str, channel: dict[str, Any]) -> str:
    parts = [
        f"<section id='{html.escape(name)}'><h2>{html.escape(channel.get('address', name))}</h2>",
        f"<p>{html.escape(channel.get('description', ''))}</p>",
    ]
    for message in channel.get("messages", {}).values():
        msg = _resolve(doc, message.get("$ref", ""))
        payload = msg.get("payload", {})
        if "$ref" in payload:
            payload = {**_resolve(doc, payload["$ref"]), "$ref": payload["$ref"]}
        parts.append(
            f"<details><summary>payload of {html.escape(msg.get('title', ''))}</summary>"
            f"{_schema_block(payload)}</details>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(document: dict[str, Any]) -> str:
    """A self-contained page of the document: each channel, its payload schema, and the
    shared schemas, with no script and nothing loaded from elsewhere."""
    info = document.get("info", {})
    title = html.escape(f"{info.get('title', 'AsyncAPI')} {info.get('version', '')}")
    channels = "".join(_channel(document, n, c) for n, c in document.get("channels", {}).items())
    shared = "".join(
        f"<details id='schema-{html.escape(n)}'><summary>{html.escape(n)}</summary>"
        f"{_schema_block(s)}</details>"
        for n, s in sorted(document.get("components", {}).get("schemas", {}).items())
    )
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "pre{background:#f5f5f5;padding:1em;overflow:auto}section{margin-bottom:2em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h1>{title}</h1>"
        f"<p>{html.escape(info.get('description', ''))}</p>"
        f"<p>AsyncAPI {html.escape(str(document.get('asyncapi', '')))}; the document as JSON: "
        f"<a href='asyncapi.json'>asyncapi.json</a></p>"
        f"{channels}<h2>Schemas</h2>{shared}</body></html>"
    )


def asyncapi_routes(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """``/asyncapi`` (the offline page) and ``/asyncapi.json`` (the completed document)."""
    doc = complete(document)
    page = render_html(doc).encode()
    body = json.dumps(doc).encode()

    @get(description="The AsyncAPI document of every topic, as a page (offline)")
    async def asyncapi(scope: Any) -> AsgiResponse:
        return AsgiResponse(page, 200, {"content-type": "text/html; charset=utf-8"})

    @get(description="The AsyncAPI document of every topic (JSON)")
    async def asyncapi_json(scope: Any) -> AsgiResponse:
        return AsgiResponse(body, 200, {"content-type": "application/json"})

    return [("/asyncapi", asyncapi), ("/asyncapi.json", asyncapi_json)]
