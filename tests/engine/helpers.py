"""Helpers for engine tests: wait for a worker to have nothing to do, without sleeping."""

from __future__ import annotations

import asyncio

from pulseloop import App

IDLE_LIMIT_S = 20.0


async def idle(app: App) -> None:
    """Wait until the app's worker has handled everything due or queued (see ``Worker.idle``).

    Fails, rather than hanging, if the worker keeps finding work for ``IDLE_LIMIT_S``.
    """
    assert app.worker is not None, "idle() needs an App with a worker"
    try:
        async with asyncio.timeout(IDLE_LIMIT_S):
            await app.worker.idle()
    except TimeoutError:
        raise AssertionError(f"the worker still had work after {IDLE_LIMIT_S:g} s") from None
