"""The spec's step without a connector: "Compute total".

    await step.do("Compute total", async () => {
      return items.reduce((sum, item) => sum + item.price, 0);
    });

Run it: ``python examples/compute_total.py`` (embedded SQLite in a temp folder).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Run, Step


class ComputeTotal(Loop):
    """Sums an order's item prices in one checkpointed step."""

    async def run(self, event: Event, step: Step) -> Any:
        items = event.body["items"]

        async def total() -> float:  # no ctx: the step needs no connector
            return sum(item["price"] for item in items)

        amount = await step.do("Compute total", total)
        return {"total": amount, "items": len(items)}


EXAMPLE_BODY = {"items": [{"sku": "bp-cuff", "price": 39.5}, {"sku": "strips", "price": 12.0}]}


async def main(database_url: str | None = None) -> Run:
    """Trigger one run and wait for it."""
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'example.db'}"
        async with App([ComputeTotal], url) as app:
            run = await app.trigger("compute-total", EXAMPLE_BODY)
            return await app.wait_for_run(run.id, timeout="1 minute")


if __name__ == "__main__":
    print(asyncio.run(main()).output)
