"""kill -9 -> first resumed step: pulseloop worker vs DBOS, both restarted with defaults.

Run it: ``.venv/bin/python bench/recovery.py`` (``--kills 5`` for a smoke run). Needs
``dbos==3.4.0`` (the ``bench`` extra) for the peer's column.

For each engine: one long run of sequential steps (each appends the wall time to a file,
then takes ~2 ms) is started in a worker process on a fresh SQLite database; the process
is SIGKILLed at a random instant, a new process is spawned at once with default settings,
and the time from the kill to the first step that runs after it is recorded. That is what
a crashed or redeployed worker costs a patient's follow-up. Repeated ``--kills`` times;
p50/p95 printed with the ratio. Also: spawn -> ready (start-up) of each engine's process.

* pulseloop: ``pulseloop worker FILE --db sqlite:///...`` (default lease, default poll).
* DBOS: a script that ``DBOS.launch()``es (recovering its pending workflows, the same
  executor) and starts the workflow on first launch; its SQLite system database.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PULSELOOP_LOOP = """
import time
from pathlib import Path
from pulseloop import Event, Loop, Step

class Long(Loop):
    name = "long"

    async def run(self, event: Event, step: Step) -> int:
        log = Path(event.body["log"])
        for i in range(100_000):
            def effect(i: int = i) -> int:
                with log.open("a") as f:
                    f.write(f"{time.time()}\\n")
                time.sleep(0.002)
                return i
            await step.do(f"s{i}", effect)
        return 0
"""

DBOS_APP = """
import sys, time
from dbos import DBOS, SetWorkflowID

db, log, first = sys.argv[1], sys.argv[2], sys.argv[3] == "first"
DBOS(config={"name": "recovery-bench", "system_database_url": f"sqlite:///{db}",
             "log_level": "WARNING"})

@DBOS.step()
def effect(i: int) -> int:
    with open(log, "a") as f:
        f.write(f"{time.time()}\\n")
    time.sleep(0.002)
    return i

@DBOS.workflow()
def long() -> int:
    for i in range(100_000):
        effect(i)
    return 0

DBOS.launch()
print("ready", flush=True)
if first:
    with SetWorkflowID("long-1"):
        DBOS.start_workflow(long)
while True:
    time.sleep(3600)
"""


def _effects(log: Path) -> list[float]:
    if not log.exists():
        return []
    return [float(x) for x in log.read_text().split()]


def _spawn(cmd: list[str]) -> tuple[subprocess.Popen[str], float]:
    """Start ``cmd``; return it and the seconds until it printed its ready line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        raise RuntimeError(f"{cmd[:4]} did not start: {line!r}")
    return proc, time.perf_counter() - start


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def measure(engine: str, kills: int, seed: int, folder: Path) -> dict[str, list[float]]:
    """Kill and restart ``engine``'s worker ``kills`` times; the recovery times."""
    rng = random.Random(seed)
    db, log = folder / f"{engine}.db", folder / f"{engine}.effects"
    if engine == "pulseloop":
        loop_file = folder / "long_loop.py"
        loop_file.write_text(PULSELOOP_LOOP)
        url = f"sqlite:///{db}"
        subprocess.run(
            [sys.executable, "-m", "pulseloop.cli.main", "trigger", "long", "--app",
             str(loop_file), "--body", f'{{"log": "{log}"}}', "--db", url, "--id", "long-1"],
            check=True, capture_output=True,
        )  # fmt: skip
        cmd = [sys.executable, "-m", "pulseloop.cli.main", "worker", str(loop_file), "--db", url]
        first_cmd = cmd
    else:
        app = folder / "dbos_app.py"
        app.write_text(DBOS_APP)
        cmd = [sys.executable, str(app), str(db), str(log), "again"]
        first_cmd = [sys.executable, str(app), str(db), str(log), "first"]
    proc, _ = _spawn(first_cmd)
    recover: list[float] = []
    startup: list[float] = []
    for _ in range(kills):
        seen = len(_effects(log))
        while len(_effects(log)) < seen + 5:  # it is making progress
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        killed_at = time.time()
        _kill(proc)
        proc, ready_s = _spawn(cmd)
        startup.append(ready_s)
        while not (after := [t for t in _effects(log) if t > killed_at]):
            time.sleep(0.002)
        recover.append(min(after) - killed_at)
    _kill(proc)
    return {"recover_s": recover, "startup_s": startup}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="pulseloop,dbos")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="pulseloop-recovery-") as tmp:
        for engine in args.engines.split(","):
            results[engine] = measure(engine, args.kills, args.seed, Path(tmp))
    print(f"kill -9 -> first resumed step, {args.kills} kills each (seconds)")
    print("| engine | recover p50 | recover p95 | start-up p50 | start-up p95 |")
    print("|---|---|---|---|---|")
    for engine, r in results.items():
        print(
            f"| {engine} | {statistics.median(r['recover_s']):.3f} | "
            f"{_p(r['recover_s'], 0.95):.3f} | {statistics.median(r['startup_s']):.3f} | "
            f"{_p(r['startup_s'], 0.95):.3f} |"
        )
    if {"pulseloop", "dbos"} <= results.keys():
        ours = statistics.median(results["pulseloop"]["recover_s"])
        theirs = statistics.median(results["dbos"]["recover_s"])
        print(f"recover p50: pulseloop is {theirs / ours:.1f}x faster than DBOS")


if __name__ == "__main__":
    main()
