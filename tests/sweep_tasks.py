"""Tasks for the Dask sweep tests, importable by worker processes (PYTHONPATH = repository), and
a sweep client to run as a subprocess:

    python -m tests.sweep_tasks FOLDER SCHEDULER TASK POINTS_JSON

Tasks are plain numpy (no BLAS, no Numba), so a point's result is the same in any process. Each
logs its start as a line "<seed> <pid>" to the point's ``log`` file (appends of a few bytes are
atomic), so a test can count which points ran where.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: longest a task waits for a test to act (a kill, a removed file) before giving up
WAIT = 120.0


def _log(point):
    if "log" in point:
        with open(point["log"], "a") as f:
            f.write(f"{point['seed']} {os.getpid()}\n")


def compute(point):
    """A deterministic result from the point's seed (elementwise numpy and a cumulative sum)."""
    x = np.random.default_rng(point["seed"]).standard_normal(1000)
    return {"value": np.cumsum(np.sin(x) * np.exp(-x * x)), "seed": np.array(point["seed"])}


def killed_once(point):
    """compute(point), after ``point["sleep"]`` seconds; the first attempt at a point with
    ``"victim"`` writes its process id to ``point["flag"]`` and waits to be killed."""
    _log(point)
    if point.get("victim"):
        flag = Path(point["flag"])
        try:
            fd = os.open(flag.with_suffix(".lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass  # a later attempt, on another worker: compute
        else:
            os.close(fd)
            tmp = flag.with_suffix(".tmp")
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, flag)
            time.sleep(WAIT)
            raise RuntimeError("the victim was not killed")
    time.sleep(point.get("sleep", 0.0))
    return compute(point)


def blocked(point):
    """compute(point), but a point with ``"block"`` waits while that file exists."""
    _log(point)
    start = time.monotonic()
    while "block" in point and Path(point["block"]).exists():
        if time.monotonic() - start > WAIT:
            raise RuntimeError("still blocked")
        time.sleep(0.05)
    return compute(point)


if __name__ == "__main__":
    from forgetting.sweep import run_sweep

    folder, scheduler, task, points = sys.argv[1:5]
    run_sweep(globals()[task], json.loads(Path(points).read_text()), folder,
              scheduler=scheduler, progress=False)


def failing(point):
    """compute(point), after ``point["sleep"]`` seconds; raises ValueError for a point with
    ``"fail"``."""
    time.sleep(point.get("sleep", 0.0))
    if point.get("fail"):
        raise ValueError(f"point {point['seed']} fails on purpose")
    return compute(point)
