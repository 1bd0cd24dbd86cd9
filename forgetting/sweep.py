"""Parameter sweeps with worker processes, progress, and per-point checkpoints.

A sweep evaluates ``task(point) -> dict of numpy arrays`` for every point of a list, in
``workers`` processes (spawned, one Numba thread each). Every finished point is written at
once, atomically (a temporary file unique to the writing process + ``os.replace``), as
``<folder>/<key>.npz`` together with the point's parameters; re-running the same sweep skips
points whose file exists and whose stored parameters match, so a crash or Ctrl-C loses at
most the points in flight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

__all__ = ["run_sweep", "point_key", "load_point"]

logger = logging.getLogger(__name__)


def point_key(point: dict) -> str:
    """Stable short hash of a point's parameters (JSON, sorted keys)."""
    text = json.dumps(point, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_point(folder: Path, point: dict, result: dict) -> None:
    path = folder / f"{point_key(point)}.npz"
    tmp = folder / f"{point_key(point)}.{os.getpid()}.tmp.npz"
    np.savez(tmp, _point=json.dumps(point, sort_keys=True, default=float),
             **{k: np.asarray(v) for k, v in result.items()})
    os.replace(tmp, path)


def load_point(folder, point: dict):
    """The checkpointed result of ``point`` in ``folder``, or None (absent, or stored for
    other parameters)."""
    path = Path(folder) / f"{point_key(point)}.npz"
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


def run_sweep(task, points: list[dict], folder, workers: int = 1, progress: bool | None = None,
              label: str = "sweep") -> list[dict]:
    """Evaluate ``task`` at every point (skipping checkpointed ones); results in point order.

    ``task`` must be picklable (a module-level function, or a functools.partial of one: it is
    sent to worker processes) and return a dict of arrays; results are checkpointed in
    ``folder``. ``workers = 1`` runs in this process.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results: list = [load_point(folder, p) for p in points]
    todo = [i for i, r in enumerate(results) if r is None]
    skipped = len(points) - len(todo)
    if skipped:
        logger.info("%s: %d of %d points loaded from checkpoints in %s", label, skipped,
                    len(points), folder)
    bar = tqdm(total=len(points), initial=skipped, desc=label, unit="point", file=sys.stderr,
               disable=None if progress is None else not progress)
    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            results[i] = task(points[i])
            _save_point(folder, points[i], results[i])
            bar.update(1)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            futures = {pool.submit(task, points[i]): i for i in todo}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = fut.result()
                    _save_point(folder, points[i], results[i])
                    bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
            finally:
                bar.close()
    bar.close()
    return results
