"""The scan link's HTTP side: every status code, bounded uploads, headers, pages."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator

import pytest

from pulseloop.connectors.facial_scan import MAX_TRACE_BYTES
from pulseloop.server.serve import RedactScanTokens, uvicorn_log_config
from tests.connectors.scan_helpers import trace_upload
from tests.server.conftest import Served

HTML = {"accept": "text/html,application/xhtml+xml"}
JSON = {"accept": "application/json"}


def good_trace() -> bytes:
    return trace_upload(72.0)[0]


def edited_trace(edit: str) -> bytes:
    """The good trace with one schema violation."""
    doc = json.loads(good_trace())
    if edit == "version":
        doc["version"] = 3  # no such version
    elif edit == "nan":
        doc["frames"][5]["regions"]["forehead"][1] = float("nan")
    elif edit == "unordered":
        doc["frames"][3]["t_ms"] = doc["frames"][2]["t_ms"]
    return json.dumps(doc).encode()  # json.dumps writes NaN as a bare NaN token


# ---- the capture page -------------------------------------------------------------------
async def test_capture_page_is_served_with_security_headers(served: Served) -> None:
    _, path = await served.provision()
    page = await served.client.get(path, headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Start the scan" in html.unescape(page.text) and 'data-seconds="30"' in html.unescape(
        page.text
    )
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    assert "unsafe-eval" not in csp  # the detector's eval lives in its worker only
    assert "http" not in csp and "*" not in csp  # no external origin anywhere
    assert "frame-ancestors 'none'" in csp
    assert 'data-worker="/static/face-worker.js"' in page.text


async def test_only_the_detector_worker_may_eval(served: Served) -> None:
    worker = await served.client.get("/static/face-worker.js")
    assert worker.status_code == 200
    csp = worker.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval';" in csp
    assert "http" not in csp and "*" not in csp


async def test_everything_but_the_capture_page_has_the_strict_policy(served: Served) -> None:
    _, path = await served.provision()
    status = await served.client.get(path + "/status", headers=JSON)
    script = await served.client.get("/static/capture.js")
    for response in (status, script):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
    assert status.headers["cache-control"] == "no-store"
    assert "no-store" not in script.headers.get("cache-control", "")
    wasm = await served.client.head(
        "/static/vendor/mediapipe/face_detection_solution_simd_wasm_bin.wasm"
    )
    if wasm.status_code == 200:  # vendored by scripts/install-web-deps.sh
        assert wasm.headers["content-type"] == "application/wasm"


CAPTURE_LENGTHS = [("", 30), ("?seconds=12", 12), ("?seconds=3", 10), ("?seconds=999", 60),
                   ("?seconds=x", 30)]  # fmt: skip


@pytest.mark.parametrize(("query", "seconds"), CAPTURE_LENGTHS)
async def test_capture_length_comes_from_the_query(
    served: Served, query: str, seconds: int
) -> None:
    _, path = await served.provision()
    page = await served.client.get(path + query, headers=HTML)
    assert f'data-seconds="{seconds}"' in html.unescape(page.text)


@pytest.mark.parametrize("token", ["A" * 43, "x", "not a token!", "A" * 300])
async def test_unknown_link_is_404_page_or_json(served: Served, token: str) -> None:
    page = await served.client.get(f"/s/{token}", headers=HTML)
    assert page.status_code == 404
    assert "This scan link doesn't work" in html.unescape(page.text)
    assert page.headers["cache-control"] == "no-store"
    api = await served.client.get(f"/s/{token}", headers=JSON)
    assert api.status_code == 404
    assert api.json()["code"] == "scan_not_found" and api.json()["message"]
    for method, suffix in (("POST", "/trace"), ("POST", "/capturing"), ("GET", "/status")):
        response = await served.client.request(method, f"/s/{token}{suffix}", headers=JSON)
        assert (response.status_code, response.json()["code"]) == (404, "scan_not_found")


async def test_expired_link_is_410_everywhere(served: Served) -> None:
    _, path = await served.provision(expires_in=60)
    await served.clock.advance("61 seconds")
    page = await served.client.get(path, headers=HTML)
    assert page.status_code == 410 and "This scan link has expired" in html.unescape(page.text)
    api = await served.client.get(path, headers=JSON)
    assert (api.status_code, api.json()["code"]) == (410, "scan_expired")
    upload = await served.client.post(path + "/trace", content=good_trace(), headers=JSON)
    assert (upload.status_code, upload.json()["code"]) == (410, "scan_expired")
    assert (await served.client.get(path + "/status")).status_code == 410
    assert (await served.client.post(path + "/capturing")).status_code == 410


# ---- status and capturing ---------------------------------------------------------------
async def test_status_moves_from_pending_to_capturing(served: Served) -> None:
    _, path = await served.provision()
    status = await served.client.get(path + "/status")
    assert status.json() == {
        "status": "pending", "failure_reason": None, "failure_message": None,
        "failure_tip": None, "vitals": None,
    }  # fmt: skip
    capturing = await served.client.post(path + "/capturing")
    assert capturing.status_code == 200 and capturing.json() == {"status": "capturing"}
    assert (await served.client.get(path + "/status")).json()["status"] == "capturing"
    again = await served.client.post(path + "/capturing")  # a page reload films again
    assert again.json() == {"status": "capturing"}


async def test_upload_completes_the_scan_and_resumes_the_run(served: Served) -> None:
    run_id, path = await served.provision()
    await served.client.post(path + "/capturing")
    upload = await served.client.post(
        path + "/trace", content=good_trace(), headers={"content-type": "application/json"}
    )
    assert upload.status_code == 202 and upload.json() == {"status": "processing"}
    processing = await served.client.get(path, headers=HTML)
    assert processing.status_code == 200 and "Working out your results" in html.unescape(
        processing.text
    )
    second = await served.client.post(path + "/trace", content=good_trace())
    assert (second.status_code, second.json()["code"]) == (409, "scan_already_uploaded")
    await served.service.drain()
    status = (await served.client.get(path + "/status")).json()
    assert status["status"] == "completed" and status["failure_reason"] is None
    assert abs(status["vitals"]["heart_rate_bpm"] - trace_upload(72.0)[1]) <= 3
    done = await served.client.get(path, headers=HTML)
    assert "Your scan is done" in html.unescape(done.text) and "beats per minute" in html.unescape(
        done.text
    )
    assert "'unsafe-eval'" not in done.headers["content-security-policy"]
    run = await served.app.wait_for_run(run_id, timeout="30 seconds")
    assert run.status == "completed" and run.output["status"] == "completed"
    after = await served.client.post(path + "/trace", content=good_trace())
    assert after.status_code == 409


async def test_a_refused_scan_shows_the_reason_and_no_retry(served: Served) -> None:
    _, path = await served.provision()
    no_face, _ = trace_upload(72.0, face_visible=False)
    assert (await served.client.post(path + "/trace", content=no_face)).status_code == 202
    await served.service.drain()
    status = (await served.client.get(path + "/status")).json()
    assert status["status"] == "failed" and status["failure_reason"] == "no_face"
    assert status["vitals"] is None and "face" in status["failure_message"]
    page = await served.client.get(path, headers=HTML)
    text = html.unescape(page.text)
    assert "We couldn't measure your vitals" in text
    assert "This link has now been used" in text and "When you scan again:" in text
    failed = text[text.index('id="screen-failed"') : text.index('id="screen-ended"')]
    assert "try again" not in failed.lower()  # no "try again" on a link that cannot


# ---- bad uploads leave the link usable --------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "$"),
        (b"", "$"),
        (b"[1, 2, 3]", "$"),
        (b"version", "$"),
    ],
)
async def test_malformed_json_is_422_and_the_link_still_works(
    served: Served, body: bytes, field: str
) -> None:
    _, path = await served.provision()
    bad = await served.client.post(path + "/trace", content=body)
    assert bad.status_code == 422
    assert bad.json()["code"] == "trace_invalid" and bad.json()["field"] == field
    assert bad.json()["message"]
    assert (await served.client.get(path + "/status")).json()["status"] == "pending"
    assert (await served.client.post(path + "/trace", content=good_trace())).status_code == 202


@pytest.mark.parametrize(
    ("edit", "field"),
    [("version", "version"), ("nan", "$"),
     ("unordered", "frames[3].t_ms")],
)  # fmt: skip
async def test_schema_errors_name_the_field_and_the_link_still_works(
    served: Served, edit: str, field: str
) -> None:
    _, path = await served.provision()
    bad = await served.client.post(path + "/trace", content=edited_trace(edit))
    assert bad.status_code == 422
    assert bad.json() == {"code": "trace_invalid", "field": field, "message": bad.json()["message"]}
    assert (await served.client.post(path + "/trace", content=good_trace())).status_code == 202


class CountingBody:
    """A 50 MB request body that records how much of it the server pulled."""

    def __init__(self, total: int = 50 * 1024 * 1024, chunk: int = 256 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b" " * self.chunk


async def test_50_mb_stream_is_refused_while_reading(served: Served) -> None:
    _, path = await served.provision()
    body = CountingBody()
    too_big = await served.client.post(path + "/trace", content=body)
    assert too_big.status_code == 413 and too_big.json()["code"] == "limit_exceeded"
    assert body.sent <= MAX_TRACE_BYTES + 2 * body.chunk  # stopped at the limit, not 50 MB
    assert (await served.client.post(path + "/trace", content=good_trace())).status_code == 202


async def test_50_mb_declared_length_is_refused_before_reading(served: Served) -> None:
    _, path = await served.provision()
    body = CountingBody()
    too_big = await served.client.post(
        path + "/trace", content=body, headers={"content-length": str(body.total)}
    )
    assert too_big.status_code == 413
    assert body.sent <= body.chunk
    assert (await served.client.post(path + "/trace", content=good_trace())).status_code == 202


async def test_body_just_over_the_limit_is_413(served: Served) -> None:
    _, path = await served.provision()
    response = await served.client.post(path + "/trace", content=b" " * (MAX_TRACE_BYTES + 1))
    assert response.status_code == 413
    assert (await served.client.get(path + "/status")).json()["status"] == "pending"


# ---- logs -------------------------------------------------------------------------------
def test_access_log_never_shows_a_token() -> None:
    token = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/s/{token}/status?seconds=12", "1.1", 200), None,
    )  # fmt: skip
    assert RedactScanTokens().filter(record)
    assert token not in record.getMessage()
    assert "/s/<redacted>/status" in record.getMessage()
    config = uvicorn_log_config()
    assert "redact_tokens" in config["loggers"]["uvicorn.access"]["filters"]
    assert all("redact_tokens" in h["filters"] for h in config["handlers"].values())
