"""Dashboard sessions and the sign-in throttle in the database, on both backends.

The claims about several processes (a second server, a restart) are in
tests/cli/test_shared_sessions.py with real uvicorn processes; these pin the rules.
"""

from __future__ import annotations

import asyncio

from pulseloop.keys import hash_api_key
from pulseloop.server.sessions import Sessions, SignInThrottle, csrf_for, token_digest
from pulseloop.store.base import KeyRecord
from tests.api.conftest import Api, make_key
from tests.dashboard import raw_db
from tests.dashboard.conftest import csrf_of, sign_in


async def key_record(api: Api, key: str) -> KeyRecord:
    found = await api.app.store.key_by_hash(hash_api_key(key))
    assert found is not None
    return found


def session_rows(db_url: str, where: str = "") -> int:
    return int(raw_db.rows(db_url, f"SELECT count(*) FROM sessions {where}")[0][0])


async def test_a_session_ends_when_idle_or_expired_and_is_then_purged(
    api: Api, db_url: str
) -> None:
    now = [1000.0]
    sessions = Sessions(api.app.store.sessions, ttl_s=600, idle_s=120, clock=lambda: now[0])
    key = await key_record(api, api.key_a)
    idle, _ = await sessions.create(key)
    busy, _ = await sessions.create(key)
    for _ in range(9):  # a request every 61 s keeps it alive past the idle timeout...
        now[0] += 61
        assert await sessions.get(busy) is not None, now[0]
    assert await sessions.get(idle) is None  # ...while the other ended at 1,120
    now[0] = 1599.0
    assert await sessions.get(busy) is not None
    now[0] = 1600.0  # ...until its absolute expiry
    assert await sessions.get(busy) is None
    assert session_rows(db_url) == 2  # ended, not yet deleted
    await sessions.create(key)  # a sign-in purges ended sessions
    assert session_rows(db_url) == 1


async def test_a_lookup_writes_last_seen_at_most_once_a_minute(api: Api, db_url: str) -> None:
    now = [1000.0]
    sessions = Sessions(api.app.store.sessions, clock=lambda: now[0])
    token, _ = await sessions.create(await key_record(api, api.key_a))
    seen = f"SELECT last_seen_at FROM sessions WHERE token_hash = '{token_digest(token)}'"
    now[0] = 1030.0
    assert await sessions.get(token) is not None
    assert raw_db.rows(db_url, seen) == [(1000.0,)]
    now[0] = 1061.0
    assert await sessions.get(token) is not None
    assert raw_db.rows(db_url, seen) == [(1061.0,)]


async def test_a_key_holds_at_most_its_cap_of_sessions(api: Api) -> None:
    now = [1000.0]
    sessions = Sessions(api.app.store.sessions, max_per_key=3, clock=lambda: now[0])
    key_a, key_b = await key_record(api, api.key_a), await key_record(api, api.key_b)
    other, _ = await sessions.create(key_b)
    tokens = []
    for _ in range(4):
        now[0] += 1
        tokens.append((await sessions.create(key_a))[0])
    assert await sessions.get(tokens[0]) is None  # the oldest made room
    for token in [*tokens[1:], other]:
        assert await sessions.get(token) is not None


async def test_revoking_a_key_deletes_its_sessions(api: Api, db_url: str) -> None:
    key = await make_key(api.app, "clinic-a")
    record = await key_record(api, key)
    sessions = Sessions(api.app.store.sessions)
    token, _ = await sessions.create(record)
    kept, _ = await sessions.create(await key_record(api, api.key_a))
    assert session_rows(db_url, f"WHERE key_id = '{record.id}'") == 1
    await api.app.store.revoke_key(record.id, 1.0)
    assert session_rows(db_url, f"WHERE key_id = '{record.id}'") == 0
    assert await sessions.get(token) is None
    assert await sessions.get(kept) is not None


async def test_the_database_holds_no_session_token_or_csrf_token(api: Api, db_url: str) -> None:
    assert (await sign_in(api.client, api.key_a)).status_code == 303
    token = api.client.cookies["pulseloop_session"]
    csrf = csrf_of((await api.client.get("/dashboard/runs")).text)
    assert csrf == csrf_for(token)
    stored = raw_db.everything(db_url)
    assert token_digest(token).encode() in stored  # the right data: its hash is there
    assert token.encode() not in stored and csrf.encode() not in stored
    assert session_rows(db_url) == 1
    out = await api.client.post("/dashboard/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    assert session_rows(db_url) == 0  # sign-out deletes the row


async def test_concurrent_guesses_are_each_counted(api: Api) -> None:
    throttle = SignInThrottle(api.app.store.sessions, failures=5, window_s=600.0)
    results = await asyncio.gather(*(throttle.begin("key:guessed") for _ in range(20)))
    assert sum(1 for _, wait_s in results if wait_s == 0.0) == 5
