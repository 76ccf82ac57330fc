"""The scan link's edges: its result ends with the link, hostile traces and reports are
422 (never 500), and odd ``?seconds=`` values fall back to the default."""

from __future__ import annotations

import html
import json

import pytest

from tests.connectors.scan_helpers import trace_upload
from tests.server.conftest import Served

HTML = {"accept": "text/html,application/xhtml+xml"}


async def test_a_completed_scan_shows_no_vitals_once_its_link_expires(served: Served) -> None:
    _, path = await served.provision(expires_in=600)
    assert (await served.client.post(path + "/trace", content=trace_upload(72.0)[0])).is_success
    await served.service.drain()
    shown = await served.client.get(path + "/status")
    assert shown.json()["status"] == "completed" and shown.json()["vitals"]  # while it lives

    await served.clock.advance("601 seconds")
    for response in (
        await served.client.get(path + "/status"),
        await served.client.get(path, headers=HTML),
        await served.client.post(path + "/abandon", json={"reason": "no_face"}),
    ):
        assert response.status_code in (409, 410), response.text  # abandon: already used
        text = html.unescape(response.text)
        assert "heart_rate" not in text and "beats per minute" not in text
    page = await served.client.get(path, headers=HTML)
    assert "This scan link has expired" in html.unescape(page.text)
    assert (await served.client.get(path + "/status")).json()["code"] == "scan_expired"


HOSTILE_TRACES = [
    b'{"version": 1, "fps": ' + b"9" * 5000 + b"}",
    b'{"version": 1, "frames": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"version": 1, "frames": ' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"version": 1, "device": "\\ud800"}',
    b'{"version": 1, "fps": 1e999}',
]


@pytest.mark.parametrize("body", HOSTILE_TRACES, ids=range(len(HOSTILE_TRACES)))
async def test_hostile_traces_are_422_and_the_link_still_works(served: Served, body: bytes) -> None:
    _, path = await served.provision()
    bad = await served.client.post(path + "/trace", content=body)
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "trace_invalid" and bad.json()["field"] == "$"
    assert (await served.client.get(path + "/status")).json()["status"] == "pending"
    assert (await served.client.post(path + "/trace", content=trace_upload(72.0)[0])).is_success


@pytest.mark.parametrize(
    "body",
    [b'{"status": "\\ud800"}', b'{"reason": ' + b"[" * 1000 + b"]" * 1000 + b"}",
     b'{"status": ' + b"1" * 4000 + b"}"],
    ids=["surrogate", "nested", "long-number"],
)  # fmt: skip
async def test_hostile_reports_are_422(served: Served, body: bytes) -> None:
    _, path = await served.provision()
    for end in ("/progress", "/abandon"):
        response = await served.client.post(path + end, content=body)
        assert response.status_code == 422, (end, response.text)
    assert (await served.client.get(path + "/status")).json()["status"] == "pending"


@pytest.mark.parametrize("seconds", ["²", "٣٠", "1" * 50, "-5", "3.5", ""])
async def test_odd_capture_lengths_fall_back_to_30_seconds(served: Served, seconds: str) -> None:
    _, path = await served.provision()
    page = await served.client.get(path, params={"seconds": seconds}, headers=HTML)
    assert page.status_code == 200
    assert 'data-seconds="30"' in page.text


async def test_a_report_over_4_kib_is_413_before_it_is_read(served: Served) -> None:
    _, path = await served.provision()
    response = await served.client.post(path + "/progress", content=json.dumps(
        {"status": "opened", "pad": "x" * 5000}))  # fmt: skip
    assert response.status_code == 413 and response.json()["code"] == "limit_exceeded"
