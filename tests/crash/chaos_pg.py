"""The chaos scenario on PostgreSQL: many processes on one database, and the database
restarted under them.

Four ``pulseloop worker`` processes and two ``pulseloop server`` processes share one
database. Runs keep coming while a random worker is SIGKILLed and replaced (``kills``
times) and, now and then, a server too (``server_kills``, replaced on a new port). Every
``upload_every``-th run's scan goes through the real path: its trace is POSTed to a live
server, which stores it as a durable analysis job that any server may analyse. Then, with
runs still in flight and more still to come, the database server itself is restarted
``pg_ctl restart -m immediate`` (a crash: every connection drops, nothing is flushed
politely). No process is replaced after that: the workers and servers that were running
must reconnect by themselves and finish the load. The checks are ``chaos.check``'s, plus:
every worker and server is still alive at the end, and runs finished after the restart.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from pulseloop import App
from pulseloop.server.serve import free_port
from pulseloop.testing.postgres import ThrowawayPostgres
from tests.crash.chaos import (
    ChaosDb,
    ChaosReport,
    Feeder,
    Processes,
    check,
    completed,
    drain,
    kill,
    trigger,
)

Proc = asyncio.subprocess.Process


async def run_pg_chaos(
    server: ThrowawayPostgres,
    db_url: str,
    folder: Path,
    *,
    runs: int,
    kills: int,
    server_kills: int,
    seed: int,
    workers: int = 4,
    servers: int = 2,
    upload_every: int = 5,
) -> ChaosReport:
    """Run the scenario of the module docstring on ``db_url`` (a database of ``server``;
    ``PULSELOOP_SECRET_KEY`` must be set) and check everything."""
    rng = random.Random(seed)
    report = ChaosReport(runs=runs)
    log = folder / "chaos.effects"
    env = {k: v for k, v in os.environ.items() if k != "PULSELOOP_DATABASE_URL"}
    procs = Processes(db_url, folder, env=env)
    reader = ChaosDb(db_url)
    started = time.perf_counter()
    async with App([], db_url, worker=False) as app:  # migrates before anyone else starts
        ports = [free_port() for _ in range(servers)]
        live = [f"http://127.0.0.1:{port}" for port in ports]
        feeder = Feeder(app, reader, set(), upload=lambda i: i % upload_every == 0, servers=live)
        web: list[Proc] = list(await asyncio.gather(*(procs.server(p) for p in ports)))
        pool: list[Proc] = list(await asyncio.gather(*(procs.worker() for _ in range(workers))))
        stop = asyncio.Event()
        feeding = asyncio.create_task(feeder.run(stop))
        triggered = 0
        before_restart = runs * 7 // 10
        per_kill = -(-before_restart // kills)
        server_every = max(1, kills // (server_kills + 1))
        try:
            while report.kills < kills:
                end = min(before_restart, triggered + per_kill)
                triggered = await trigger(app, feeder, log, triggered, end)
                await asyncio.sleep(rng.uniform(0.05, 0.4))
                victim = rng.randrange(workers)
                await kill(pool[victim], signal.SIGKILL)
                report.kills += 1
                pool[victim] = await procs.worker()
                report.restarts += 1
                if report.server_kills < server_kills and report.kills % server_every == 0:
                    await _replace_server(procs, web, live, rng.randrange(servers))
                    report.server_kills += 1
            triggered = await trigger(app, feeder, log, triggered, before_restart)
            async with feeder.world:  # the outside world holds its breath meanwhile
                await asyncio.to_thread(server.restart, "immediate")
            report.database_restarts += 1
            done_at_restart = await completed(reader)
            while triggered < runs:  # the load goes on, on the same processes
                triggered = await trigger(app, feeder, log, triggered, min(runs, triggered + 10))
                await asyncio.sleep(rng.uniform(0.05, 0.3))
            drain_start = time.perf_counter()
            await drain(reader, runs)
            report.drain_s = time.perf_counter() - drain_start
            if done_at_restart >= runs:
                report.problems.append("every run had finished before the restart")
            for proc in pool + web:
                if proc.returncode is not None:
                    report.problems.append(f"pid {proc.pid} exited by itself ({proc.returncode})")
        finally:
            stop.set()
            await feeding
            for proc in pool + web:
                await kill(proc, signal.SIGTERM)
        report.uploads = len(feeder.uploaded)
        report.total_s = time.perf_counter() - started
        await check(reader, log, runs, report, feeder)  # the open App decrypts outputs
    await reader.close()
    return report


async def _replace_server(procs: Processes, web: list[Proc], live: list[str], i: int) -> None:
    """SIGKILL server ``i`` and start another on a new port; uploads go there from now."""
    await kill(web[i], signal.SIGKILL)
    port = free_port()
    web[i] = await procs.server(port)
    live[i] = f"http://127.0.0.1:{port}"
