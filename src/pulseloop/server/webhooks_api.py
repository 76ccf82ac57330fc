"""The ``/v1/webhooks`` routes: the caller's organization's endpoints and delivery log.

    POST   /v1/webhooks                  add {url, events?}; the secret, this once  -> 201
    GET    /v1/webhooks                  the endpoints (no secrets)                 -> 200
    DELETE /v1/webhooks/{id}             remove; its pending deliveries fail        -> 204
    GET    /v1/webhook-deliveries       the delivery log with attempts, newest first -> 200

Isolation as in ``api.py``: every call acts through ``caller``, so another
organization's endpoint is "not found" (404). Adding and removing endpoints is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from pulseloop.client import OrgClient
from pulseloop.server.api import ERRORS
from pulseloop.server.auth import caller
from pulseloop.webhooks import EVENTS, Delivery, Endpoint

Caller = Annotated[OrgClient, Depends(caller)]
EndpointId = Annotated[str, Path(min_length=1, max_length=100, description="The endpoint's id.")]


class WebhookIn(BaseModel):
    """An endpoint to add: where to POST, and which events (all when left out)."""

    model_config = ConfigDict(extra="forbid")
    # checked by app.webhooks.add (one rule, one message: 422 invalid_webhook)
    url: str = Field(max_length=2000, description="http:// or https://")
    events: list[str] | None = Field(default=None, max_length=20, description=", ".join(EVENTS))


class WebhookOut(BaseModel):
    """An endpoint; ``secret`` only in the answer that created it."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    secret: str | None = None

    @classmethod
    def of(cls, e: Endpoint) -> WebhookOut:
        """From the public record."""
        return cls(
            id=e.id, url=e.url, events=list(e.events), created_at=e.created_at, secret=e.secret
        )


class WebhookPage(BaseModel):
    """The organization's endpoints, oldest first."""

    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    """One POST of a delivery."""

    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    """One notification to one endpoint, with its attempts."""

    id: str
    endpoint_id: str
    event: str
    run_id: str | None
    scan_id: str | None
    loop: str | None
    status: str
    occurred_at: datetime
    state: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    finished_at: datetime | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        """From the public record."""
        return cls(
            id=d.id, endpoint_id=d.endpoint_id, event=d.event, run_id=d.run_id,
            scan_id=d.scan_id, loop=d.loop, status=d.status, occurred_at=d.occurred_at,
            state=d.state, attempt_count=d.attempt_count, next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code, last_error=d.last_error,
            finished_at=d.finished_at,
            attempts=[
                AttemptOut(
                    attempt=a.attempt, started_at=a.started_at, duration_ms=a.duration_ms,
                    status_code=a.status_code, error=a.error,
                )
                for a in d.attempts
            ],
        )  # fmt: skip


class DeliveryPage(BaseModel):
    """The delivery log, newest first."""

    deliveries: list[DeliveryOut]


def build_router() -> APIRouter:
    """The ``/v1/webhooks`` routes."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.post("/webhooks", status_code=201, response_model=WebhookOut)
    async def add(pulse: Caller, request: Annotated[WebhookIn, Body()]) -> WebhookOut:
        """Add an endpoint; the answer holds its signing secret, shown this once."""
        return WebhookOut.of(await pulse.webhooks.add(request.url, events=request.events))

    @router.get("/webhooks", response_model=WebhookPage)
    async def list_webhooks(pulse: Caller) -> WebhookPage:
        """The organization's endpoints, without their secrets."""
        return WebhookPage(webhooks=[WebhookOut.of(e) for e in await pulse.webhooks.list()])

    @router.get("/webhook-deliveries", response_model=DeliveryPage)
    async def deliveries(
        pulse: Caller,
        endpoint_id: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> DeliveryPage:
        """The delivery log with each delivery's attempts, newest first."""
        found = await pulse.webhooks.deliveries(limit=limit, endpoint_id=endpoint_id, attempts=True)
        return DeliveryPage(deliveries=[DeliveryOut.of(d) for d in found])

    @router.delete("/webhooks/{endpoint_id}", status_code=204, response_class=Response)
    async def remove(pulse: Caller, endpoint_id: EndpointId) -> Response:
        """Remove the endpoint; its pending deliveries are marked failed."""
        await pulse.webhooks.remove(endpoint_id)
        return Response(status_code=204)

    return router
