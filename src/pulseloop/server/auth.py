"""Who is calling: the organization a request acts for.

Every ``/v1`` route depends on :func:`caller`, which returns an :class:`App` view of the
caller's organization (``App.for_org``); routes never see an organization name they could
mix up. Credentials are tried in order by :data:`CREDENTIAL_SOURCES`; today that is the
``Authorization: Bearer <key>`` header. The dashboard will add a session cookie as a second
source (a function of the request returning an org or None) without touching any route.

Failures are one ``unauthorized`` (401) that never says whether a key exists, is revoked,
or belongs to someone: "missing" and "not valid" are the only two messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from pulseloop.app import App
from pulseloop.errors import Unauthorized
from pulseloop.keys import hash_api_key

CredentialSource = Callable[[Request, App], Awaitable[str | None]]


async def bearer_key(request: Request, app: App) -> str | None:
    """The org of a valid ``Authorization: Bearer`` key; None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > 200:
        raise _invalid()
    record = await app.store.key_by_hash(hash_api_key(key))
    if record is None or record.revoked_at is not None:
        raise _invalid()
    return record.org


CREDENTIAL_SOURCES: list[CredentialSource] = [bearer_key]


async def caller(request: Request) -> App:
    """The App view of the caller's organization (Unauthorized without a valid key)."""
    app: App = request.app.state.pulseloop
    for source in CREDENTIAL_SOURCES:
        org = await source(request, app)
        if org is not None:
            return app if org == app.org else app.for_org(org)
    raise Unauthorized(
        "this endpoint needs an API key: send `Authorization: Bearer <key>` (create one with "
        "`pulseloop keys create --org NAME`)"
    )


def _invalid() -> Unauthorized:
    return Unauthorized(
        "the API key is not valid (unknown or revoked); create a new one with "
        "`pulseloop keys create --org NAME`"
    )
