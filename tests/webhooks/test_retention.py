"""Retention on both backends: finished webhook deliveries older than the organization's
period are deleted with their attempts, in batches; pending and newer ones stay."""

from __future__ import annotations

from typing import Any, cast

from pulseloop import App
from pulseloop.store.purger import Purger
from pulseloop.store.retention import DEFAULT_DAYS, purge_org
from pulseloop.store.sealed.keyring import PayloadSql
from pulseloop.testing import FakeClock
from tests.webhooks.receiver import receiver
from tests.webhooks.test_delivery import Quick, deliverer, deliveries_when

DAY = 86400.0


async def count(app: App, table: str) -> int:
    (rows,) = await cast(PayloadSql, app.store).payload_sql([(f"SELECT count(*) FROM {table}", ())])
    return int(rows[0][0])


async def finish(app: App, run_id: str) -> None:
    run = await app.trigger("quick", {"patient": run_id}, id=run_id)
    await app.wait_for_run(run.id, timeout="1 minute")


async def test_finished_deliveries_past_retention_are_deleted_in_batches(
    db_url: str, clock: FakeClock
) -> None:
    with receiver() as hook:
        async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
            await app.webhooks.add(hook.url, events=["run.completed"])
            for run_id in ("old-1", "old-2", "old-3"):
                await finish(app, run_id)
            await deliveries_when(app, lambda d: len(d) == 3 and all_delivered(d))
            await clock.advance(50 * DAY)
            await finish(app, "recent")  # delivered 50 days after the old ones
            await deliveries_when(app, lambda d: len(d) == 4 and all_delivered(d))
            await deliverer(app).stop()
            await finish(app, "late")  # its delivery stays pending: nobody delivers it
            await clock.advance((DEFAULT_DAYS - 50) * DAY + 1)

            sql = cast(PayloadSql, app.store)
            dry = await purge_org(sql, app.org, clock.now(), dry_run=True)
            assert dry.deliveries == 3 and await count(app, "webhook_deliveries") == 5
            purger = Purger(sql, app.org, clock, batch=2)
            purger.start()
            try:
                await purger.idle.wait()
            finally:
                await purger.stop()
            report = purger.last
            assert report is not None and report.deliveries == 3
            assert [len(b.deliveries) for b in report.batches if b.deliveries] == [2, 1]
            left = await app.webhooks.deliveries(attempts=True)
            assert {(d.run_id, d.state) for d in left} == {
                ("recent", "delivered"), ("late", "pending"),
            }  # fmt: skip
            assert await count(app, "webhook_attempts") == 1  # the recent delivery's
            again = await purge_org(sql, app.org, clock.now())
            assert again.deliveries == 0 and again.batches == []


def all_delivered(found: list[Any]) -> bool:
    return all(d.state == "delivered" for d in found)
