"""Parameter sweeps with per-point checkpoints: in this process, on a Dask cluster, or under MPI.

A sweep evaluates ``task(point) -> dict of numpy arrays`` (or ``task(point, data)``) for every
point of a list. The client (the process that calls ``run_sweep``) writes every finished point
at once, atomically (a temporary file unique to the writing process + ``os.replace``), as
``<folder>/<key>.npz`` together with the point's parameters; re-running the same sweep skips
points whose file exists and whose stored parameters match, so a killed client loses at most
the points in flight. Where the points run (:class:`SweepCluster`):

- ``workers = 1`` and no scheduler: in this process, one after another (no cluster);
- ``workers = N > 1``: on a Dask ``LocalCluster`` of N worker processes on this machine, one
  thread each, with Numba, OpenMP and BLAS threads set to 1 (``WORKER_ENV``), started on first
  use and closed at the end; it listens on 127.0.0.1 only;
- ``scheduler = "tcp://host:port"``: on an existing Dask cluster (``dask scheduler`` and
  ``dask worker`` on other hosts, or dask-jobqueue on a batch system); ``workers`` is then
  ignored. Its workers must run the same project in the same environment: checked when the
  client connects (:func:`check_workers`), :class:`ClusterError` otherwise.

On Dask every point is one future (``pure=False``, no retries: a task that raises fails the
sweep). A worker that dies is not an error: the scheduler runs its points again on the other
workers (up to ``distributed.scheduler.allowed-failures`` deaths per point, 3 by default), and a
point's result is its task's alone, so a sweep equals the serial sweep bit for bit.

Under MPI (``mpirun -n R``, :func:`continuum.sphere.parallel.mpi_world`) every rank goes
through the same points in the same order: a point with ``collective(point)`` true (a DG solve,
which distributes its mesh over the ranks) runs on every rank, any other on rank 0 alone; rank 0
decides which points are checkpointed already, writes the checkpoints and broadcasts every
result, so all ranks return the same list. Dask (``workers > 1``, a scheduler) and MPI exclude
each other: under MPI the points run one after another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

__all__ = ["run_sweep", "point_key", "load_point", "PointError", "FolderLock", "FolderBusy",
           "write_atomic", "SweepCluster", "ClusterError",
           "check_workers", "environment_fingerprint", "fingerprint_differences",
           "WORKER_ENV"]

logger = logging.getLogger(__name__)

#: environment of LocalCluster workers: one thread per process for every threaded library
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
#: this project's installed distribution and its top-level packages
DISTRIBUTION = "meanfield-attention"
PACKAGES = ("continuum", "particles", "forgetting", "realmodel", "meanfield", "validation")
#: seconds to reach an external scheduler, and to wait for its first worker
CONNECT_TIMEOUT = 30
WORKER_TIMEOUT = 120
#: evaluated on every worker before a sweep: imports the project (and names it)
IMPORT_CHECK = "__import__('forgetting.sweep').__name__"


class ClusterError(RuntimeError):
    """A Dask cluster cannot run a sweep: its scheduler is unreachable, no worker joins, or a
    worker cannot import the project or runs other versions. The message says which and how to
    fix it."""


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
    other parameters). A file that cannot be read (truncated, not an archive, no ``_point``
    entry: a crash of a run that did not write atomically, a full disk, a copy cut short) is
    moved aside to ``<name>.corrupt`` with a warning that names it, and None is returned, so
    the point is computed again."""
    path = Path(folder) / f"{point_key(point)}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            stored = json.loads(str(data["_point"]))
            if stored != json.loads(json.dumps(point, sort_keys=True, default=float)):
                return None
            return {k: data[k].copy() for k in data.files if k != "_point"}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        aside = path.with_suffix(".corrupt")
        os.replace(path, aside)
        logger.warning("checkpoint %s is unreadable (%s: %s): moved to %s, the point is "
                       "computed again", path, type(err).__name__, err, aside.name)
        return None


class FolderBusy(RuntimeError):
    """Another process holds the lock of an output folder (:class:`FolderLock`)."""


class FolderLock:
    """An exclusive lock on an output folder, so two runs never write into one folder at once:
    ``fcntl.flock`` on ``<folder>/.lock`` (released by the kernel when the holder exits, even
    killed, so a crash never leaves a stale lock). A second holder gets FolderBusy at once,
    with the holder's pid and start time (written into the file)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._file = None

    def __enter__(self):
        import fcntl
        import time

        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / ".lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderBusy(f"output folder {self.folder} is in use by {holder}: wait for that "
                             "run to finish, or choose another output folder (--out)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {platform.node()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


def write_atomic(path, write) -> None:
    """``write(temporary_path)``, then rename onto ``path``: readers see the old file or the
    whole new one, never a part (the temporary name is unique to this process)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PointError(RuntimeError):
    """A point of a sweep failed; the message names the point and the error. Every point that
    finished is checkpointed (a re-run computes only what is missing)."""


def _point_error(label, point, err) -> PointError:
    described = ", ".join(f"{k}={v}" for k, v in point.items() if k != "config")
    return PointError(f"{label}: point {described or point_key(point)} failed: "
                      f"{type(err).__name__}: {err} (finished points are kept; fix the cause "
                      "and run again to compute the rest)")


def _version(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def source_digest() -> str:
    """SHA-256 (16 hex digits) of the project's Python sources: relative paths and contents of
    every ``.py`` file of its packages, in sorted order."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def environment_fingerprint() -> dict:
    """What must agree between a client and its workers: the Python version, the versions of
    this project's distribution and of its required (non-optional) distributions, and the
    digest of the project's sources (which also tells apart edited copies of one version)."""
    requires = metadata.requires(DISTRIBUTION) if _version(DISTRIBUTION) else None
    names = sorted({re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requires or []
                    if "extra ==" not in r})
    return {"python": platform.python_version(), DISTRIBUTION: _version(DISTRIBUTION),
            **{name: _version(name) for name in names}, "sources": source_digest()}


def fingerprint_differences(client: dict, worker: dict) -> list[str]:
    """Entries where a worker's fingerprint differs from the client's, as readable text."""
    return [f"{key} {worker.get(key)} (client: {client.get(key)})"
            for key in sorted(set(client) | set(worker)) if client.get(key) != worker.get(key)]


def check_workers(client) -> None:
    """ClusterError unless every worker of ``client`` imports the project and has the client's
    environment fingerprint (Python, package versions, sources)."""
    imported = client.run(eval, IMPORT_CHECK, on_error="return")
    failed = {w: r for w, r in imported.items() if isinstance(r, BaseException)}
    if failed:
        details = "; ".join(f"{w}: {type(e).__name__}: {e}" for w, e in sorted(failed.items()))
        raise ClusterError(
            f"{len(failed)} of {len(imported)} Dask workers cannot import the project ("
            f"{details}). Every worker needs the client's environment: install the project "
            "there the same way (./bootstrap install, or pip install -c constraints.txt .) and "
            "start `dask worker` from that environment.")
    mine = environment_fingerprint()
    theirs = client.run(environment_fingerprint)
    different = {w: fingerprint_differences(mine, fp) for w, fp in sorted(theirs.items())}
    different = {w: d for w, d in different.items() if d}
    if different:
        details = "; ".join(f"{w}: {', '.join(d)}" for w, d in different.items())
        raise ClusterError(
            f"{len(different)} of {len(theirs)} Dask workers run other versions than the "
            f"client ({details}). Install the same project sources and pinned versions "
            "(constraints.txt) on every host.")


class SweepCluster:
    """Where sweeps run: this process (``workers = 1``, no ``scheduler``), a LocalCluster of
    ``workers`` single-threaded processes, or the Dask cluster at ``scheduler``. The Dask client
    is made on first use (so a fully checkpointed study starts no cluster) and checked with
    :func:`check_workers` (the workers present then: one that joins later is not checked); a
    context manager, closing what it started."""

    def __init__(self, workers: int = 1, scheduler: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 worker_timeout: float = WORKER_TIMEOUT):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
            raise ValueError(f"scheduler must be an address like 'tcp://host:port', got "
                             f"{scheduler!r}")
        self.workers, self.scheduler = workers, scheduler
        self.connect_timeout, self.worker_timeout = connect_timeout, worker_timeout
        self._client = self._cluster = None

    @property
    def serial(self) -> bool:
        """True when points run in this process."""
        return self.scheduler is None and self.workers == 1

    @property
    def connected(self) -> bool:
        """True once the Dask client exists."""
        return self._client is not None

    def client(self):
        """The ``distributed.Client``, connected (and its workers checked) on the first call."""
        if self._client is None:
            try:
                self._client = self._connect()
                check_workers(self._client)
            except BaseException:
                self.close()
                raise
            import dask

            info = self._client.scheduler_info(n_workers=-1)
            dashboard = info.get("services", {}).get("dashboard")
            logger.info("Dask: %d workers, scheduler %s%s; a point whose worker dies runs again "
                        "elsewhere (up to %s deaths)", len(info.get("workers", {})),
                        self._client.scheduler.address,
                        f", dashboard {self._client.dashboard_link}" if dashboard else "",
                        self._client.run_on_scheduler(dask.config.get,
                                                      "distributed.scheduler.allowed-failures"))
        return self._client

    def _connect(self):
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            # a spawned process per worker: a script that gets here needs the
            # `if __name__ == "__main__":` guard (the workers re-import the main module)
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, host="127.0.0.1", env=WORKER_ENV)
            return Client(self._cluster)
        try:
            client = Client(self.scheduler, timeout=self.connect_timeout)
        except OSError as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.scheduler} ({err}); "
                               "is `dask scheduler` running there?") from None
        try:
            client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError:
            client.close()
            raise ClusterError(f"no Dask worker joined the scheduler at {self.scheduler} within "
                               f"{self.worker_timeout} s; start some with `dask worker "
                               f"{self.scheduler} --nthreads 1`") from None
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_sweep(task, points: list[dict], folder, workers: int = 1, progress: bool | None = None,
              label: str = "sweep", scheduler: str | None = None,
              cluster: SweepCluster | None = None, data=None, collective=None) -> list[dict]:
    """Evaluate ``task`` at every point (skipping checkpointed ones); results in point order.

    ``task(point)``, or ``task(point, data)`` when ``data`` is given, returns a dict of arrays;
    results are checkpointed in ``folder`` by this process. The points run where ``cluster``
    says (default: ``SweepCluster(workers, scheduler)``, closed on return); on Dask ``task``
    must be picklable (a module-level function, or a functools.partial of one) and ``data`` is
    sent to every worker once. Under MPI, ``collective(point)`` says which points every rank
    runs (default: none; the others run on rank 0).
    """
    from continuum.sphere.parallel import mpi_world

    folder = Path(folder)
    comm = mpi_world()
    if comm is not None:
        given = cluster if cluster is not None else SweepCluster(workers, scheduler)
        if not given.serial:
            raise ValueError(f"under MPI ({comm.size} ranks) a sweep runs its points one after "
                             "another on the ranks: leave workers = 1 and no scheduler")
        return _run_mpi(comm, task, points, folder, progress, label, data, collective)
    folder.mkdir(parents=True, exist_ok=True)
    results: list = [load_point(folder, p) for p in points]
    todo = [i for i, r in enumerate(results) if r is None]
    skipped = len(points) - len(todo)
    _log_skipped(label, skipped, len(points), folder)
    own = cluster is None
    cluster = SweepCluster(workers, scheduler) if own else cluster
    with tqdm(total=len(points), initial=skipped, desc=label, unit="point", file=sys.stderr,
              disable=None if progress is None else not progress) as bar:
        try:
            # one point alone is not worth starting a local cluster for
            local_single = cluster.scheduler is None and not cluster.connected and len(todo) <= 1
            if cluster.serial or local_single:
                for i in todo:
                    try:
                        results[i] = task(points[i]) if data is None else task(points[i], data)
                    except Exception as err:
                        raise _point_error(label, points[i], err) from err
                    _save_point(folder, points[i], results[i])
                    bar.update(1)
            elif todo:
                _run_dask(cluster.client(), task, points, todo, results, folder, bar, data,
                          label)
        finally:
            if own:
                cluster.close()
    return results


def _log_skipped(label, skipped, total, folder):
    if skipped:
        logger.info("%s: %d of %d points loaded from checkpoints in %s", label, skipped, total,
                    folder)


def _run_dask(client, task, points, todo, results, folder, bar, data, label):
    """The points ``todo`` as Dask futures; each result is checkpointed as it arrives. A point
    that raises does not stop the others: every point already submitted runs to its end and is
    kept, then the first failure is raised as a PointError naming its point."""
    from distributed import as_completed

    # data as one object, copied to every worker once (scatter of a dict would split it)
    args = () if data is None else (client.scatter([data], broadcast=True, hash=False)[0],)
    futures = {client.submit(task, points[i], *args, pure=False): i for i in todo}
    failures = []
    try:
        for future in as_completed(futures):
            i = futures[future]
            if future.status == "error":
                failures.append((i, future.exception()))
                future.release()
                continue
            results[i] = future.result()
            future.release()
            _save_point(folder, points[i], results[i])
            bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if args:
            args[0].release()
    if failures:
        i, err = failures[0]
        if len(failures) > 1:
            logger.error("%s: %d points failed; the first is reported", label, len(failures))
        raise _point_error(label, points[i], err) from err


def _run_mpi(comm, task, points, folder, progress, label, data, collective):
    from continuum.sphere.parallel import bcast_from_root

    root = comm.rank == 0
    if root:
        folder.mkdir(parents=True, exist_ok=True)
    # rank 0 decides what is done, so every rank skips the same points
    results = bcast_from_root(comm, [load_point(folder, p) for p in points] if root else None)
    todo = [i for i, r in enumerate(results) if r is None]
    if root:
        _log_skipped(label, len(points) - len(todo), len(points), folder)
    show = progress if root else False  # rank 0's bar only
    with tqdm(total=len(points), initial=len(points) - len(todo), desc=label, unit="point",
              file=sys.stderr, disable=None if show is None else not show) as bar:
        for i in todo:
            if root or (collective is not None and collective(points[i])):
                result = task(points[i]) if data is None else task(points[i], data)
            else:
                result = None
            results[i] = bcast_from_root(comm, result if root else None)
            if root:
                _save_point(folder, points[i], results[i])
            bar.update(1)
    return results
