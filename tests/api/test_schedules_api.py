"""``/v1/schedules``: create, list, read, pause, resume, delete; bad definitions refused
naming the value; another organization's schedules are "not found"."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.engine.helpers import idle


async def test_schedule_lifecycle(api: Api) -> None:
    created = await api.client.post(
        "/v1/schedules",
        json={"loop": "waits", "cron": "0 8 * * *", "tz": "Europe/Paris", "id": "p1-morning",
              "body": {"patientId": "p1"}, "missed": "catch_up_last"},
        headers=api.a,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    schedule = created.json()
    # the fake clock starts at 2027-01-15 08:00 UTC (09:00 in Paris): next is the 16th
    assert schedule["next_fire"] == "2027-01-16T07:00:00Z"
    assert len(schedule["upcoming"]) == 5 and schedule["upcoming"][1] == "2027-01-17T07:00:00Z"
    assert (schedule["source"], schedule["body"]) == ("api", {"patientId": "p1"})

    listed = await api.client.get("/v1/schedules", headers=api.a)
    assert [s["id"] for s in listed.json()["schedules"]] == ["p1-morning"]
    paused = await api.client.post("/v1/schedules/p1-morning/pause", headers=api.a)
    assert paused.json()["paused"] is True and paused.json()["next_fire"] is None
    resumed = await api.client.post("/v1/schedules/p1-morning/resume", headers=api.a)
    assert resumed.json()["next_fire"] == "2027-01-16T07:00:00Z"

    await api.clock.advance("1 day")
    await idle(api.app)
    run = await api.client.get("/v1/runs/p1-morning:20270116T070000Z", headers=api.a)
    assert run.status_code == 200 and run.json()["body"] == {"patientId": "p1"}

    deleted = await api.client.delete("/v1/schedules/p1-morning", headers=api.a)
    assert deleted.status_code == 204
    gone = await api.client.get("/v1/schedules/p1-morning", headers=api.a)
    assert gone.status_code == 404 and gone.json()["code"] == "schedule_not_found"


async def test_bad_definitions_are_refused_naming_the_value(api: Api) -> None:
    for change, field, named in (
        ({"cron": "0 8 * *"}, "cron", "'0 8 * *'"),
        ({"tz": "Moon/Tranquility"}, "tz", "'Moon/Tranquility'"),
        ({"missed": "all"}, "missed", "'all'"),
        ({"end": "2020-01-01T00:00:00Z", "start": "2021-01-01T00:00:00Z"}, "end", "2020"),
    ):
        answer = await api.client.post(
            "/v1/schedules", json={"loop": "waits", "cron": "0 8 * * *", **change},
            headers=api.a,
        )  # fmt: skip
        assert answer.status_code == 422, answer.text
        error = answer.json()
        assert (error["code"], error["field"]) == ("invalid_schedule", field)
        assert named in error["message"]
    unknown = await api.client.post(
        "/v1/schedules", json={"loop": "nope", "cron": "0 8 * * *"}, headers=api.a
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "loop_not_found"
    assert (await api.client.get("/v1/schedules", headers=api.a)).json()["schedules"] == []


async def test_another_organizations_schedules_are_not_found(api: Api) -> None:
    made = await api.client.post(
        "/v1/schedules", json={"loop": "waits", "cron": "0 8 * * *", "id": "a-only"},
        headers=api.a,
    )  # fmt: skip
    assert made.status_code == 201
    assert (await api.client.get("/v1/schedules", headers=api.b)).json()["schedules"] == []
    for method, path in (
        ("GET", "/v1/schedules/a-only"),
        ("POST", "/v1/schedules/a-only/pause"),
        ("POST", "/v1/schedules/a-only/resume"),
        ("DELETE", "/v1/schedules/a-only"),
    ):
        answer = await api.client.request(method, path, headers=api.b)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "schedule_not_found"
    still = await api.client.get("/v1/schedules/a-only", headers=api.a)
    assert still.status_code == 200 and still.json()["paused"] is False
    # the same id in B is B's own schedule, not A's
    theirs = await api.client.post(
        "/v1/schedules", json={"loop": "waits", "cron": "0 9 * * *", "id": "a-only"},
        headers=api.b,
    )  # fmt: skip
    assert theirs.status_code == 201
    mine = await api.client.get("/v1/schedules/a-only", headers=api.a)
    assert mine.json()["cron"] == "0 8 * * *"
    anonymous = await api.client.get("/v1/schedules")
    assert anonymous.status_code == 401


async def test_a_wrong_method_names_every_method_of_the_path(api: Api) -> None:
    # GET and POST /v1/schedules are two routes; the 405 must list both
    answer = await api.client.request("PUT", "/v1/schedules", headers=api.a)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, POST"
