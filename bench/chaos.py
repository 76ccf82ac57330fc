"""The chaos test at scale: 1,000 SIGKILLs of real workers under a steady load.

Run it: ``.venv/bin/python bench/chaos.py`` (``--kills 100`` for a shorter run). The same
driver as ``tests/crash/test_chaos.py`` (see ``tests/crash/chaos.py``): runs that use
every durable feature (step, sleep, retried step, event wait, scan) are triggered a few
before each kill; a worker is SIGKILLed at a random instant and restarted, ``--kills``
times, then two workers share the load while one of them is killed ``--takeover-kills``
times. Prints the summary that goes into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.crash.chaos import run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--takeover-kills", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pulseloop-chaos-") as tmp:
        report = asyncio.run(
            run_chaos(
                Path(tmp) / "chaos.db", runs=args.runs, kills=args.kills,
                takeover_kills=args.takeover_kills, seed=args.seed,
            )
        )  # fmt: skip
    print(f"runs                      {report.runs}")
    print(f"SIGKILLs (one worker)     {report.kills}")
    print(f"SIGKILLs (two workers)    {report.takeover_kills}")
    print(f"worker restarts           {report.restarts}")
    print(f"side effects redone       {report.redone_effects} (steps run again after a kill)")
    print(f"drain after the last kill {report.drain_s:.1f} s")
    print(f"total                     {report.total_s:.1f} s")
    print(f"problems                  {len(report.problems)}")
    for problem in report.problems[:20]:
        print(f"  {problem}")
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
