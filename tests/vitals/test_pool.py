"""The process pool: same results as the sync call, errors cross the process boundary."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from pulseloop.vitals import TraceInvalid, analyze_trace
from pulseloop.vitals.pool import VitalsPool, analyze_trace_async, analyze_video_async
from tests.vitals.conftest import MakeTrace, MakeVideo


@pytest.fixture(scope="module")
def pool() -> Iterator[VitalsPool]:
    pool = VitalsPool(max_workers=1)
    yield pool
    pool.shutdown()


def test_trace_in_a_worker_matches_the_sync_call(
    pool: VitalsPool, synthetic_trace: MakeTrace
) -> None:
    trace, _ = synthetic_trace(72, 15)
    expected = analyze_trace(trace).to_json()

    async def main() -> list[dict[str, Any]]:
        # The event loop stays free while the worker computes: a ticker keeps running.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(
            analyze_trace_async(trace, pool=pool),
            analyze_trace_async(json.dumps(trace.to_json()), pool=pool),
        )
        task.cancel()
        assert ticks > 0
        return [r.to_json() for r in results]

    from_object, from_text = asyncio.run(main())
    assert from_object == expected
    assert from_text["vitals"]["heart_rate_bpm"] == pytest.approx(
        expected["vitals"]["heart_rate_bpm"], abs=0.2
    )


def test_trace_errors_cross_the_process_boundary(pool: VitalsPool) -> None:
    with pytest.raises(TraceInvalid) as caught:
        asyncio.run(analyze_trace_async(b'{"version": 9}', pool=pool))
    assert caught.value.field == "version"


def test_video_in_a_worker(pool: VitalsPool, synthetic_video: MakeVideo) -> None:
    video, _, truth = synthetic_video(".y4m", 105, seed=105, motion_px=2.0)
    result = asyncio.run(analyze_video_async(video, pool=pool))
    assert result.vitals.heart_rate_bpm is not None
    assert abs(result.vitals.heart_rate_bpm - truth.heart_rate_bpm) <= 2.0
