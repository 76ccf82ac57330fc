"""Run ids given to trigger: 1-200 characters of ``A-Za-z0-9._~:-``, refused otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from pulseloop import Event, Loop, Step
from pulseloop.app import RUN_ID_CHARS, check_run_id
from pulseloop.errors import InvalidRequest, InvalidRunId
from tests.conftest import AppFactory


class Echo(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


REFUSED = [
    "a/b",  # a path separator: the id is a URL segment
    "two words",
    "tab\there",
    "line\n",
    "x" * 201,
    "x" * 300,
    "café",  # letters and digits are ASCII only
    "٣",  # an Arabic-Indic digit
    "\uff46\uff55\uff4c\uff4c",  # fullwidth letters
    "",
    ".",
    "..",  # a path segment of its own
    "a?b",
    "a#b",
    "a%2Fb",
]


@pytest.mark.parametrize("bad", REFUSED, ids=lambda v: repr(v)[:20])
async def test_bad_ids_are_refused_naming_the_value_and_the_allowed_set(
    make_app: AppFactory, bad: str
) -> None:
    async with make_app([Echo], worker=False) as app:
        with pytest.raises(InvalidRunId) as refused:
            await app.trigger("echo", {}, id=bad)
        assert await app.list_runs() == []
    message = str(refused.value)
    assert repr(bad[:40]) in message
    assert RUN_ID_CHARS in message
    assert refused.value.code == "invalid_run_id"
    assert refused.value.field == "id"
    assert isinstance(refused.value, InvalidRequest)  # HTTP 422 with the field


async def test_a_non_string_id_is_refused(make_app: AppFactory) -> None:
    async with make_app([Echo], worker=False) as app:
        with pytest.raises(InvalidRunId, match="not a string"):
            await app.trigger("echo", {}, id=7)


@pytest.mark.parametrize("good", ["a", "order.7~v2:retry-1_b", "x" * 200, "...a", "A-Z_09"])
async def test_good_ids_are_accepted_and_read_back(make_app: AppFactory, good: str) -> None:
    assert check_run_id(good) == good
    async with make_app([Echo]) as app:
        run = await app.trigger("echo", {"n": 1}, id=good)
        assert run.id == good
        done = await app.wait_for_run(good, timeout="20 seconds")
        assert done.output == {"n": 1}
        again = await app.trigger("echo", {"n": 2}, id=good)  # idempotent
    assert again.body == {"n": 1}
