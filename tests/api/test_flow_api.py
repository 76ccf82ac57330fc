"""Flow control over HTTP: priority, dedupe and debounce on trigger; bad values are 422
``invalid_flow_control`` naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api


async def test_dedupe_over_http_returns_the_first_run(api: Api) -> None:
    sent = {"body": {"v": 1}, "dedupe": "10 minutes", "dedupe_key": "visit-1", "priority": 3}
    first = await api.client.post("/v1/loops/waits/runs", json=sent, headers=api.a)
    again = await api.client.post(
        "/v1/loops/waits/runs", json={**sent, "body": {"v": 2}}, headers=api.a
    )
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"priority": 10**9}, "priority"),
        ({"debounce": "soon"}, "debounce"),
        ({"dedupe": "1 minute", "debounce": "1 minute"}, "debounce"),
    ],
)
async def test_bad_flow_control_is_422_naming_the_field(
    api: Api, sent: dict[str, Any], field: str
) -> None:
    response = await api.client.post(
        "/v1/loops/waits/runs", json={"body": {}, **sent}, headers=api.a
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_flow_control"
    assert response.json()["field"] == field
    assert await api.app.list_runs() == []
