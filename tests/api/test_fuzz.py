"""Hypothesis against everything that takes input, beyond the OpenAPI schema: ``/v1``
bodies, cursors and query strings, the scan link's endpoints and the dashboard's sign-in
form. The property: never a 5xx, and the server keeps serving afterwards.

Like tests/api/test_schema.py, the App runs in a portal thread and the ASGI app is called
synchronously (Hypothesis drives plain functions); SQLite only, no example database.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pulseloop import App
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.server.app import create_app
from tests.api.conftest import SCAN_STEP, ApiScan, Fails, Waits, make_key
from tests.helpers import until_status

FUZZ = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
SURROGATES = st.integers(0xD800, 0xDFFF).map(lambda n: f'"\\u{n:04x}"'.encode())
NESTED = st.integers(60, 3000).map(lambda n: b"[" * n + b"]" * n)
LONG_NUMBERS = st.integers(40, 6000).map(lambda n: b"7" * n)
HOSTILE = SURROGATES | NESTED | LONG_NUMBERS | st.sampled_from([b"NaN", b"-Infinity", b"1e999"])
RAW_BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | HOSTILE.map(lambda h: b'{"body": ' + h + b', "status": ' + h + b"}")
    | HOSTILE
)
QUERY_TEXT = st.text(max_size=40) | st.sampled_from(["²", "٣", "1e999", "-1", "\x00", "9" * 500])


class SyncClient:
    """httpx's async client on the ASGI app, called from sync code through the portal
    whose event loop also runs the App (one loop for both, as under uvicorn)."""

    def __init__(self, portal: BlockingPortal, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(functools.partial(self.client.get, url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(functools.partial(self.client.post, url, **kwargs))


@dataclass
class Served:
    """A synchronous client of an app over a fresh SQLite database with a live scan link."""

    client: SyncClient
    key: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def still_serving(self) -> None:
        assert self.client.get("/healthz").status_code == 200
        assert self.client.get("/v1/runs", headers=self.auth).status_code == 200


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with start_blocking_portal() as portal:
        app = App([ApiScan, Fails, Waits], f"sqlite:///{db}", org="clinic-a",
                  poll_interval="50 milliseconds")  # fmt: skip
        portal.call(app.open)
        try:
            key = portal.call(make_key, app, "clinic-a")
            run = portal.call(functools.partial(app.trigger, "api-scan", {}, id="scan-run"))
            portal.call(until_status, app, run.id, "waiting")
            output = portal.call(app.get_run, run.id).step(SCAN_STEP).output
            token = output["url"].rsplit("/s/", 1)[1]
            asgi = create_app(app, scan_service=ScanService(app), scan_burst=10**9)
            transport = httpx.ASGITransport(app=asgi)
            client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")
            try:
                yield Served(SyncClient(portal, client), key, token)
            finally:
                portal.call(client.aclose)
        finally:
            portal.call(app.close)


def _ok(response: Any) -> None:
    assert response.status_code < 500, (response.request.url, response.text)


@FUZZ
@given(body=RAW_BODIES)
@example(body=b'{"body": "\\ud800"}')
@example(body=b'{"body": ' + b"1" * 5000 + b"}")
@example(body=b'{"body": ' + b"[" * 400 + b"]" * 400 + b"}")
def test_v1_bodies_never_5xx(served: Served, body: bytes) -> None:
    for path in ("/v1/loops/waits/runs", "/v1/runs/scan-run/restart", "/v1/runs/nope/cancel"):
        headers = {**served.auth, "Content-Type": "application/json"}
        _ok(served.client.post(path, content=body, headers=headers))
    served.still_serving()


@FUZZ
@given(value=JSON_VALUES, run_id=st.text(max_size=30))
def test_v1_trigger_with_any_json_never_5xx(served: Served, value: Any, run_id: str) -> None:
    _ok(served.client.post("/v1/loops/waits/runs", json={"body": value}, headers=served.auth))
    _ok(served.client.post("/v1/loops/waits/runs", json={"id": run_id}, headers=served.auth))


@FUZZ
@given(
    cursor=st.one_of(
        QUERY_TEXT,
        JSON_VALUES.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
        HOSTILE.map(lambda h: base64.urlsafe_b64encode(b"[" + h + b', "r"]').decode()),
    ),
    params=st.dictionaries(
        st.sampled_from(["loop", "status", "created_after", "created_before", "limit"]),
        QUERY_TEXT,
    ),
)
@example(cursor=base64.urlsafe_b64encode(b'[1, "\\ud800"]').decode(), params={})
@example(cursor=base64.urlsafe_b64encode(b"[1" + b"0" * 400 + b', "r"]').decode(), params={})
def test_v1_cursors_and_query_strings_never_5xx(
    served: Served, cursor: str, params: dict[str, str]
) -> None:
    _ok(served.client.get("/v1/runs", params={**params, "cursor": cursor}, headers=served.auth))
    _ok(served.client.get("/v1/runs", params=params, headers=served.auth))
    served.still_serving()


@FUZZ
@given(body=RAW_BODIES, seconds=QUERY_TEXT, token=st.text(max_size=60))
@example(body=b'{"status": "\\ud800"}', seconds="²", token="")
@example(body=b'{"reason": ' + b"[" * 3000 + b"]" * 3000 + b"}", seconds="٣", token="")
@example(body=b'{"version": 1, "fps": ' + b"9" * 5000 + b"}", seconds="", token="")
def test_scan_link_endpoints_never_5xx(
    served: Served, body: bytes, seconds: str, token: str
) -> None:
    for link in (served.token, token or "Q" * 43):
        base = "/s/" + quote(link, safe="")
        _ok(served.client.get(base, params={"seconds": seconds}, headers={"Accept": "text/html"}))
        _ok(served.client.get(base + "/status"))
        for end in ("/progress", "/capturing", "/trace", "/abandon"):
            if end == "/abandon" and link == served.token:
                continue  # giving up ends the link for every later example
            _ok(served.client.post(base + end, content=body))
    served.still_serving()


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["key", "csrf", "x"]), st.text(max_size=80)),
       raw=st.binary(max_size=300))  # fmt: skip
def test_the_sign_in_form_never_5xx(served: Served, fields: dict[str, str], raw: bytes) -> None:
    form = served.client.get("/dashboard/sign-in")
    _ok(form)
    _ok(served.client.post("/dashboard/sign-in", data=fields))
    _ok(served.client.post("/dashboard/sign-in", content=raw, headers={
        "Content-Type": "application/x-www-form-urlencoded"}))  # fmt: skip
    served.still_serving()
