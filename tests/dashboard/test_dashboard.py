"""The dashboard over the ASGI app: sign-in, cookies, isolation, CSRF, operator actions."""

from __future__ import annotations

import re

import httpx
import pytest

from pulseloop.keys import hash_api_key, new_api_key
from pulseloop.server.dashboard import spectrum_plot, waveform_plot
from tests.api.conftest import SCAN_STEP, Api, make_key
from tests.connectors.scan_helpers import trace_upload
from tests.dashboard.conftest import ClientFactory, csrf_of, sign_in
from tests.helpers import until_status

POINTS = re.compile(r'<polyline class="line" points="([^"]+)"')


async def signed_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign ``client`` in with ``key``; the CSRF token of its session."""
    response = await sign_in(client, key)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/runs"
    page = await client.get("/dashboard/runs")
    assert page.status_code == 200
    return csrf_of(page.text)


async def waiting_run(api: Api) -> str:
    run = await api.app.trigger("waits", {})
    await until_status(api.app, run.id, "waiting")
    return run.id


async def test_signed_out_pages_lead_to_the_sign_in_page(api: Api) -> None:
    for path in ("/dashboard", "/dashboard/runs", "/dashboard/runs/x", "/dashboard/scans/x"):
        response = await api.client.get(path, follow_redirects=True)
        assert response.status_code == 200
        assert str(response.url).endswith("/dashboard/sign-in"), path
        assert "API key" in response.text
    post = await api.client.post("/dashboard/runs/x/cancel", data={"csrf": "x"})
    assert (post.status_code, post.headers["location"]) == (303, "/dashboard/sign-in")
    # an API key header does not stand in for a session (the forms need its CSRF token)
    page = await api.client.get("/dashboard/runs", headers=api.a)
    assert page.status_code == 303


async def test_bad_keys_do_not_sign_in(api: Api) -> None:
    for key in ("", "pl_nope_nope", api.revoked, "x" * 500):
        response = await sign_in(api.client, key)
        assert response.status_code == 401, key
        assert "not valid" in response.text
        assert "pulseloop_session" not in response.headers.get("set-cookie", "")
    assert (await api.client.get("/dashboard/runs")).status_code == 303


async def test_sign_in_form_needs_its_token(api: Api) -> None:
    await api.client.get("/dashboard/sign-in")  # sets the double-submit cookie
    for data in ({"key": api.key_a}, {"key": api.key_a, "csrf": "forged"}):
        response = await api.client.post("/dashboard/sign-in", data=data)
        assert response.status_code == 403
        assert "pulseloop_session" not in response.headers.get("set-cookie", "")


async def test_session_cookie_flags(api: Api, new_client: ClientFactory) -> None:
    response = await sign_in(api.client, api.key_a)
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("pulseloop_session=")
    )
    flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in flags and flags["samesite"].strip().lower() == "samesite=strict"
    assert flags["path"].strip() == "Path=/dashboard"
    assert "secure" not in flags  # plain http, from and to loopback
    token = cookie.split(";")[0].split("=", 1)[1]
    assert api.key_a not in cookie and len(token) >= 40
    async with new_client("https://127.0.0.1") as client:  # TLS: Secure
        other = await sign_in(client, api.key_a)
        assert other.status_code == 303
        assert "; secure" in other.headers["set-cookie"].lower()
    async with new_client("http://dash.example") as client:  # not loopback: Secure too
        form = await client.get("/dashboard/sign-in")
        assert "; secure" in form.headers["set-cookie"].lower()
    assert response.headers["cache-control"] == "no-store"


async def test_another_orgs_runs_and_scans_are_not_found(
    api: Api, new_client: ClientFactory
) -> None:
    run_id, scan_id = await api.parked_scan()
    async with new_client() as a, new_client() as b:
        await signed_in(a, api.key_a)
        csrf_b = await signed_in(b, api.key_b)
        listed = await a.get("/dashboard/runs")
        assert run_id in listed.text
        detail = await a.get(f"/dashboard/runs/{run_id}")
        assert detail.status_code == 200 and SCAN_STEP in detail.text
        assert (await a.get(f"/dashboard/scans/{scan_id}")).status_code == 200

        for query in ("", "?loop=api-scan", "?status=waiting"):
            page = await b.get("/dashboard/runs" + query)
            assert page.status_code == 200 and run_id not in page.text
            assert "No runs" in page.text
        run_page = await b.get(f"/dashboard/runs/{run_id}")
        scan_page = await b.get(f"/dashboard/scans/{scan_id}")
        ghost = await b.get("/dashboard/runs/ghost")
        assert run_page.status_code == scan_page.status_code == ghost.status_code == 404
        assert run_id not in run_page.text and scan_id not in scan_page.text
        assert run_page.text == ghost.text  # the same page as for an id that exists nowhere
        assert scan_page.text == (await b.get("/dashboard/scans/ghost")).text
        cancel = await b.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": csrf_b})
        assert cancel.status_code == 404
    assert (await api.app.get_run(run_id)).status == "waiting"


async def test_revoking_the_key_ends_the_session(api: Api) -> None:
    await api.app.store.ensure_org("clinic-a", 0.0)
    key_id, key = new_api_key()
    await api.app.store.create_key("clinic-a", key_id, hash_api_key(key), 0.0)
    csrf = await signed_in(api.client, key)
    run_id = await waiting_run(api)
    await api.app.store.revoke_key(key_id, 1.0)
    page = await api.client.get("/dashboard/runs")
    assert (page.status_code, page.headers["location"]) == (303, "/dashboard/sign-in")
    post = await api.client.post(f"/dashboard/runs/{run_id}/cancel", data={"csrf": csrf})
    assert post.status_code == 303 and post.headers["location"] == "/dashboard/sign-in"
    assert (await api.app.get_run(run_id)).status == "waiting"


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(api: Api) -> None:
    csrf = await signed_in(api.client, api.key_a)
    token = api.client.cookies["pulseloop_session"]
    refused = await api.client.post("/dashboard/sign-out", data={"csrf": "wrong"})
    assert refused.status_code == 403
    out = await api.client.post("/dashboard/sign-out", data={"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/dashboard/sign-in")
    replay = await api.client.get(
        "/dashboard/runs", headers={"Cookie": f"pulseloop_session={token}"}
    )
    assert replay.status_code == 303


async def test_signing_in_again_replaces_the_session(api: Api) -> None:
    await signed_in(api.client, api.key_a)
    first = api.client.cookies["pulseloop_session"]
    await signed_in(api.client, api.key_a)
    assert api.client.cookies["pulseloop_session"] != first
    replay = await api.client.get(
        "/dashboard/runs", headers={"Cookie": f"pulseloop_session={first}"}
    )
    assert replay.status_code == 303


async def test_the_cookie_is_no_api_credential(api: Api) -> None:
    await signed_in(api.client, api.key_a)
    token = api.client.cookies["pulseloop_session"]
    response = await api.client.get("/v1/runs", headers={"Cookie": f"pulseloop_session={token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("csrf", [None, "", "wrong", "other-session"])
async def test_actions_without_the_right_csrf_token_change_nothing(
    api: Api, new_client: ClientFactory, csrf: str | None
) -> None:
    run_id = await waiting_run(api)
    await signed_in(api.client, api.key_a)
    if csrf == "other-session":
        async with new_client() as other:
            csrf = await signed_in(other, api.key_a)  # same org, another session
    data = {} if csrf is None else {"csrf": csrf}
    for action in ("cancel", "pause"):
        response = await api.client.post(f"/dashboard/runs/{run_id}/{action}", data=data)
        assert response.status_code == 403
        assert "nothing was changed" in response.text
    restart = await api.client.post(
        f"/dashboard/runs/{run_id}/restart", data={**data, "from_step": "ask"}
    )
    assert restart.status_code == 403
    as_json = await api.client.post(f"/dashboard/runs/{run_id}/cancel", json={"csrf": csrf})
    assert as_json.status_code == 403
    assert (await api.app.get_run(run_id)).status == "waiting"


async def test_operator_actions_change_the_run(api: Api) -> None:
    csrf = await signed_in(api.client, api.key_a)
    run_id = await waiting_run(api)
    page = await api.client.get(f"/dashboard/runs/{run_id}")
    assert 'action="/dashboard/runs/' in page.text and ">Cancel<" in page.text

    async def act(action: str, **fields: str) -> httpx.Response:
        return await api.client.post(
            f"/dashboard/runs/{run_id}/{action}", data={"csrf": csrf, **fields}
        )

    paused = await act("pause")
    assert paused.status_code == 303
    assert paused.headers["location"] == f"/dashboard/runs/{run_id}?done=pause"
    assert (await api.app.get_run(run_id)).status == "paused"
    shown = await api.client.get(paused.headers["location"])
    assert ">Resume<" in shown.text and "Done: pause" in shown.text
    assert (await act("resume")).status_code == 303
    await until_status(api.app, run_id, "waiting")
    assert (await act("restart", from_step="ask")).status_code == 303
    await until_status(api.app, run_id, "waiting")
    assert (await act("restart")).status_code == 422  # no step chosen
    assert (await act("cancel")).status_code == 303
    assert (await api.app.get_run(run_id)).status == "cancelled"
    again = await act("cancel")
    assert again.status_code == 409 and 'role="alert"' in again.text
    assert (await act("explode")).status_code == 404

    failed = await api.app.trigger("fails", {})
    await until_status(api.app, failed.id, "failed")
    retry_page = await api.client.get(f"/dashboard/runs/{failed.id}")
    assert ">Retry<" in retry_page.text and "boom" in retry_page.text
    retried = await api.client.post(f"/dashboard/runs/{failed.id}/retry", data={"csrf": csrf})
    assert retried.status_code == 303
    await until_status(api.app, failed.id, "failed")
    assert len((await api.app.get_run(failed.id)).step("second").attempts) == 2


async def test_runs_list_filters(api: Api) -> None:
    await signed_in(api.client, api.key_a)
    waiting = await waiting_run(api)
    failed = await api.app.trigger("fails", {})
    await until_status(api.app, failed.id, "failed")
    everything = (await api.client.get("/dashboard/runs")).text
    assert waiting in everything and failed.id in everything
    by_status = (await api.client.get("/dashboard/runs?status=failed")).text
    assert failed.id in by_status and waiting not in by_status
    by_loop = (await api.client.get("/dashboard/runs?loop=waits&status=")).text
    assert waiting in by_loop and failed.id not in by_loop
    bogus = await api.client.get("/dashboard/runs?status=<script>")
    assert bogus.status_code == 200 and "<script>" not in bogus.text
    assert 'src="/static/dashboard.js"' in everything and 'data-live="5"' in everything


async def test_scan_page_plots_the_pulse(api: Api, new_client: ClientFactory) -> None:
    upload, truth_bpm = trace_upload(84.0)
    run_id, scan_id = await api.parked_scan()
    url = (await api.app.get_run(run_id)).step(SCAN_STEP).output["url"]
    await api.service.accept_trace(url.rsplit("/s/", 1)[1], upload)
    await api.service.drain()
    await signed_in(api.client, api.key_a)
    page = await api.client.get(f"/dashboard/scans/{scan_id}")
    assert page.status_code == 200 and "completed" in page.text
    plots = POINTS.findall(page.text)
    assert len(plots) == 2  # waveform and spectrum
    for points in plots:
        pairs = [tuple(map(float, p.split(","))) for p in points.split()]
        assert len(pairs) > 100
        assert all(0 <= x <= 640 and 0 <= y <= 200 for x, y in pairs)
    assert 'data-vital="heart_rate_bpm"' in page.text and 'data-quality="snr_db"' in page.text
    row = (
        r'data-vital="heart_rate_bpm"><th scope="row">Heart rate</th>'
        r'<td><span class="figure">([\d.]+)'
    )
    shown = re.search(row, page.text)
    assert shown is not None and abs(float(shown.group(1)) - truth_bpm) <= 3
    run_page = await api.client.get(f"/dashboard/runs/{run_id}")
    assert f'href="/dashboard/scans/{scan_id}"' in run_page.text
    assert "<script>" not in page.text  # no inline script under the CSP
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_refused_scan_shows_the_reason(api: Api) -> None:
    upload, _ = trace_upload(face_visible=False)
    run_id, scan_id = await api.parked_scan()
    url = (await api.app.get_run(run_id)).step(SCAN_STEP).output["url"]
    await api.service.accept_trace(url.rsplit("/s/", 1)[1], upload)
    await api.service.drain()
    await signed_in(api.client, api.key_a)
    page = await api.client.get(f"/dashboard/scans/{scan_id}")
    assert page.status_code == 200 and "Refused: no face in view" in page.text


def test_plots_tolerate_missing_or_odd_data() -> None:
    assert waveform_plot(None) is None
    assert waveform_plot({"fs_hz": 0, "values": [1, 2]}) is None
    assert waveform_plot({"fs_hz": 15, "values": [1, "x"]}) is None
    assert spectrum_plot({"freq_bpm": [30, 31], "power": [1]}, 60) is None
    flat = waveform_plot({"fs_hz": 10.0, "values": [0.0] * 50})
    assert flat is not None and len(flat.points.split()) == 50
    spectrum = spectrum_plot({"freq_bpm": list(range(30, 241)), "power": [0.5] * 211}, 72.0)
    assert spectrum is not None and spectrum.marker is not None
    assert [label for _, label in spectrum.x_ticks] == ["30", "60", "90", "120", "150", "180",
                                                         "210", "240"]  # fmt: skip
    long = waveform_plot({"fs_hz": 30.0, "values": [float(i % 7) for i in range(6000)]})
    assert long is not None and len(long.points.split()) <= 1200


async def test_other_org_key_made_later_sees_its_own_runs_only(api: Api) -> None:
    key_c = await make_key(api.app, "clinic-c")
    await waiting_run(api)
    await signed_in(api.client, key_c)
    assert "No runs" in (await api.client.get("/dashboard/runs")).text
