"""A run parked on version 1 of a loop file resumes on version 2."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pulseloop import App, Loop
from pulseloop.testing import FakeClock
from tests.helpers import until_status

V1 = """
from pulseloop import Loop

class Onboarding(Loop):
    async def run(self, event, step):
        a = await step.do("send welcome", lambda: "welcome v1")
        b = await step.do("book call", lambda: "booked v1")
        await step.sleep("wait a day", "1 day")
        return [a, b]
"""

# v2 renames an earlier step and adds one after the park point
V2 = """
from pulseloop import Loop

class Onboarding(Loop):
    async def run(self, event, step):
        a = await step.do("send welcome", lambda: "welcome v2")
        b = await step.do("book intro call", lambda: "booked v2")
        await step.sleep("wait a day", "1 day")
        c = await step.do("send survey", lambda: "survey v2")
        return [a, b, c]
"""


def _load(path: Path, source: str, name: str) -> type[Loop]:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    loop: type[Loop] = module.Onboarding
    return loop


async def test_run_parked_on_v1_resumes_on_v2(
    tmp_path: Path, db_url: str, clock: FakeClock
) -> None:
    v1 = _load(tmp_path / "loops_v1.py", V1, "loops_v1")
    async with App([v1], db_url, clock=clock, poll_interval=0.05) as app:
        run = await app.trigger("onboarding")
        await until_status(app, run.id, "waiting")

    v2 = _load(tmp_path / "loops_v2.py", V2, "loops_v2")
    await clock.advance("1 day")
    async with App([v2], db_url, clock=clock, poll_interval=0.05) as app:
        done = await app.wait_for_run(run.id, timeout="20 seconds")
        deploys = await app.deploys()

    assert done.status == "completed"
    # recorded steps matched by name (v1's results kept), new names executed on v2
    assert done.output == ["welcome v1", "booked v2", "survey v2"]
    versions = {d.version for d in deploys}
    assert len(versions) == 2
    by_name = {s.name: s for s in done.steps}
    assert by_name["send welcome"].version != by_name["send survey"].version
    assert by_name["book call"].version == by_name["send welcome"].version  # v1's record stays
    assert by_name["book intro call"].version == by_name["send survey"].version
    assert {by_name["send welcome"].version, by_name["send survey"].version} == versions
