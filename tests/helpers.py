"""Small async helpers for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pulseloop import App


async def eventually(check: Callable[[], Awaitable[bool]], what: str, attempts: int = 1000) -> None:
    """Poll ``check`` until true; fail naming ``what`` if it never becomes true."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def until_status(app: App, run_id: str, *statuses: str) -> None:
    """Wait until the run has one of ``statuses``."""

    async def check() -> bool:
        return (await app.get_run(run_id)).status in statuses

    await eventually(check, f"run {run_id} reaching {statuses}")
