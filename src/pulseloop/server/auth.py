"""Who is calling: the organization a request acts for.

Every ``/v1`` route depends on :func:`caller`, which returns the :class:`OrgClient` of the
caller's organization (``App.client``); routes never see an organization name they could
mix up. Credentials are tried in order by :data:`CREDENTIAL_SOURCES`: the
``Authorization: Bearer <key>`` header, then the dashboard's session cookie
(:func:`session_cookie`, honoured under ``/dashboard`` only; see docs/dashboard.md).

Dashboard sessions live in memory (:class:`SessionStore`, one per ``create_app``): the
cookie holds a random token, the server keeps only its SHA-256 with the org, the key's
id and hash and an expiry. Every request re-checks the key, so revoking it ends the
session; a restart signs everyone out.

Failures are one ``unauthorized`` (401) that never says whether a key exists, is revoked,
or belongs to someone: "missing" and "not valid" are the only two messages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from pulseloop.app import App
from pulseloop.client import OrgClient
from pulseloop.errors import Unauthorized
from pulseloop.keys import hash_api_key
from pulseloop.store.base import KeyRecord

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
    record = await valid_key(app, key)
    if record is None:
        raise _invalid()
    return record.org


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
SESSION_TTL_S = 8 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in dashboard user: the org and key it acts with, until ``expires_at``."""

    org: str
    key_id: str
    key_hash: str
    expires_at: float
    csrf: str
    """The token every dashboard form posts back (random, bound to this session)."""


class SessionStore:
    """Dashboard sessions in memory, keyed by the SHA-256 of the cookie's token.

    Lost on restart (everyone signs in again) and not shared between processes; the
    token itself is never stored, so a memory dump cannot be replayed as a cookie.
    """

    def __init__(self, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.time):
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, key: KeyRecord, key_hash: str) -> tuple[str, Session]:
        """A new session for ``key``: ``(cookie token, session)``."""
        now = self._clock()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions = {h: s for h, s in self._sessions.items() if s.expires_at > now}
            while len(self._sessions) >= MAX_SESSIONS:  # still full: drop the oldest
                del self._sessions[next(iter(self._sessions))]
        token = secrets.token_urlsafe(32)
        session = Session(key.org, key.id, key_hash, now + self.ttl_s, secrets.token_urlsafe(32))
        self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str) -> Session | None:
        """The live session of ``token`` (None when unknown or expired)."""
        if not token or len(token) > 200:
            return None
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[digest]
            return None
        return session

    def drop(self, token: str) -> None:
        """End the session of ``token`` (sign-out)."""
        self._sessions.pop(_digest(token), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_ok(session: Session, sent: str | None) -> bool:
    """True when ``sent`` is the session's CSRF token (constant-time)."""
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())


async def current_session(request: Request, app: App) -> Session | None:
    """The session of the request's cookie, if live and its key is still valid.

    A revoked (or deleted) key ends the session here, on the next request.
    """
    sessions: SessionStore | None = getattr(request.app.state, "sessions", None)
    token = request.cookies.get(SESSION_COOKIE)
    if sessions is None or token is None:
        return None
    session = sessions.get(token)
    if session is None:
        return None
    record = await app.store.key_by_hash(session.key_hash)
    if record is None or record.revoked_at is not None or record.org != session.org:
        sessions.drop(token)
        return None
    return session


async def session_cookie(request: Request, app: App) -> str | None:
    """The org of a valid dashboard session cookie; only under ``/dashboard``.

    The cookie is scoped to ``Path=/dashboard`` so browsers never send it elsewhere; this
    check makes sure a cookie can never authorise a ``/v1`` call (whose POSTs have no
    CSRF token) even if one is sent by hand.
    """
    path = request.url.path
    if path != SESSION_PATH and not path.startswith(SESSION_PATH + "/"):
        return None
    session = await current_session(request, app)
    return None if session is None else session.org


CREDENTIAL_SOURCES: list[CredentialSource] = [bearer_key, session_cookie]


async def caller(request: Request) -> OrgClient:
    """The client of the caller's organization (Unauthorized without a valid key)."""
    app: App = request.app.state.pulseloop
    for source in CREDENTIAL_SOURCES:
        org = await source(request, app)
        if org is not None:
            return app.client(org)
    raise Unauthorized(
        "this endpoint needs an API key: send `Authorization: Bearer <key>` (create one with "
        "`pulseloop keys create --org NAME`)"
    )


def _invalid() -> Unauthorized:
    return Unauthorized(
        "the API key is not valid (unknown or revoked); create a new one with "
        "`pulseloop keys create --org NAME`"
    )
