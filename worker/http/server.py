"""The HTTP app a process serves: FastAPI for the webhooks and the API (OpenAPI at /docs and
/redoc, their assets served from the installed package: no CDN, they render offline), with
every other path (/health, /metrics, /asyncapi) falling through to FastStream's ASGI app."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp


def outer_app(fallback: ASGIApp, routers: Sequence[APIRouter], title: str) -> FastAPI:
    app = FastAPIOffline(
        title=title,
        version="0.1.0",
        description="CRM webhooks in; revenue intelligence out. Operations (/health, /metrics, "
        "/asyncapi) are served beside it.",
    )
    for router in routers:
        app.include_router(router)
    app.mount("/", fallback)  # last: only what no route above took
    return app
