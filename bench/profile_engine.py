"""Profile pulseloop on bench workloads (a) and (b) with cProfile, both threads.

Run it: ``.venv/bin/python bench/profile_engine.py [a|b] [--top 30]``. Prints the
event-loop thread's and the SQLite thread's profiles separately (sorted by own time and
by cumulative time), plus wall-clock figures, so the engine owner can see where a step's
microseconds go. For a sampling view use py-spy instead:
``py-spy record -o prof.svg --threads -- .venv/bin/python bench/profile_engine.py a --no-cprofile``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pulseloop import App, Event, Loop, Step
from pulseloop.store.sqlite import database


async def noop() -> None:
    return None


class Seq(Loop):
    name = "seq"

    async def run(self, event: Event, step: Step) -> Any:
        for i in range(int(event.body["n"])):
            await step.do(f"s{i}", noop)
        return None


_thread_profiles: list[cProfile.Profile] = []


def _profile_db_thread() -> None:
    """Wrap Database._serve so the SQLite thread is profiled too (bench-only patch)."""
    original = database.Database._serve

    def serve(self: database.Database) -> None:
        prof = cProfile.Profile()
        _thread_profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    database.Database._serve = serve  # type: ignore[method-assign]


async def workload(which: str, runs: int, steps: int, repeats: int, db: str) -> list[float]:
    async with App([Seq], f"sqlite:///{db}") as app:
        warm = await app.trigger("seq", {"n": 10})
        await app.wait_for_run(warm.id)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            trig = await asyncio.gather(*(app.trigger("seq", {"n": steps}) for _ in range(runs)))
            await asyncio.gather(*(app.wait_for_run(r.id) for r in trig))
            times.append(time.perf_counter() - start)
        print(f"commits: {app.store.commits}")  # type: ignore[attr-defined]
        return times


def show(title: str, prof: cProfile.Profile, top: int) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(top)
        print(f"\n===== {title}: sorted by {key} =====")
        print(out.getvalue().split("\n", 6)[-1] if key else out.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["a", "b"], nargs="?", default="a")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cprofile", action="store_true", help="just run (for py-spy)")
    args = ap.parse_args()
    runs, steps = (1, 1000) if args.which == "a" else (200, 10)
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "prof.db")
        if args.no_cprofile:
            times = asyncio.run(workload(args.which, runs, steps, args.repeats, db))
        else:
            _profile_db_thread()
            prof = cProfile.Profile()
            prof.enable()
            times = asyncio.run(workload(args.which, runs, steps, args.repeats, db))
            prof.disable()
    total = runs * steps
    for t in times:
        print(f"{args.which}: {t * 1e6 / total:.0f} us/step, {total / t:,.0f} steps/s (wall)")
    if args.no_cprofile:
        return
    show("event-loop thread", prof, args.top)
    for p in _thread_profiles:
        show("sqlite thread", p, args.top)
    print(f"threads alive at exit: {threading.active_count()}", file=sys.stderr)


if __name__ == "__main__":
    main()
