"""Webhooks on both backends: signed deliveries a real receiver verifies, retries with
one delivery id, organization isolation, and the outbox committing with the transition."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.errors import InvalidWebhook, WebhookNotFound, WebhookSignatureError
from pulseloop.store.base import Lease, LeaseLost
from pulseloop.store.sealed import EncryptedStore
from pulseloop.testing import FakeClock
from pulseloop.webhooks import Delivery, verify_webhook
from pulseloop.webhooks.deliverer import Deliverer
from tests.webhooks.receiver import receiver

PATIENT = "Ada Lovelace, +44 7700 900123"


class Quick(Loop):
    """One step that echoes the body: a run that finishes at once."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


def deliverer(app: App) -> Deliverer:
    found = app.runtime.deliverer
    assert found is not None  # a long-lived worker delivers in the background
    return found


async def deliveries_when(app: App, done: Any, org: str | None = None) -> list[Delivery]:
    """The delivery log once ``done(log)`` holds, re-read after each recorded attempt."""
    hooks = app.client(org or app.org).webhooks
    events = deliverer(app).attempted
    while True:
        events.clear()
        found = await hooks.deliveries(attempts=True)
        if done(found):
            return found
        await events.wait()


async def test_a_delivery_is_signed_and_carries_no_patient_data(
    db_url: str, clock: FakeClock
) -> None:
    with receiver() as hook:
        async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
            endpoint = await app.webhooks.add(hook.url, events=["run.completed"])
            assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
            run = await app.trigger("quick", {"patient": PATIENT}, id="visit-1")
            await app.wait_for_run(run.id, timeout="1 minute")
            got = await hook.next()
            delivered = await deliveries_when(app, lambda d: d and d[0].state == "delivered")
    signed = got.headers["pulseloop-signature"]
    payload = verify_webhook(got.body, signed, endpoint.secret, now=clock.now())
    assert payload["type"] == "run.completed" and payload["id"] == delivered[0].id
    assert payload["data"] == {
        "run_id": "visit-1", "loop": "quick", "status": "completed",
        "occurred_at": payload["created_at"],
    }  # fmt: skip
    assert got.headers["pulseloop-delivery"] == delivered[0].id
    assert got.headers["pulseloop-event"] == "run.completed"
    assert PATIENT.encode() not in got.body and b"Ada" not in got.body
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook(got.body, signed, "whsec_someone-else", now=clock.now())
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook(got.body.replace(b"completed", b"failed"), signed, endpoint.secret)
    with pytest.raises(WebhookSignatureError, match="replay"):
        verify_webhook(got.body, signed, endpoint.secret, now=clock.now() + 301)
    with pytest.raises(WebhookSignatureError, match="no Pulseloop-Signature"):
        verify_webhook(got.body, None, endpoint.secret)


async def test_a_receiver_failing_twice_gets_one_delivery_in_three_attempts(
    db_url: str, clock: FakeClock
) -> None:
    with receiver(failures=2) as hook:
        async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
            endpoint = await app.webhooks.add(hook.url)
            run = await app.trigger("quick", {"patient": PATIENT})
            await app.wait_for_run(run.id, timeout="1 minute")
            seen = [await hook.next()]
            for attempts in (1, 2):
                pending = await deliveries_when(app, lambda d, n=attempts: d[0].attempt_count == n)
                assert pending[0].state == "pending" and pending[0].next_attempt_at is not None
                await clock.advance(pending[0].next_attempt_at.timestamp() - clock.now() + 1)
                deliverer(app).kick()
                seen.append(await hook.next())
            log = await deliveries_when(app, lambda d: d[0].state == "delivered")
    assert len(log) == 1  # one delivery recorded, three attempts
    (delivery,) = log
    assert delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts] == [500, 500, 200]
    assert delivery.attempts[0].error == "HTTP 500" and delivery.attempts[2].error is None
    assert {r.headers["pulseloop-delivery"] for r in seen} == {delivery.id}
    assert {r.body for r in seen} == {seen[0].body}  # the same bytes, re-signed each time
    for request in seen:
        assert endpoint.secret is not None
        verify_webhook(request.body, request.headers["pulseloop-signature"], endpoint.secret,
                       now=clock.now())  # fmt: skip


async def test_a_receiver_that_never_answers_ends_failed_after_the_limit(
    db_url: str, clock: FakeClock
) -> None:
    with receiver(failures=100) as hook:
        async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
            deliverer(app).max_attempts = 2
            await app.webhooks.add(hook.url, events=["run.completed"])
            run = await app.trigger("quick", {})
            await app.wait_for_run(run.id, timeout="1 minute")
            await hook.next()
            pending = await deliveries_when(app, lambda d: d[0].attempt_count == 1)
            assert pending[0].next_attempt_at is not None
            await clock.advance(pending[0].next_attempt_at.timestamp() - clock.now() + 1)
            deliverer(app).kick()
            await hook.next()
            (failed,) = await deliveries_when(app, lambda d: d[0].state == "failed")
    assert failed.attempt_count == 2 and failed.next_attempt_at is None
    assert failed.last_status_code == 500


async def test_another_organizations_endpoint_gets_nothing(db_url: str, clock: FakeClock) -> None:
    with receiver() as ours, receiver() as theirs:
        async with App([Quick], db_url, clock=clock, poll_interval="50 milliseconds") as app:
            other = app.client("other")
            await other.webhooks.add(theirs.url)
            mine = await app.webhooks.add(ours.url)
            run = await app.trigger("quick", {})
            await app.wait_for_run(run.id, timeout="1 minute")
            await ours.next()
            await deliveries_when(app, lambda d: d and d[0].state == "delivered")
            # the outbox row is written with the transition: none exists for "other"
            assert await other.webhooks.deliveries() == []
            (delivery,) = await app.webhooks.deliveries()
            assert delivery.endpoint_id == mine.id
            # nor can one organization see or remove the other's endpoints
            theirs_id = (await other.webhooks.list())[0].id
            assert [e.id for e in await app.webhooks.list()] == [mine.id]
            with pytest.raises(WebhookNotFound):
                await app.webhooks.remove(theirs_id)
            assert await app.webhooks.deliveries(endpoint_id=theirs_id) == []
    assert theirs.received == []


async def test_the_outbox_commits_with_the_terminal_transition(
    db_url: str, clock: FakeClock, backend: str
) -> None:
    """A notification that cannot be written rolls the transition back with it (so a run
    never ends without its notification), and a transition that does not happen writes
    no notification."""
    async with App([Quick], db_url, clock=clock, worker=False) as app:
        store = app.store
        assert isinstance(store, EncryptedStore)
        await app.webhooks.add("http://127.0.0.1:9/never-called")
        for run_id in ("cancelled", "finished"):
            await app.trigger("quick", {}, id=run_id)
        await store.payload_sql([(statement, ()) for statement in _FAIL_OUTBOX[backend]])
        with pytest.raises(Exception, match="outbox refused"):
            await app.cancel("cancelled")
        assert (await app.get_run("cancelled")).status == "queued"
        (claimed,) = await store.claim_runs(
            app.org, "w1", ["quick"], 1, clock.now(), 60, clock.now(), run_id="finished"
        )
        lease = Lease(claimed.key, "w1", app.org)
        with pytest.raises(Exception, match="outbox refused"):
            await store.finish_run(lease, "completed", "1", None, clock.now())
        assert (await app.get_run("finished")).status == "running"
        assert await app.webhooks.deliveries() == []
        await store.payload_sql([(_DROP[backend], ())])
        await app.cancel("cancelled")
        await store.finish_run(lease, "completed", "1", None, clock.now())
        with pytest.raises(LeaseLost):  # a second finish writes nothing, no notification
            await store.finish_run(lease, "completed", "1", None, clock.now() + 1)
        events = sorted((d.run_id, d.event) for d in await app.webhooks.deliveries())
    assert events == [("cancelled", "run.cancelled"), ("finished", "run.completed")]


_FAIL_OUTBOX = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON webhook_deliveries "
        "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON webhook_deliveries "
        "FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}
_DROP = {
    "sqlite": "DROP TRIGGER refuse",
    "postgres": "DROP TRIGGER refuse ON webhook_deliveries",
}


async def test_endpoints_refuse_other_schemes_and_unknown_events(
    db_url: str, clock: FakeClock
) -> None:
    async with App([Quick], db_url, clock=clock, worker=False) as app:
        for url in ("ftp://example.org/x", "file:///etc/passwd", "https://", "hooks", "x" * 3000):
            with pytest.raises(InvalidWebhook) as refused:
                await app.webhooks.add(url)
            assert refused.value.field == "url"
        with pytest.raises(InvalidWebhook, match="credentials"):
            await app.webhooks.add("https://user:pw@example.org/x")
        with pytest.raises(InvalidWebhook, match=r"run\.completed") as refused:
            await app.webhooks.add("https://example.org/x", events=["run.exploded"])
        assert refused.value.field == "events"
        added = await app.webhooks.add("https://example.org/x", events=["scan.expired"])
        (listed,) = await app.webhooks.list()
        assert listed.id == added.id and listed.secret is None
        assert listed.events == ("scan.expired",)
        await app.webhooks.remove(added.id)
        assert await app.webhooks.list() == []
        with pytest.raises(WebhookNotFound):
            await app.webhooks.remove(added.id)


def test_payload_bytes_are_stable_json() -> None:
    from pulseloop.store.webhooks import DeliveryRecord
    from pulseloop.webhooks.deliverer import payload

    record = DeliveryRecord(
        7, "a", "whe_1", "scan.expired", "r1", "s1", "follow-up", "expired", 0.0, "pending",
        0, 0.0, None, None, None,
    )  # fmt: skip
    body = payload(record)
    assert body == payload(record)
    assert json.loads(body)["data"]["scan_id"] == "s1"
