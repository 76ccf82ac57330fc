"""The encrypting store's synchronous hot path (store/sealed/codec.py), on both backends:
what it remembers never opens for another organization's row, and records sealed under a
key this process has not fetched yet still open."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pulseloop.engine.deadlines import TIMEOUT_ERROR
from pulseloop.engine.schedules import planner
from pulseloop.errors import EncryptionKeyError
from pulseloop.store import open_store
from pulseloop.store.base import Lease, StepRecord
from pulseloop.store.sealed import EncryptedStore
from pulseloop.store.sealed.columns import token_of
from pulseloop.store.sealed.keyring import key_id_of, unseal


@asynccontextmanager
async def opened(db_url: str) -> AsyncIterator[EncryptedStore]:
    store = open_store(db_url)
    assert isinstance(store, EncryptedStore)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_payload_just_sealed_here_does_not_open_in_another_orgs_row(db_url: str) -> None:
    # run ids are unique per organization only, so a run input is bound to (org, id); this
    # process remembers what it sealed, and that memory must not answer for org b's "r1"
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", json.dumps("org a's input"), 1.0)
        await store.create_run("b", "r1", "loop", json.dumps("org b's input"), 2.0)
        (rows,) = await store.payload_sql([("SELECT input FROM runs WHERE org = 'a'", ())])
        await store.payload_sql(
            [("UPDATE runs SET input = ? WHERE org = 'b' AND id = 'r1'", (rows[0][0],))]
        )
        with pytest.raises(EncryptionKeyError, match="key of another organization"):
            await store.get_run("b", "r1")
        run = await store.get_run("a", "r1")
        assert run is not None and json.loads(run.input) == "org a's input"


async def test_steps_sealed_under_a_key_this_process_never_saw_open(db_url: str) -> None:
    async with opened(db_url) as reader, opened(db_url) as poller, opened(db_url) as writer:
        await reader.create_run("a", "warm", "loop", "{}", 1.0)  # a's first key
        await poller.get_run("a", "warm")
        await writer.rotate_data_key("a")  # "another process" rotates; the others have not seen it
        await writer.create_run("a", "r1", "loop", json.dumps({"n": 1}), 2.0)
        (run,) = await writer.claim_runs("a", "w1", ["loop"], 1, time.time(), 30.0, 3.0, "r1")
        lease = Lease(run.key, "w1", "a")
        for seq, output in enumerate(['"first"', '"second"']):
            step = StepRecord(
                run.key, f"s{seq}", seq, "do", "completed", output, None, 1, 3.0, 3.0, "v"
            )
            await writer.record_step(lease, step)

        polled = await poller.get_run("a", "r1")  # its first read under the new key: a run
        assert polled is not None and json.loads(polled.input) == {"n": 1}
        history = await reader.load_history(run.key, run.generation)  # ... and steps
        assert {name: s.output for name, s in history.steps.items()} == {
            "s0": '"first"',
            "s1": '"second"',
        }
        detail = await reader.get_run_detail("a", "r1")
        assert detail is not None and [s.output for s in detail.steps] == ['"first"', '"second"']
        assert json.loads(detail.run.input) == {"n": 1}


async def test_a_step_output_sealed_on_the_hot_path_opens_with_the_keyring(db_url: str) -> None:
    # the step write inlines the keyring's seal; the resealer and other tools open rows
    # with keyring.unseal, so the two must make the same token for the same row
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", "{}", 1.0)
        (run,) = await store.claim_runs("a", "w1", ["loop"], 1, time.time(), 30.0, 2.0, "r1")
        step = StepRecord(
            run.key, "vitals", 0, "do", "completed", '{"bpm": 61}', None, 1, 2, 2, "v"
        )
        await store.record_step(Lease(run.key, "w1", "a"), step)
        (rows,) = await store.payload_sql(
            [("SELECT output FROM steps WHERE run_id = ? AND name = 'vitals'", (run.key,))]
        )
        token = str(rows[0][0])
        key = await store.keyring.by_id(key_id_of(token))
        assert unseal(key, token, "steps.output", run.key, "vitals", org="a") == '{"bpm": 61}'


async def test_a_deadline_timeout_of_the_timer_pass_is_sealed_at_once(db_url: str) -> None:
    async with opened(db_url) as store:
        await store.create_run("a", "r1", "loop", "{}", 1.0, deadline_at=5.0)
        due = await store.timer_pass("a", 10.0, planner("a", 10.0), 10, TIMEOUT_ERROR)
        assert len(due.timed_out) == 1
        (rows,) = await store.payload_sql([("SELECT error FROM runs WHERE id = 'r1'", ())])
        assert token_of(str(rows[0][0]), is_error=True) is not None  # a ciphertext
        run = await store.get_run("a", "r1")
        assert run is not None and run.error == TIMEOUT_ERROR
