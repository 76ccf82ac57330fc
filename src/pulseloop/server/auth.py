"""Who is calling: the organization a request acts for.

Every ``/v1`` route depends on :func:`caller`, which returns the :class:`OrgClient` of the
caller's organization (``App.client``); routes never see an organization name they could
mix up. Credentials are tried in order by :data:`CREDENTIAL_SOURCES`: the
``Authorization: Bearer <key>`` header, then the dashboard's session cookie
(:func:`session_cookie`, honoured under ``/dashboard`` only; see docs/dashboard.md).

Dashboard sessions live in the database (:class:`~pulseloop.server.sessions.Sessions`),
shared by every server process: the cookie holds a random token, the database only its
SHA-256. Every lookup re-checks the key in SQL, so revoking it ends the session
everywhere; a restart or a second process keeps people signed in.

Failures are one ``unauthorized`` (401) that never says whether a key exists, is revoked,
or belongs to someone: "missing" and "not valid" are the only two messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from pulseloop.app import App
from pulseloop.audited import Actor, AuditedClient, record_key_event
from pulseloop.client import OrgClient
from pulseloop.errors import Unauthorized
from pulseloop.keys import hash_api_key
from pulseloop.server.sessions import Session, Sessions
from pulseloop.store.base import KeyRecord

Credential = tuple[str, str]
"""(organization, API key id) of a valid credential."""
CredentialSource = Callable[[Request, App], Awaitable[Credential | None]]


async def bearer_key(request: Request, app: App) -> Credential | None:
    """The org and key id of a valid ``Authorization: Bearer`` key; None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > 200:
        raise _invalid()
    record = await valid_key(app, key)
    if record is None:
        raise _invalid()
    return record.org, record.id


async def valid_key(app: App, key: str) -> KeyRecord | None:
    """The record of ``key`` if it exists and is not revoked (None otherwise)."""
    if not key or len(key) > 200:
        return None
    record = await app.store.key_by_hash(hash_api_key(key))
    if record is None or record.revoked_at is not None:
        return None
    return record


SESSION_COOKIE = "pulseloop_session"
SESSION_PATH = "/dashboard"


async def current_session(request: Request, app: App) -> Session | None:
    """The session of the request's cookie, if live and its key is still valid.

    The store's lookup refuses an ended session and a revoked (or deleted) key, so
    revoking a key ends its sessions in every server process on their next request.
    """
    sessions: Sessions | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        return None
    return await sessions.get(request.cookies.get(SESSION_COOKIE))


async def session_cookie(request: Request, app: App) -> Credential | None:
    """The org and key id of a valid dashboard session cookie; only under ``/dashboard``.

    The cookie is scoped to ``Path=/dashboard`` so browsers never send it elsewhere; this
    check makes sure a cookie can never authorise a ``/v1`` call (whose POSTs have no
    CSRF token) even if one is sent by hand.
    """
    path = request.url.path
    if path != SESSION_PATH and not path.startswith(SESSION_PATH + "/"):
        return None
    session = await current_session(request, app)
    return None if session is None else (session.org, session.key_id)


CREDENTIAL_SOURCES: list[CredentialSource] = [bearer_key, session_cookie]


async def caller(request: Request) -> OrgClient:
    """The client of the caller's organization, recording what it reads and does in the
    audit trail (Unauthorized without a valid key)."""
    app: App = request.app.state.pulseloop
    for source in CREDENTIAL_SOURCES:
        found = await source(request, app)
        if found is not None:
            return audited_client(request, *found)
    raise Unauthorized(
        "this endpoint needs an API key: send `Authorization: Bearer <key>` (create one with "
        "`pulseloop keys create --org NAME`)"
    )


def actor_of(request: Request, key_id: str) -> Actor:
    """Who is calling (the key's id) and from where (the peer's address)."""
    return Actor(key_id, request.client.host if request.client else "unknown")


def audited_client(request: Request, org: str, key_id: str) -> AuditedClient:
    """The client of ``org`` for this request, auditing as ``key_id`` from its address."""
    app: App = request.app.state.pulseloop
    return AuditedClient(app.runtime, org, actor_of(request, key_id))


async def record_sign_in(request: Request, key: KeyRecord) -> None:
    """The audit row of a dashboard sign-in with ``key``."""
    app: App = request.app.state.pulseloop
    actor = actor_of(request, key.id)
    await record_key_event(app.store.audit, key.org, app.clock.now(), "sign_in", key.id, actor)


def _invalid() -> Unauthorized:
    return Unauthorized(
        "the API key is not valid (unknown or revoked); create a new one with "
        "`pulseloop keys create --org NAME`"
    )
