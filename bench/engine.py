"""pulseloop vs DBOS (Python) on the same workloads and the same database, in one run.

Run it: ``make bench`` (or ``.venv/bin/python bench/engine.py``; ``--quick`` for a smoke
run, ``--backend postgres`` for PostgreSQL, ``--help`` for the sizes). Needs
``dbos==3.4.0`` (the ``bench`` extra).

Every (workload, engine) pair runs in its own fresh subprocess on a fresh database
(``bench/backends.py``): a temporary SQLite file, or with ``--backend postgres`` a new
database on one throwaway PostgreSQL server the benchmark starts (127.0.0.1, as the
``postgres`` user) and stops. DBOS is a process-wide singleton, and a clean process keeps
RSS honest. Both engines run with their durable defaults: on SQLite pulseloop's WAL +
``synchronous=FULL`` with group commit, DBOS's SQLite system database (rollback journal,
``BEGIN IMMEDIATE`` per write); on PostgreSQL both on the same server (``fsync`` on,
``synchronous_commit`` on); DBOS's sync workflows on its thread pool.

Encryption at rest is on, as for users. ``--engines pulseloop,pulseloop-plain`` also runs
pulseloop with payloads stored in plaintext and reports, for (a) and (b), how much slower
encryption makes each repeat (target: under 10 %).

Workloads (see docs/benchmarks.md):

a. one run of N sequential trivial steps: microseconds per step, trigger -> result.
b. R runs x S steps started together: steps/s, first trigger -> last result.
c. N workflows each sleep 100 ms durably: how late the step after the sleep starts.
d. worker RSS with K runs parked on a 1-hour sleep, for growing K; for pulseloop also a
   fresh worker restarted on that database (the parked runs are only rows).
e. N runs parked in ``wait_for_event`` / ``DBOS.recv``; one event sent every G ms: send ->
   the next step starting (same process, the public send API), p50 / p99.
f. (pulseloop only) Q queued one-step runs drained by 1, 2, 4 ``pulseloop worker``
   processes (``bench/drain.py``): runs/s must grow with the workers.

The child protocol: ``engine.py --child ENGINE WORKLOAD PARAMS_JSON`` prints one line
``RESULT {json}`` on stdout; everything else it prints is diagnostics.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends import Databases, commit_floor_us, count_waiting
from children import run_child
from drain import drain_all

HERE = Path(__file__).resolve()
CHILD_TIMEOUT_S = 600.0

# --------------------------------------------------------------------------------------
# measuring helpers (used in the children)
# --------------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux /proc)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: fall back to the peak
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def settled_rss() -> float:
    gc.collect()
    time.sleep(0.3)
    return rss_mb()


def is_sealed(store: Any) -> bool:
    """Whether a pulseloop store encrypts payloads at rest (the plain engine's must not)."""
    from pulseloop.store.sealed import EncryptedStore

    return isinstance(store, EncryptedStore)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --------------------------------------------------------------------------------------
# pulseloop children
# --------------------------------------------------------------------------------------


def pulseloop_child(workload: str, p: dict[str, Any]) -> dict[str, Any]:
    from pulseloop import App, Event, Loop, Step

    if not p.get("encrypt", True):
        # the engine "pulseloop-plain": payloads stored as plaintext, to measure what
        # encryption at rest costs (a benchmark-only switch, not an App option)
        import functools

        import pulseloop.runtime
        from pulseloop.store import open_store

        # patched where the Runtime looks it up; each child reports whether its store
        # sealed (``sealed``), so a patch that misses is an error, not a 0 % figure
        pulseloop.runtime.open_store = functools.partial(open_store, encrypt=False)  # type: ignore[attr-defined]

    async def noop() -> None:
        return None

    async def wall() -> float:
        return time.time()

    class Seq(Loop):
        name = "seq"

        async def run(self, event: Event, step: Step) -> Any:
            n = int(event.body["n"])
            for i in range(n):
                await step.do(f"s{i}", noop)
            return n

    class Napper(Loop):
        name = "napper"

        async def run(self, event: Event, step: Step) -> Any:
            before = await step.do("before", wall)
            await step.sleep("nap", f"{p['sleep_ms']} milliseconds")
            after = await step.do("after", wall)
            return [before, after]

    class Parked(Loop):
        name = "parked"

        async def run(self, event: Event, step: Step) -> Any:
            await step.do("start", noop)
            await step.sleep("park", "1 hour")
            return None

    stamps: dict[str, int] = {}

    class Waiter(Loop):
        name = "waiter"

        async def run(self, event: Event, step: Step) -> Any:
            await step.do("ready", noop)
            await step.wait_for_event("go", type="go", timeout="1 hour")

            async def after() -> None:  # only the resumed execution gets here
                stamps.setdefault(event.id, time.perf_counter_ns())

            await step.do("after", after)
            return None

    url = p["url"]
    kwargs: dict[str, Any] = {}
    if p.get("concurrency"):
        kwargs["concurrency"] = int(p["concurrency"])

    cpu_s: list[float] = []
    """Process CPU seconds (all threads) of each seq_runs call: on a shared, busy machine
    it shows what a change costs with less of the other tenants' noise than wall time."""

    async def seq_runs(app: App, runs: int, steps: int) -> float:
        """Trigger ``runs`` runs of ``steps`` steps together; seconds until all are done."""
        start, cpu = time.perf_counter(), time.process_time()
        triggered = await asyncio.gather(*(app.trigger("seq", {"n": steps}) for _ in range(runs)))
        done = await asyncio.gather(*(app.wait_for_run(r.id) for r in triggered))
        elapsed = time.perf_counter() - start
        cpu_s.append(time.process_time() - cpu)
        bad = [r.status for r in done if r.status != "completed"]
        if bad:
            raise RuntimeError(f"runs did not complete: {bad[:5]}")
        return elapsed

    async def main() -> dict[str, Any]:
        if workload == "a":
            async with App([Seq], url, **kwargs) as app:
                await seq_runs(app, 1, 10)  # warm-up
                commits0 = app.store.commits  # type: ignore[attr-defined]
                times = [await seq_runs(app, 1, p["steps"]) for _ in range(p["repeats"])]
                commits = app.store.commits - commits0  # type: ignore[attr-defined]
                sealed = is_sealed(app.store)
            per_step = [t / p["steps"] * 1e6 for t in times]
            cpu = [c / p["steps"] * 1e6 for c in cpu_s[1:]]
            return {
                "us_per_step": statistics.median(per_step),
                "all_us_per_step": per_step,
                "cpu_us_per_step": statistics.median(cpu),
                "all_cpu_us_per_step": cpu,
                "commits_per_step": commits / (p["steps"] * p["repeats"]),
                "sealed": sealed,
            }
        if workload == "b":
            async with App([Seq], url, **kwargs) as app:
                await seq_runs(app, 5, 5)  # warm-up
                commits0 = app.store.commits  # type: ignore[attr-defined]
                times = [await seq_runs(app, p["runs"], p["steps"]) for _ in range(p["repeats"])]
                commits = app.store.commits - commits0  # type: ignore[attr-defined]
                sealed = is_sealed(app.store)
            total = p["runs"] * p["steps"]
            rates = [total / t for t in times]
            cpu = [c / total * 1e6 for c in cpu_s[1:]]
            return {
                "steps_per_s": statistics.median(rates),
                "all_steps_per_s": rates,
                "cpu_us_per_step": statistics.median(cpu),
                "all_cpu_us_per_step": cpu,
                "steps_per_commit": total * p["repeats"] / max(1, commits),
                "sealed": sealed,
            }
        if workload == "c":
            async with App([Napper], url, **kwargs) as app:
                warm = await app.trigger("napper", {})
                await app.wait_for_run(warm.id)
                tasks = []
                for _ in range(p["n"]):
                    tasks.append(asyncio.create_task(app.trigger("napper", {})))
                    await asyncio.sleep(p["stagger_ms"] / 1000)
                runs = await asyncio.gather(*tasks)
                done = await asyncio.gather(*(app.wait_for_run(r.id) for r in runs))
            late = [(r.output[1] - r.output[0]) * 1000 - p["sleep_ms"] for r in done]
            return late_summary(late)
        if workload == "e":
            async with App([Waiter], url, **kwargs) as app:
                runs = await asyncio.gather(*(app.trigger("waiter") for _ in range(p["n"])))
                while count_waiting(url) < p["n"]:
                    await asyncio.sleep(0.05)
                sent: dict[str, int] = {}
                for r in runs:
                    sent[r.id] = time.perf_counter_ns()
                    await app.send_event(r.id, "go", None)
                    await asyncio.sleep(p["gap_ms"] / 1000)
                await asyncio.gather(*(app.wait_for_run(r.id) for r in runs))
            return late_summary([(stamps[r] - sent[r]) / 1e6 for r in sent])
        if workload == "d-park":
            async with App([Parked], url, **kwargs) as app:
                before = settled_rss()
                start = time.perf_counter()
                chunk = 1000
                for lo in range(0, p["level"], chunk):
                    n = min(chunk, p["level"] - lo)
                    await asyncio.gather(*(app.trigger("parked", {}) for _ in range(n)))
                while count_waiting(url) < p["level"]:
                    await asyncio.sleep(0.05)
                park_s = time.perf_counter() - start
                await asyncio.sleep(0.5)
                gc.collect()
                after = rss_mb()
                return {
                    "parked": count_waiting(url),
                    "rss_before_mb": before,
                    "rss_after_mb": after,
                    "peak_rss_mb": peak_rss_mb(),
                    "park_s": park_s,
                    "active_executions": app.worker.active if app.worker else None,
                }
        if workload == "d-restart":
            before = settled_rss()  # imports done, nothing open
            async with App([Parked], url, **kwargs) as app:
                await asyncio.sleep(p["settle_s"])
                gc.collect()
                after = rss_mb()
                return {
                    "parked": count_waiting(url),
                    "rss_before_mb": before,
                    "rss_after_mb": after,
                    "peak_rss_mb": peak_rss_mb(),
                    "active_executions": app.worker.active if app.worker else None,
                }
        raise SystemExit(f"unknown workload {workload!r}")

    return asyncio.run(main())


# --------------------------------------------------------------------------------------
# DBOS children
# --------------------------------------------------------------------------------------


def dbos_child(workload: str, p: dict[str, Any]) -> dict[str, Any]:
    from dbos import DBOS

    DBOS(
        config={
            "name": "pulseloop-bench",
            "system_database_url": p["url"],
            "log_level": "WARNING",
        }
    )
    lock = threading.Lock()
    entered = [0]

    @DBOS.step()
    def noop() -> None:
        return None

    @DBOS.step()
    def wall() -> float:
        return time.time()

    @DBOS.workflow()
    def seq(n: int) -> int:
        for _ in range(n):
            noop()
        return n

    @DBOS.workflow()
    def napper(sleep_s: float) -> list[float]:
        before = wall()
        DBOS.sleep(sleep_s)
        after = wall()
        return [before, after]

    stamps: dict[str, int] = {}

    @DBOS.step()
    def stamp() -> None:
        wid = DBOS.workflow_id
        assert wid is not None
        stamps.setdefault(wid, time.perf_counter_ns())

    @DBOS.workflow()
    def waiter() -> None:
        noop()
        with lock:
            entered[0] += 1
        DBOS.recv("go", timeout_seconds=3600)
        stamp()

    @DBOS.workflow()
    def parked() -> None:
        noop()
        with lock:
            entered[0] += 1
        DBOS.sleep(3600)

    def seq_runs(runs: int, steps: int) -> float:
        start = time.perf_counter()
        handles = [DBOS.start_workflow(seq, steps) for _ in range(runs)]
        for h in handles:
            h.get_result()
        return time.perf_counter() - start

    if workload == "d-restart":
        before = settled_rss()
    DBOS.launch()

    if workload == "a":
        seq_runs(1, 10)
        times = [seq_runs(1, p["steps"]) for _ in range(p["repeats"])]
        per_step = [t / p["steps"] * 1e6 for t in times]
        return {"us_per_step": statistics.median(per_step), "all_us_per_step": per_step}
    if workload == "b":
        seq_runs(5, 5)
        times = [seq_runs(p["runs"], p["steps"]) for _ in range(p["repeats"])]
        rates = [p["runs"] * p["steps"] / t for t in times]
        return {"steps_per_s": statistics.median(rates), "all_steps_per_s": rates}
    if workload == "c":
        DBOS.start_workflow(napper, p["sleep_ms"] / 1000).get_result()
        handles = []
        for _ in range(p["n"]):
            handles.append(DBOS.start_workflow(napper, p["sleep_ms"] / 1000))
            time.sleep(p["stagger_ms"] / 1000)
        late = []
        for h in handles:
            before, after = h.get_result()
            late.append((after - before) * 1000 - p["sleep_ms"])
        return late_summary(late)
    if workload == "e":
        handles = [DBOS.start_workflow(waiter) for _ in range(p["n"])]
        deadline = time.monotonic() + 120
        while entered[0] < p["n"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the last ones from noop() into recv()
        sent: dict[str, int] = {}
        for h in handles:
            sent[h.workflow_id] = time.perf_counter_ns()
            DBOS.send(h.workflow_id, None, topic="go")
            time.sleep(p["gap_ms"] / 1000)
        for h in handles:
            h.get_result()
        return late_summary([(stamps[w] - sent[w]) / 1e6 for w in sent])
    if workload == "d-park":
        before = settled_rss()
        start = time.perf_counter()
        started, stopped = 0, ""
        for _ in range(p["level"]):
            if started % 100 == 0 and rss_mb() > p["rss_cap_mb"]:
                stopped = f"RSS passed the {p['rss_cap_mb']} MB cap"
                break
            try:
                DBOS.start_workflow(parked)
            except RuntimeError as exc:  # can't start new thread
                stopped = f"start_workflow failed: {exc}"
                break
            started += 1
        deadline = time.monotonic() + 120
        while entered[0] < started and time.monotonic() < deadline:
            time.sleep(0.1)
        park_s = time.perf_counter() - start
        time.sleep(0.5)
        gc.collect()
        return {
            "parked": entered[0],
            "requested": p["level"],
            "stopped": stopped,
            "rss_before_mb": before,
            "rss_after_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
            "park_s": park_s,
            "threads": threading.active_count(),
        }
    if workload == "d-restart":
        # launch() recovers every PENDING workflow: each re-enters its sleep on a thread
        deadline = time.monotonic() + 300
        while entered[0] < p["expect"] and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(p["settle_s"])
        gc.collect()
        return {
            "parked": entered[0],
            "rss_before_mb": before,
            "rss_after_mb": rss_mb(),
            "peak_rss_mb": peak_rss_mb(),
            "threads": threading.active_count(),
        }
    raise SystemExit(f"unknown workload {workload!r}")


def late_summary(late: list[float]) -> dict[str, Any]:
    return {
        "n": len(late),
        "p50_ms": percentile(late, 50),
        "p99_ms": percentile(late, 99),
        "max_ms": max(late),
        "min_ms": min(late),
        "worst5_ms": sorted(late)[-5:],
    }


def child_main(engine: str, workload: str, params: str) -> None:
    p = json.loads(params)
    fn: Callable[[str, dict[str, Any]], dict[str, Any]] = (
        pulseloop_child if engine.startswith("pulseloop") else dbos_child
    )
    result = fn(workload, p)
    print("RESULT " + json.dumps(result), flush=True)
    sys.stderr.flush()
    # DBOS keeps sleeping threads (and its singleton) alive; nothing to clean up here
    os._exit(0)


# --------------------------------------------------------------------------------------
# the parent: spawn children, print figures and the summary
# --------------------------------------------------------------------------------------


def spawn(engine: str, workload: str, params: dict[str, Any], verbose: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--child", engine, workload, json.dumps(params)]
    return run_child(cmd, CHILD_TIMEOUT_S, verbose)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        self.rows: list[tuple[str, str, str, str, str, str]] = []
        self.raw: dict[str, Any] = {}
        self.dbs = Databases(args.backend)
        self.pg = args.backend == "postgres"

    def both(self, workload: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for engine in self.engines:
            label = f"{workload}-{engine}"
            url = self.dbs.url(label)
            more = {"url": url, "encrypt": engine != "pulseloop-plain"}
            result = spawn(engine, workload, {**params, **more}, self.args.verbose)
            out[engine] = result
            self.raw[label] = result
            shown = {k: _round(v) for k, v in result.items()}
            print(f"  {engine:9} {json.dumps(shown)}", flush=True)
        return out

    def row(
        self,
        name: str,
        key: str,
        res: dict[str, dict[str, Any]],
        unit: str,
        lower_better: bool,
        target: float | None,
        pl_value: float | None = None,
        dbos_value: float | None = None,
        dbos_note: str = "",
    ) -> None:
        pl = pl_value if pl_value is not None else res.get("pulseloop", {}).get(key)
        db = dbos_value if dbos_value is not None else res.get("dbos", {}).get(key)
        fmt = _fmt
        ratio = verdict = "-"
        if isinstance(pl, int | float) and isinstance(db, int | float) and pl > 0 and db > 0:
            r = pl / db
            ratio = f"{r:.3g}"
            better = (r < 1) if lower_better else (r > 1)
            factor = max(r, 1 / r)
            verdict = f"pulseloop {factor:.1f}x {'better' if better else 'worse'}"
        met = "-"
        tgt = "-"
        if target is not None:
            tgt = f"{'<=' if lower_better else '>='} {fmt(target)}"
            if isinstance(pl, int | float):
                met = "yes" if (pl <= target if lower_better else pl >= target) else "NO"
        direction = "lower" if lower_better else "higher"
        self.rows.append(
            (
                f"{name} [{unit}, {direction} is better]",
                fmt(pl),
                fmt(db) + dbos_note,
                f"{ratio}  ({verdict})" if ratio != "-" else "-",
                tgt,
                met,
            )
        )

    # workloads ------------------------------------------------------------------------
    def a(self) -> None:
        a = self.args
        print(f"\n(a) one run of {a.steps:,} sequential trivial steps, {a.repeats} repeats")
        res = self.both("a", {"steps": a.steps, "repeats": a.repeats, **self.pl_opts()})
        target = 300 if self.pg else 150
        floor = commit_floor_us(self.dbs.url("a-floor"))
        self.raw["a-floor-us"] = floor
        print(f"  one synced one-row commit on this database right now: {floor:.0f} us (median)")
        self.row(f"(a) 1 run x {a.steps:,} steps", "us_per_step", res, "us/step", True, target)
        self.encryption_cost("(a)", "us_per_step", res, lower_better=True)
        self.encryption_cost("(a) CPU", "cpu_us_per_step", res, lower_better=True)
        self.row("(a) floor: one synced commit", "", {}, "us", True, None, pl_value=floor)

    def b(self) -> None:
        a = self.args
        print(f"\n(b) {a.runs} runs x {a.run_steps} steps started together, {a.repeats} repeats")
        params = {"runs": a.runs, "steps": a.run_steps, "repeats": a.repeats, **self.pl_opts()}
        res = self.both("b", params)
        self.row(
            f"(b) {a.runs} runs x {a.run_steps} steps", "steps_per_s", res, "steps/s", False,
            20_000,
        )  # fmt: skip
        self.encryption_cost("(b)", "steps_per_s", res, lower_better=False)
        self.encryption_cost("(b) CPU", "cpu_us_per_step", res, lower_better=True)

    def c(self) -> None:
        a = self.args
        print(
            f"\n(c) {a.sleeps} workflows sleep {a.sleep_ms} ms, started {a.stagger_ms} ms "
            "apart; lateness of the step after the sleep"
        )
        params = {"n": a.sleeps, "sleep_ms": a.sleep_ms, "stagger_ms": a.stagger_ms}
        res = self.both("c", {**params, **self.pl_opts()})
        self.row(f"(c) {a.sleep_ms} ms sleep, p50 late", "p50_ms", res, "ms", True, None)
        self.row(f"(c) {a.sleep_ms} ms sleep, p99 late", "p99_ms", res, "ms", True, 20)

    def d(self) -> None:
        a = self.args
        levels = [int(x) for x in a.park_levels.split(",")]
        dbos_levels = [int(x) for x in (a.dbos_park_levels or a.park_levels).split(",")]
        print(
            f"\n(d) worker RSS with runs parked on a 1-hour sleep: pulseloop {levels}, "
            f"DBOS {dbos_levels} (DBOS stops at {a.dbos_rss_cap_mb} MB RSS)"
        )
        results: dict[str, dict[int, dict[str, Any]]] = {"pulseloop": {}, "dbos": {}}
        restarts: dict[str, dict[int, dict[str, Any]]] = {"pulseloop": {}, "dbos": {}}
        for engine in self.engines:
            dbos_blocked = False
            for level in levels if engine == "pulseloop" else dbos_levels:
                if dbos_blocked:
                    print(f"  {engine:9} {level:>6,} parked: skipped (a smaller count failed)")
                    continue
                db = self.dbs.url(f"d-{engine}-{level}")
                params = {"level": level, "url": db, "rss_cap_mb": a.dbos_rss_cap_mb}
                park = spawn(engine, "d-park", {**params, **self.pl_opts()}, a.verbose)
                results[engine][level] = park
                self.raw[f"d-park-{engine}-{level}"] = park
                print(f"  {engine:9} {level:>6,} parked: {_d_line(park)}", flush=True)
                if "error" in park or park.get("parked", 0) < level:
                    dbos_blocked = engine == "dbos"
                    if "error" in park:
                        continue
                got = park.get("parked", level)
                restart = spawn(
                    engine, "d-restart",
                    {"url": db, "expect": got, "settle_s": a.settle_s, **self.pl_opts()},
                    a.verbose,
                )  # fmt: skip
                restarts[engine][level] = restart
                self.raw[f"d-restart-{engine}-{level}"] = restart
                print(f"  {engine:9} {got:>6,} restart: {_d_line(restart)}", flush=True)
        top = max(levels)
        pl_park = results["pulseloop"].get(top, {})
        pl_restart = restarts["pulseloop"].get(top, {})
        db_ok = {
            lvl: r for lvl, r in results["dbos"].items() if "error" not in r and r.get("parked")
        }
        db_top = max(db_ok, key=lambda lvl: db_ok[lvl]["parked"]) if db_ok else None
        db_park = db_ok.get(db_top, {}) if db_top is not None else {}
        db_restart = restarts["dbos"].get(db_top, {}) if db_top is not None else {}
        note = ""
        if db_park and db_park.get("parked") != top:
            note = f" (at {db_park.get('parked'):,})"
        for label, pl_r, db_r in (
            ("parking worker", pl_park, db_park),
            ("restarted worker", pl_restart, db_restart),
        ):
            self.row(
                f"(d) RSS, {top:,} parked, {label}", "rss_after_mb", {}, "MB", True, 150,
                pl_value=pl_r.get("rss_after_mb"), dbos_value=db_r.get("rss_after_mb"),
                dbos_note=note if db_r else "",
            )  # fmt: skip
        grow_pl = _growth(results["pulseloop"])
        grow_db = _growth(db_ok)
        self.row(
            "(d) RSS growth per 1,000 parked", "", {}, "MB", True, None,
            pl_value=grow_pl, dbos_value=grow_db,
        )  # fmt: skip

    def e(self) -> None:
        a = self.args
        print(
            f"\n(e) {a.events} runs parked in wait_for_event / recv; one event every "
            f"{a.event_gap_ms} ms: send -> the next step starting"
        )
        res = self.both("e", {"n": a.events, "gap_ms": a.event_gap_ms, **self.pl_opts()})
        self.row("(e) event wake-up, p50", "p50_ms", res, "ms", True, 3)
        self.row("(e) event wake-up, p99", "p99_ms", res, "ms", True, 10)

    def f(self) -> None:
        a = self.args
        counts = [int(x) for x in a.drain_workers.split(",")]
        print(f"\n(f) {a.drain_runs:,} queued one-step runs drained by {counts} worker processes")
        if "pulseloop" not in self.engines:
            return
        results = drain_all(self.dbs, a.drain_runs, counts)
        for n, r in results.items():
            self.raw[f"f-pulseloop-{n}"] = r
            print(f"  pulseloop {n} worker(s): {json.dumps({k: _round(v) for k, v in r.items()})}")
        rates = [results[n].get("runs_per_s") for n in counts]
        grows = all(
            isinstance(x, float) and isinstance(y, float) and y > x
            for x, y in itertools.pairwise(rates)
        )
        for n, rate in zip(counts, rates, strict=True):
            self.row(
                f"(f) drain {a.drain_runs:,} runs, {n} worker(s)", "", {}, "runs/s", False, None,
                pl_value=rate,
            )  # fmt: skip
        self.rows.append(
            ("(f) runs/s grows with workers", "yes" if grows else "NO", "-", "-", "grows",
             "yes" if grows else "NO")
        )  # fmt: skip

    def encryption_cost(
        self, name: str, key: str, res: dict[str, dict[str, Any]], lower_better: bool
    ) -> None:
        """With ``--engines ...,pulseloop-plain``: how much slower encryption at rest
        makes pulseloop, each repeat paired with the plain run's same repeat."""
        on, off = res.get("pulseloop", {}), res.get("pulseloop-plain", {})
        if key not in on or key not in off:
            return
        if not on.get("sealed", True) or off.get("sealed", False):
            raise RuntimeError(
                f"{name}: the pulseloop child sealed={on.get('sealed')}, the plain child "
                f"sealed={off.get('sealed')}: the comparison would measure nothing; fix the "
                "pulseloop-plain switch in pulseloop_child"
            )
        all_key = "all_" + key
        pairs = list(zip(on.get(all_key, [on[key]]), off.get(all_key, [off[key]]), strict=False))
        slower = [(x / y if lower_better else y / x) - 1 for x, y in pairs]
        shown = ", ".join(f"{100 * s:+.1f} %" for s in slower)
        median = statistics.median(slower)
        print(f"  {name} {key} on vs off: {shown} per repeat; median {100 * median:+.1f} %")
        self.raw[f"{name}-encryption-slower"] = slower
        self.rows.append(
            (f"{name} encryption on vs off [% slower]", f"{100 * median:+.1f} %", "-", "-",
             "< +10 %", "yes" if median < 0.10 else "NO")
        )  # fmt: skip

    def pl_opts(self) -> dict[str, Any]:
        return {"concurrency": self.args.pl_concurrency} if self.args.pl_concurrency else {}

    # output ---------------------------------------------------------------------------
    def summary(self) -> None:
        head = ("workload", "pulseloop", "DBOS", "ratio pulseloop/DBOS", "target", "met?")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(len(head))]
        line = "  ".join("-" * w for w in widths)
        print("\n" + "=" * len(line))
        print("SUMMARY (pulseloop target applies to the pulseloop column)")
        print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        print(line)
        for r in self.rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        print(line)


def _growth(by_level: dict[int, dict[str, Any]]) -> float | None:
    """Least-squares slope of RSS after parking vs runs parked, MiB per 1,000 runs."""
    pts = [
        (float(r["parked"]), float(r["rss_after_mb"]))
        for r in by_level.values()
        if "error" not in r and r.get("parked")
    ]
    if len(pts) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    if den == 0:
        return None
    return 1000 * sum((x - mx) * (y - my) for x, y in pts) / den


def _d_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    parts = [
        f"RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB",
        f"peak {r['peak_rss_mb']:.0f} MB",
        f"parked {r['parked']:,}",
    ]
    if "park_s" in r:
        parts.append(f"in {r['park_s']:.1f} s")
    if "threads" in r:
        parts.append(f"threads {r['threads']:,}")
    if r.get("stopped"):
        parts.append(f"STOPPED: {r['stopped']}")
    return ", ".join(parts)


def _fmt(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--backend", default="sqlite", help="sqlite or postgres")
    ap.add_argument("--workloads", default="a,b,c,e,f,d", help="comma list of a..f")
    ap.add_argument("--engines", default="pulseloop,dbos", help="comma list")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~1 min)")
    ap.add_argument("--steps", type=int, default=1000, help="(a) steps in the one run")
    ap.add_argument("--repeats", type=int, default=3, help="(a),(b) repeats; median reported")
    ap.add_argument("--runs", type=int, default=200, help="(b) runs started together")
    ap.add_argument("--run-steps", type=int, default=10, help="(b) steps per run")
    ap.add_argument("--sleeps", type=int, default=200, help="(c) sleeping workflows")
    ap.add_argument("--sleep-ms", type=int, default=100, help="(c) sleep length")
    ap.add_argument("--stagger-ms", type=float, default=10, help="(c) gap between starts")
    ap.add_argument(
        "--park-levels",
        default="",
        help="(d) pulseloop counts (sqlite 2000,5000,10000; postgres 10000,100000)",
    )
    ap.add_argument(
        "--dbos-park-levels", default="", help="(d) DBOS counts (default: --park-levels)"
    )
    ap.add_argument(
        "--dbos-rss-cap-mb", type=int, default=2500, help="(d) stop parking DBOS above this RSS"
    )
    ap.add_argument("--events", type=int, default=200, help="(e) runs woken by an event")
    ap.add_argument("--event-gap-ms", type=float, default=20, help="(e) gap between events")
    ap.add_argument("--drain-runs", type=int, default=10_000, help="(f) queued runs")
    ap.add_argument("--drain-workers", default="1,2,4", help="(f) worker process counts")
    ap.add_argument("--settle-s", type=float, default=2.0, help="(d) restarted worker settles")
    ap.add_argument(
        "--pl-concurrency", type=int, default=0, help="pulseloop App(concurrency=); 0: default"
    )
    ap.add_argument("--json", default="", help="also write the raw results to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the children's stderr")
    args = ap.parse_args(argv)
    pg = args.backend == "postgres"
    args.park_levels = args.park_levels or ("10000,100000" if pg else "2000,5000,10000")
    if pg and not args.dbos_park_levels:
        args.dbos_park_levels = "1000,2000"  # each DBOS sleeper is a thread: see (d)
    if args.quick:
        args.steps, args.repeats = 200, 1
        args.runs, args.run_steps = 50, 10
        args.sleeps = 30
        args.events, args.drain_runs = 30, 1000
        args.park_levels = "500,1000"
        args.dbos_park_levels = args.dbos_park_levels or "200,500"
    return args


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child_main(argv[1], argv[2], argv[3])
        return
    args = parse_args(argv)
    bench = Bench(args)
    print(
        f"pulseloop vs DBOS on {bench.dbs.describe()}; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    try:
        for w in [w.strip() for w in args.workloads.split(",") if w.strip()]:
            getattr(bench, w)()
        bench.summary()
        if args.json:
            Path(args.json).write_text(json.dumps(bench.raw, indent=2))
    finally:
        bench.dbs.close()


if __name__ == "__main__":
    main(sys.argv[1:])
