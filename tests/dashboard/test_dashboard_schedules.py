"""The schedules page: each schedule with its next fire times, only the org's own."""

from __future__ import annotations

import re

from tests.api.conftest import Api
from tests.dashboard.test_dashboard import signed_in

NEXT = re.compile(r'<time class="next-fire" datetime="([^"]+)">')


async def test_schedules_page_shows_next_fire_times(api: Api) -> None:
    await api.app.schedules.create(
        "waits", cron="0 8 * * *", tz="America/New_York", id="p1-morning"
    )
    other = api.app.client("clinic-b")
    await other.schedules.create("waits", cron="0 9 * * *", id="b-secret")
    await signed_in(api.client, api.key_a)

    page = await api.client.get("/dashboard/schedules")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'data-schedule="p1-morning"' in page.text and "America/New_York" in page.text
    # the fake clock is at 2027-01-15 08:00 UTC; 08:00 in New York is 13:00 UTC
    assert NEXT.findall(page.text) == [
        "2027-01-15T13:00:00+00:00", "2027-01-16T13:00:00+00:00", "2027-01-17T13:00:00+00:00"
    ]  # fmt: skip
    assert "b-secret" not in page.text
    assert 'href="/dashboard/schedules"' in page.text  # in the navigation


async def test_schedules_page_needs_a_sign_in(api: Api) -> None:
    answer = await api.client.get("/dashboard/schedules")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/sign-in"
