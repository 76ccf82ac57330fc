"""Read commands over HTTP: ``--url URL --key KEY`` instead of ``--db``.

Plain ``urllib`` (no client library to install): the CLI sends one GET with the key as a
Bearer header and turns the API's JSON back into the records the renderers already know,
so ``runs show --url`` prints exactly what ``runs show --db`` prints. The key is never
printed, not even in errors.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pulseloop.cli.common import EXIT_FAILED, EXIT_USAGE, CliError
from pulseloop.runs import Attempt, Run, StepInfo

if TYPE_CHECKING:
    from urllib.error import HTTPError

TIMEOUT_S = 30.0


def get_json(url: str, key: str | None, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET ``url + path`` with the key; the JSON body, or a one-line CliError."""
    import urllib.error  # http.client, email, ssl: loaded only when --url is used
    import urllib.request

    if not key:
        raise CliError("--url needs an API key: pass --key or set PULSELOOP_API_KEY")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url {url!r} must start with http:// or https://")
    query = {k: v for k, v in (params or {}).items() if v is not None}
    full = url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(
        full, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _api_error(exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach {url}: {reason}; check --url") from None


def _api_error(exc: HTTPError) -> CliError:
    try:
        message = str(json.loads(exc.read())["message"])
    except (ValueError, KeyError, TypeError):
        message = f"the server answered HTTP {exc.code}"
    return CliError(message, EXIT_USAGE if exc.code in (401, 422) else EXIT_FAILED)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_from_json(data: dict[str, Any]) -> Run:
    """A :class:`Run` from the API's run JSON (``GET /v1/runs/{id}``)."""
    steps = tuple(
        StepInfo(
            s["name"], s["kind"], s["status"], s["output"], s["error"], _dt(s["started_at"]),
            _time(s["finished_at"]), _time(s["deadline"]), s["version"],
            tuple(
                Attempt(a["number"], a["status"], _dt(a["started_at"]), _dt(a["finished_at"]),
                        a["error"], a["version"])
                for a in s["attempts"]
            ),
        )
        for s in data.get("steps") or []
    )  # fmt: skip
    return Run(
        id=data["id"], loop=data["loop"], status=data["status"], body=data["body"],
        output=data["output"], error=data["error"], created_at=_dt(data["created_at"]),
        updated_at=_dt(data["updated_at"]), started_at=_time(data["started_at"]),
        finished_at=_time(data["finished_at"]), wake_at=_time(data["wake_at"]), steps=steps,
        summary=data.get("summary"), purged_at=_time(data.get("purged_at")),
    )  # fmt: skip


def list_runs(
    url: str, key: str | None, *, loop: str | None, status: str | None, limit: int
) -> list[Run]:
    """Newest runs first, following cursors until ``limit`` runs."""
    runs: list[Run] = []
    cursor: str | None = None
    while len(runs) < limit:
        page = get_json(url, key, "/v1/runs", {
            "loop": loop, "status": status, "limit": min(200, limit - len(runs)),
            "cursor": cursor,
        })  # fmt: skip
        runs += [run_from_json(r) for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return runs


def get_run(url: str, key: str | None, run_id: str) -> Run:
    """One run with its steps."""
    return run_from_json(get_json(url, key, f"/v1/runs/{urllib.parse.quote(run_id, safe='')}"))


def get_scan(url: str, key: str | None, scan_id: str) -> dict[str, Any]:
    """One scan's JSON."""
    data: dict[str, Any] = get_json(url, key, f"/v1/scans/{urllib.parse.quote(scan_id, safe='')}")
    return data
