"""Dashboard sign-in state, kept in the database so every server process shares it.

* :class:`Sessions`: the cookie holds a random 256-bit token; the database keeps only its
  SHA-256 with the org, the key's id and the times (a leaked database yields no live
  session). The CSRF token every form posts back is derived from the cookie's token with
  HMAC, so it is bound to the session and never stored either. A session ends at its
  absolute expiry (:data:`SESSION_TTL_S`), after :data:`SESSION_IDLE_S` without a request,
  on sign-out, or when its key is revoked; the store checks all of these in its lookup.
  A key holds at most :data:`MAX_SESSIONS_PER_KEY` sessions (signing in once more ends
  its oldest), and each sign-in deletes a bounded batch of ended ones.
* :class:`SignInThrottle`: failed dashboard sign-ins per client address and per key id,
  counted in the database, so N server processes do not give a guesser N budgets.

Times are wall-clock epoch seconds (``time.time``): they are compared across processes
and machines, so neither ``time.monotonic`` nor the App's workflow clock would do.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from pulseloop.errors import RateLimited
from pulseloop.store.base import KeyRecord, SessionRecord, SessionStore

SESSION_TTL_S = 8 * 3600.0
"""A session ends this long after sign-in however active it is (a working day)."""
SESSION_IDLE_S = 30 * 60.0
"""A session ends after this long without a request (an open dashboard tab refreshes its
live parts, so only a tab left closed or asleep runs out)."""
TOUCH_AFTER_S = 60.0
"""``last_seen_at`` is written at most once a minute per session, so the idle timeout is
exact to within a minute and a busy dashboard costs one write a minute, not one a request."""
MAX_SESSIONS_PER_KEY = 20
"""Sessions one API key may hold at once; a new sign-in beyond it ends the key's oldest."""
PURGE_BATCH = 100
"""Ended sessions deleted per sign-in, at most (more than one sign-in adds, so the table
never grows beyond the live sessions plus what the last few sign-ins left)."""
SIGN_IN_FAILURES = 10
"""Failed sign-ins allowed per client address, and per key id, in one window."""
SIGN_IN_WINDOW_S = 15 * 60.0
_MAX_TOKEN_CHARS = 200
_CSRF_CONTEXT = b"pulseloop dashboard csrf v1"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in dashboard user: the org and key it acts with, until ``expires_at``."""

    org: str
    key_id: str
    expires_at: float
    csrf: str
    """The token every dashboard form posts back (derived from the cookie's token)."""


def token_digest(token: str) -> str:
    """What the database keeps of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(token: str) -> str:
    """The CSRF token of the session ``token`` opens: HMAC-SHA256 keyed by the token."""
    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(session: Session, sent: str | None) -> bool:
    """True when ``sent`` is the session's CSRF token (constant-time)."""
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())


class Sessions:
    """Dashboard sessions in ``store`` (see the module docstring for the rules)."""

    def __init__(
        self,
        store: SessionStore,
        *,
        ttl_s: float = SESSION_TTL_S,
        idle_s: float = SESSION_IDLE_S,
        max_per_key: int = MAX_SESSIONS_PER_KEY,
        clock: Clock = time.time,
    ) -> None:
        if ttl_s <= 0 or idle_s <= 0 or max_per_key < 1:
            raise ValueError(
                f"sessions need ttl_s > 0, idle_s > 0 and max_per_key >= 1; got ttl_s={ttl_s}, "
                f"idle_s={idle_s}, max_per_key={max_per_key}"
            )
        self.store = store
        self.ttl_s = ttl_s
        self.idle_s = idle_s
        self.max_per_key = max_per_key
        self._clock = clock

    async def create(self, key: KeyRecord, *, replaces: str | None = None) -> tuple[str, Session]:
        """A new session for ``key``: ``(cookie token, session)``. ``replaces``: the
        browser's previous token, which ends here (a fresh token on every sign-in)."""
        now = self._clock()
        token = secrets.token_urlsafe(32)
        record = SessionRecord(
            token_digest(token), key.org, key.id, now, now, now + self.ttl_s, self.idle_s
        )
        previous = token_digest(replaces) if replaces and _plausible(replaces) else None
        await self.store.create_session(
            record, replaces=previous, max_per_key=self.max_per_key, purge=PURGE_BATCH
        )
        return token, Session(key.org, key.id, record.expires_at, csrf_for(token))

    async def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (None when unknown, ended or its key revoked)."""
        if not token or not _plausible(token):
            return None
        record = await self.store.find_session(token_digest(token), self._clock(), TOUCH_AFTER_S)
        if record is None:
            return None
        return Session(record.org, record.key_id, record.expires_at, csrf_for(token))

    async def drop(self, token: str | None) -> None:
        """End the session of ``token`` (sign-out) in every process."""
        if token and _plausible(token):
            await self.store.drop_session(token_digest(token))


def _plausible(token: str) -> bool:
    """Worth a lookup: a token we issued is 43 characters; a huge one is refused unread."""
    return 0 < len(token) <= _MAX_TOKEN_CHARS


class SignInThrottle:
    """Counts failed dashboard sign-ins per client address and per key id, in the database.

    Once either has :data:`SIGN_IN_FAILURES` failures inside ``window_s``, sign-ins from it
    (or for it) are refused with 429 until the oldest of those leaves the window. Per
    address stops one client guessing; per key id stops many clients guessing one key's
    secret. An attempt counts as a failure from before the key is checked until it proves
    right (:meth:`begin`, then :meth:`succeeded`), so guesses sent at once to several
    processes are counted before any is answered.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        failures: int = SIGN_IN_FAILURES,
        window_s: float = SIGN_IN_WINDOW_S,
        clock: Clock = time.time,
    ) -> None:
        if failures < 1 or window_s <= 0:
            raise ValueError(
                f"the sign-in throttle needs failures >= 1 and window_s > 0; got "
                f"failures={failures}, window_s={window_s}"
            )
        self.store = store
        self.failures = failures
        self.window_s = window_s
        self.clock = clock

    async def begin(self, *names: str) -> tuple[str, float]:
        """Start an attempt against ``names``: ``(attempt id, seconds to wait)``. A wait
        over 0 means refused (nothing recorded); else the attempt stands as a failure
        until :meth:`succeeded`."""
        attempt = secrets.token_hex(8)
        wait_s = await self.store.begin_sign_in(
            names, attempt, self.clock(), self.window_s, self.failures
        )
        return attempt, wait_s

    async def succeeded(self, attempt: str) -> None:
        """The attempt's key was right: it is no failure."""
        await self.store.forget_sign_in(attempt)

    def refusal(self, wait_s: float) -> RateLimited:
        """The 429 for a throttled sign-in."""
        retry = max(1, math.ceil(wait_s))
        return RateLimited(
            f"too many failed sign-ins; wait {retry} s and try again with a valid key",
            retry_after_s=retry,
        )
