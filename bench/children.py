"""Running one benchmark part in a fresh child process and reading its result.

Each part runs in its own interpreter (DBOS is a process-wide singleton, and RSS figures
need a clean process). The child prints one ``RESULT {json}`` line; anything else it
writes is kept for the error message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any


def run_child(cmd: list[str], timeout_s: float, verbose: bool) -> dict[str, Any]:
    """Run ``cmd``; return its RESULT dict (plus ``child_wall_s``) or ``{"error": ...}``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    # files, not pipes: a grandchild (the vitals pool, multiprocessing's resource tracker)
    # that inherits a pipe would keep it open and the parent would wait for EOF forever
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            returncode = subprocess.run(
                cmd, stdout=out, stderr=err, text=True, timeout=timeout_s, env=env
            ).returncode
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout_s:.0f} s"}
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = time.perf_counter() - started
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["child_wall_s"] = wall
            if verbose and stderr.strip():
                print(stderr.rstrip(), file=sys.stderr)
            return result
    tail = (stderr or stdout).strip().splitlines()[-15:]
    return {"error": f"exit {returncode}: " + " | ".join(tail)}
