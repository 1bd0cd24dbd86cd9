"""Parameter sweeps with worker processes, progress, and per-point checkpoints.

A sweep evaluates ``task(point) -> dict of numpy arrays`` for every point of a list, in
``workers`` processes (spawned, one Numba thread each). Every finished point is written at
once, atomically (temporary file + ``os.replace``), as ``<folder>/points/<key>.npz`` together
with the point's parameters; re-running the same sweep skips points whose file exists and
whose stored parameters match, so a crash or Ctrl-C loses at most the points in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

__all__ = ["run_sweep", "point_key"]


def point_key(point: dict) -> str:
    """Stable short hash of a point's parameters (JSON, sorted keys)."""
    text = json.dumps(point, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_point(folder: Path, point: dict, result: dict) -> None:
    path = folder / f"{point_key(point)}.npz"
    tmp = folder / f"{point_key(point)}.tmp.npz"
    np.savez(tmp, _point=json.dumps(point, sort_keys=True, default=float),
             **{k: np.asarray(v) for k, v in result.items()})
    os.replace(tmp, path)


def _load_point(folder: Path, point: dict):
    path = folder / f"{point_key(point)}.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        if json.loads(str(data["_point"])) != json.loads(json.dumps(point, sort_keys=True,
                                                                    default=float)):
            return None
        return {k: data[k].copy() for k in data.files if k != "_point"}


def _worker_init():
    os.environ["NUMBA_NUM_THREADS"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_sweep(task, points: list[dict], folder, workers: int = 1, progress: bool = True,
              label: str = "sweep") -> list[dict]:
    """Evaluate ``task`` at every point (skipping checkpointed ones); results in point order.

    ``task`` must be a module-level function (it is sent to worker processes) returning a dict
    of arrays. ``workers = 1`` runs in this process.
    """
    folder = Path(folder) / "points"
    folder.mkdir(parents=True, exist_ok=True)
    results: list = [_load_point(folder, p) for p in points]
    todo = [i for i, r in enumerate(results) if r is None]
    skipped = len(points) - len(todo)
    start = time.perf_counter()

    def report(done):
        if not progress:
            return
        elapsed = time.perf_counter() - start
        rate = elapsed / done if done else float("nan")
        eta = rate * (len(todo) - done) if done else float("nan")
        print(f"\r[{label}] {done + skipped}/{len(points)} points ({skipped} from checkpoints)"
              f", {elapsed:.0f} s elapsed, ETA {eta:.0f} s   ", end="", file=sys.stderr,
              flush=True)

    report(0)
    if workers <= 1 or len(todo) <= 1:
        for done, i in enumerate(todo, start=1):
            results[i] = task(points[i])
            _save_point(folder, points[i], results[i])
            report(done)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            futures = {pool.submit(task, points[i]): i for i in todo}
            try:
                for done, fut in enumerate(as_completed(futures), start=1):
                    i = futures[fut]
                    results[i] = fut.result()
                    _save_point(folder, points[i], results[i])
                    report(done)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    if progress:
        print(file=sys.stderr)
    return results
