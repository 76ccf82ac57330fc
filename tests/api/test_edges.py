"""Edges found by a black-box probe, each pinned: 422 not 500 for hostile JSON, cursors
and query strings; no-store on patient data and on 429s; no redirect built from Host;
failed dashboard sign-ins throttled (docs/security.md)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pulseloop.server.sessions import SignInThrottle
from tests.api.conftest import Api
from tests.dashboard.conftest import csrf_of

HAZARDS: list[bytes] = [
    b'{"body": "\\ud800"}',  # a lone surrogate: UTF-8 cannot encode it
    b'{"body": {"\\udfff": 1}}',  # ... as a key
    b'{"body": ' + b"9" * 5000 + b"}",  # over int()'s 4,300-digit limit
    b'{"body": 1' + b"0" * 400 + b".5}",  # a float literal of 400 characters
    b'{"body": 1e999}',  # infinity
    b'{"body": NaN}',
    b'{"body": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # nesting past the recursion limit
    b'{"body": ' + b"[" * 200 + b"]" * 200 + b"}",  # nesting the parser takes, we do not
]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


CURSORS: list[str] = [
    _cursor([1.0, "\ud800"]),  # json.dumps escapes it: the API decodes a lone surrogate
    _cursor([10**400, "r"]),  # float() overflows
    base64.urlsafe_b64encode(b'[1e999, "r"]').decode(),
    base64.urlsafe_b64encode(b'[NaN, "r"]').decode(),
    _cursor([1.0, {"not": "a string"}]),
    _cursor([1.0, "x" * 600]),
    _cursor([-5.0, "r"]),
    base64.urlsafe_b64encode(b"[" * 600 + b"]" * 600).decode()[:1000],
    "////",
]


@pytest.mark.parametrize("content", HAZARDS, ids=range(len(HAZARDS)))
async def test_hostile_json_bodies_are_422_not_500(api: Api, content: bytes) -> None:
    response = await api.client.post(
        "/v1/loops/waits/runs", content=content,
        headers={**api.a, "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request" and response.json()["message"]
    assert await api.app.list_runs() == []


@pytest.mark.parametrize("cursor", CURSORS, ids=range(len(CURSORS)))
async def test_cursors_the_api_did_not_issue_are_422(api: Api, cursor: str) -> None:
    response = await api.client.get("/v1/runs", params={"cursor": cursor}, headers=api.a)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "cursor"


async def test_every_v1_answer_and_every_429_is_no_store(api: Api) -> None:
    run = await api.client.post("/v1/loops/waits/runs", json={"id": "r1"}, headers=api.a)
    responses = [
        run,
        await api.client.get("/v1/runs", headers=api.a),
        await api.client.get("/v1/runs/r1", headers=api.a),
        await api.client.get("/v1/runs/nope", headers=api.a),  # 404
        await api.client.get("/v1/runs"),  # 401
        await api.client.post("/v1/loops/waits/runs", content=b"{", headers=api.a),  # 422
        await api.client.post(  # 413
            "/v1/loops/waits/runs", content=b"x" * (3 * 1024 * 1024), headers=api.a
        ),
        await api.client.get("/v1/scans/nope", headers=api.a),
        await api.client.get("/healthz"),
        await api.client.get("/dashboard/sign-in"),
    ]
    assert run.status_code == 202
    for response in responses:
        assert response.headers.get("cache-control") == "no-store", (response.url, response)


@pytest.mark.parametrize("api_options", [{"scan_burst": 1, "scan_rate_per_s": 0.001}])
async def test_a_scan_link_429_is_no_store_with_the_security_headers(api: Api) -> None:
    await api.client.get("/s/abcdefghijkl/status")
    limited = await api.client.get("/s/abcdefghijkl/status")
    assert limited.status_code == 429
    assert limited.headers["cache-control"] == "no-store"
    assert limited.headers["x-content-type-options"] == "nosniff"
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "path",
    ["/v1/runs/", "/v1/runs/r1/", "/dashboard/", "/dashboard", "/dashboard/runs/",
     "/dashboard/runs", "/s/", "/static/", "/docs/", "/healthz/", "//evil.example/v1/runs"],
)  # fmt: skip
async def test_no_redirect_names_the_host_it_was_sent(api: Api, path: str) -> None:
    response = await api.client.get(
        path, headers={**api.a, "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    )
    assert response.status_code < 500
    location = response.headers.get("location", "")
    assert "evil" not in location, (path, location)
    assert not location or (location.startswith("/") and not location.startswith("//"))


async def test_failed_sign_ins_are_throttled_per_address_and_per_key_id(api: Api) -> None:
    use_throttle(api, SignInThrottle(api.app.store.sessions, failures=3, window_s=600.0,
                                     clock=lambda: 0.0))  # fmt: skip

    async def attempt(key: str) -> Any:
        form = await api.client.get("/dashboard/sign-in")
        return await api.client.post(
            "/dashboard/sign-in", data={"key": key, "csrf": csrf_of(form.text)}
        )

    key_id = api.key_a.split("_")[1]
    guesses = [await attempt(f"pl_{key_id}_guess{n}") for n in range(3)]
    assert [r.status_code for r in guesses] == [401, 401, 401]
    refused = await attempt(api.key_a)  # even the right key: this address is throttled
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 600
    assert refused.headers["cache-control"] == "no-store"
    assert "Too many failed sign-ins" in refused.text and "600 seconds" in refused.text


async def test_guessing_one_key_from_many_addresses_is_throttled(api: Api) -> None:
    throttle = use_throttle(
        api, SignInThrottle(api.app.store.sessions, failures=2, window_s=60.0, clock=lambda: 0.0)
    )
    key_id = api.key_b.split("_")[1]
    for address in ("10.0.0.1", "10.0.0.2"):  # two failed attempts from elsewhere
        assert (await throttle.begin(f"addr:{address}", f"key:{key_id}"))[1] == 0.0
    form = await api.client.get("/dashboard/sign-in")
    refused = await api.client.post(
        "/dashboard/sign-in", data={"key": api.key_b, "csrf": csrf_of(form.text)}
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 60
    form = await api.client.get("/dashboard/sign-in")
    other = await api.client.post(  # another key from this address is still served
        "/dashboard/sign-in", data={"key": api.key_a, "csrf": csrf_of(form.text)}
    )
    assert other.status_code == 303


def use_throttle(api: Api, throttle: SignInThrottle) -> SignInThrottle:
    """Make the served app count sign-ins with ``throttle`` (fresh for each test)."""
    transport: Any = api.client._transport
    transport.app.state.sign_in_throttle = throttle
    return throttle


async def test_the_throttle_forgets_failures_outside_its_window(api: Api) -> None:
    now = [0.0]
    throttle = SignInThrottle(
        api.app.store.sessions, failures=2, window_s=10.0, clock=lambda: now[0]
    )
    assert (await throttle.begin("addr:a"))[1] == 0.0  # failed (never succeeded)
    now[0] = 5.0
    assert (await throttle.begin("addr:a"))[1] == 0.0
    assert (await throttle.begin("addr:a"))[1] == pytest.approx(5.0)  # the first leaves at 10
    ok, wait_s = await throttle.begin("addr:b")
    assert wait_s == 0.0
    await throttle.succeeded(ok)  # a right key is no failure
    now[0] = 6.0
    assert (await throttle.begin("addr:b"))[1] == 0.0
    assert (await throttle.begin("addr:b"))[1] == 0.0  # one failure so far, not two
    now[0] = 10.5
    assert (await throttle.begin("addr:a"))[1] == 0.0
