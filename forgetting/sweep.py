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
point's result is its task's alone, so a sweep equals the serial sweep bit for bit. A cluster
that cannot go on (lost scheduler, no worker for ``WORKER_TIMEOUT`` s, more than
``MAX_RESTARTS`` local worker deaths: :class:`SweepCluster`) stops the sweep with a
ClusterError after checkpointing the points that finished; a checkpoint that cannot be
written is a WriteError naming its path and the cause.

Under MPI (``mpirun -n R``, :func:`continuum.sphere.parallel.mpi_world`) every rank goes
through the same points in the same order: a point with ``collective(point)`` true (a DG solve,
which distributes its mesh over the ranks) runs on every rank, any other on rank 0 alone; rank 0
decides which points are checkpointed already, writes the checkpoints and broadcasts every
result, so all ranks return the same list. Dask (``workers > 1``, a scheduler) and MPI exclude
each other: under MPI the points run one after another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import re
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

__all__ = ["run_sweep", "point_key", "load_point", "PointError", "FolderLock", "FolderBusy",
           "write_atomic", "WriteError", "SweepCluster", "ClusterError",
           "check_workers", "environment_fingerprint", "fingerprint_differences",
           "WORKER_ENV"]

logger = logging.getLogger(__name__)

#: environment of LocalCluster workers: one thread per process for every threaded library
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
#: this project's installed distribution and its top-level packages
DISTRIBUTION = "meanfield-attention"
PACKAGES = ("continuum", "particles", "forgetting", "realmodel", "meanfield", "validation")
#: seconds to reach an external scheduler
CONNECT_TIMEOUT = 30
#: seconds a sweep waits while its cluster has no worker, and the variable that overrides it
WORKER_TIMEOUT = 120
WORKER_TIMEOUT_VARIABLE = "MEANFIELD_DASK_WORKER_TIMEOUT"
#: local worker deaths made good per cluster (one study), and the variable that overrides it
MAX_RESTARTS = 10
RESTARTS_VARIABLE = "MEANFIELD_DASK_RESTARTS"
#: loggers whose records OneLineLog keeps to one line (Dask's, and those its event loop uses)
DASK_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")
#: seconds between two looks at the cluster while points run; between two "no worker" lines
POLL = 1.0
WAIT_LOG = 10.0
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
    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, _point=json.dumps(point, sort_keys=True, default=float),
                     **{k: np.asarray(v) for k, v in result.items()})

    write_atomic(folder / f"{point_key(point)}.npz", write)


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
        try:
            os.replace(path, aside)
        except OSError as moved:
            raise _write_error(aside, moved, "move the unreadable checkpoint to") from None
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

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / ".lock", "a+")
        except OSError as err:
            raise _write_error(self.folder / ".lock", err, "create the lock file") from None
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


class WriteError(RuntimeError):
    """A result or checkpoint cannot be written (a read-only folder, a directory or file in
    the way, no space left on the device). The message names the path and the cause; every
    result written before stays, so running the same command again resumes (CLI exit
    status 6)."""


def _write_error(path, err: OSError, what: str = "write") -> WriteError:
    cause = err.strerror or str(err) or type(err).__name__
    return WriteError(f"cannot {what} {path}: {cause} (errno {err.errno}); every result "
                      "written before is kept: make the folder writable (or free space) and "
                      "run the same command again to compute only the rest")


def write_atomic(path, write) -> None:
    """``write(temporary_path)``, then rename onto ``path``: readers see the old file or the
    whole new one, never a part (the temporary name, ``.<name>.<pid>.tmp`` beside ``path``, is
    unique to this process and removed on failure). An OSError on the way (read-only folder,
    a directory in the way, no space left) becomes a WriteError naming ``path`` and the cause."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, err) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


class PointError(RuntimeError):
    """A point of a sweep failed; the message names the point and the error. Every point that
    finished is checkpointed (a re-run computes only what is missing)."""


def _described(point: dict) -> str:
    """A point as text: its parameters but the study config, or its key."""
    return ", ".join(f"{k}={v}" for k, v in point.items() if k != "config") or point_key(point)


def _point_error(label, point, err) -> PointError:
    return PointError(f"{label}: point {_described(point)} failed: "
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


def _answers(client, func, *args) -> dict:
    """``client.run(func, *args)`` on every worker: {worker: value or the exception it raised},
    without the workers that died meanwhile (logged; a local one is restarted by the watch)."""
    from distributed.comm.core import CommClosedError

    answers = client.run(func, *args, on_error="return")
    for worker in sorted(w for w, r in answers.items() if isinstance(r, CommClosedError)):
        logger.warning("Dask: worker %s died while being checked", worker)
        del answers[worker]
    return answers


def check_workers(client) -> None:
    """ClusterError unless every worker of ``client`` imports the project and has the client's
    environment fingerprint (Python, package versions, sources). A worker that dies while
    being checked is left out (it is gone)."""
    imported = _answers(client, eval, IMPORT_CHECK)
    failed = {w: r for w, r in imported.items() if isinstance(r, BaseException)}
    if failed:
        details = "; ".join(f"{w}: {type(e).__name__}: {e}" for w, e in sorted(failed.items()))
        raise ClusterError(
            f"{len(failed)} of {len(imported)} Dask workers cannot import the project ("
            f"{details}). Every worker needs the client's environment: install the project "
            "there the same way (./bootstrap install, or pip install -c constraints.txt .) and "
            "start `dask worker` from that environment.")
    mine = environment_fingerprint()
    theirs = _answers(client, environment_fingerprint)
    failed = {w: r for w, r in theirs.items() if isinstance(r, BaseException)}
    if failed:
        raise ClusterError(f"the environment fingerprint failed on {len(failed)} Dask workers ("
                           + "; ".join(f"{w}: {_one_line(e)}" for w, e in sorted(failed.items()))
                           + ")")
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
    context manager, closing what it started.

    A sweep never waits forever (:meth:`watch`, called every ``POLL`` s while points run):

    - a local worker that dies is restarted (by its nanny, or here when the nanny gave up or
      was closed: Dask's ``LocalCluster`` closes a nanny whose worker is down at the moment
      ``distributed.deploy.lost-worker-timeout`` after an earlier loss, and never starts it
      again, which left kill-stressed clusters with no worker). At most ``max_restarts``
      deaths per cluster (default ``MAX_RESTARTS``, or ``$MEANFIELD_DASK_RESTARTS``) are made
      good; the next stops the sweep with a ClusterError;
    - no worker at all (an external scheduler with none, or local ones that do not come back):
      a log line every ``WAIT_LOG`` s, and a ClusterError after ``worker_timeout`` s (default
      ``WORKER_TIMEOUT``, or ``$MEANFIELD_DASK_WORKER_TIMEOUT``);
    - a lost scheduler, a local cluster that fails to start, a scheduler that cannot be
      reached: a ClusterError at once.

    The finished points of a sweep are checkpointed before its ClusterError is raised. Dask's
    own log is kept to one line per event (no traceback chain, :class:`OneLineLog`).
    """

    def __init__(self, workers: int = 1, scheduler: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 worker_timeout: float | None = None, max_restarts: int | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
            raise ValueError(f"scheduler must be an address like 'tcp://host:port', got "
                             f"{scheduler!r}")
        self.workers, self.scheduler = workers, scheduler
        self.connect_timeout = connect_timeout
        self.worker_timeout = _setting(WORKER_TIMEOUT_VARIABLE, WORKER_TIMEOUT, float) \
            if worker_timeout is None else worker_timeout
        self.max_restarts = _setting(RESTARTS_VARIABLE, MAX_RESTARTS, int) \
            if max_restarts is None else max_restarts
        self.restarts = 0  # local worker deaths seen so far
        self._client = self._cluster = None
        self._known: set = set()  # worker addresses at the last look
        self._empty_since = self._logged_at = None

    @property
    def serial(self) -> bool:
        """True when points run in this process."""
        return self.scheduler is None and self.workers == 1

    @property
    def connected(self) -> bool:
        """True once the Dask client exists."""
        return self._client is not None

    @property
    def where(self) -> str:
        """The cluster in words, for messages."""
        return f"the Dask scheduler at {self.scheduler}" if self.scheduler else \
            f"the local Dask cluster of {self.workers} workers"

    def client(self):
        """The ``distributed.Client``, connected (and its workers checked) on the first call;
        any failure on the way is a ClusterError."""
        if self._client is None:
            import dask

            OneLineLog.install()
            try:
                self._client = self._connect()
                check_workers(self._client)
                info = self._client.scheduler_info(n_workers=-1)
                allowed = self._client.run_on_scheduler(
                    dask.config.get, "distributed.scheduler.allowed-failures")
            except ClusterError:
                self.close()
                raise
            except Exception as err:
                self.close()
                verb = "start" if self.scheduler is None else "connect to"
                raise ClusterError(f"could not {verb} {self.where}: {_one_line(err)} (a worker "
                                   "died or the scheduler went away while starting); run "
                                   "again, or with workers = 1") from None
            self._known = set(info.get("workers", {}))
            dashboard = info.get("services", {}).get("dashboard")
            logger.info("Dask: %d workers, scheduler %s%s; a point whose worker dies runs again "
                        "elsewhere (up to %s deaths per point%s)", len(self._known),
                        self._client.scheduler.address,
                        f", dashboard {self._client.dashboard_link}" if dashboard else "",
                        allowed, f"; at most {self.max_restarts} worker restarts"
                        if self.scheduler is None else "")
        return self._client

    def _connect(self):
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            # a spawned process per worker: a script that gets here needs the
            # `if __name__ == "__main__":` guard (the workers re-import the main module)
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, host="127.0.0.1", env=WORKER_ENV,
                                         preload=[__name__])  # dask_setup, below
            return Client(self._cluster)
        try:
            client = Client(self.scheduler, timeout=self.connect_timeout)
        except OSError as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.scheduler} "
                               f"({_one_line(err)}); is `dask scheduler` running there?"
                               ) from None
        self._client = client  # closed by client() if no worker comes
        start = time.monotonic()
        while not client.scheduler_info(n_workers=-1)["workers"]:
            self._wait_for_workers(start)
            time.sleep(POLL)
        return client

    def _wait_for_workers(self, since: float) -> None:
        """Log a line every WAIT_LOG s while there is no worker; ClusterError after
        worker_timeout s."""
        now = time.monotonic()
        waited = now - since
        if waited > self.worker_timeout:
            start = f"`dask worker {self.scheduler} --nthreads 1`" if self.scheduler else \
                "workers = 1 (no cluster)"
            raise ClusterError(f"no Dask worker on {self.where} for {waited:.0f} s (the "
                               f"limit, ${WORKER_TIMEOUT_VARIABLE}, is {self.worker_timeout:g} "
                               f"s); start some with {start}")
        if self._logged_at is None or now - self._logged_at >= WAIT_LOG:
            self._logged_at = now
            logger.warning("Dask: no worker on %s for %.0f s; waiting up to %g s",
                           self.where, waited, self.worker_timeout)

    def watch(self) -> None:
        """One look at the cluster while a sweep runs (the rules in the class docstring):
        counts and logs the workers that left, restarts lost local workers within the budget,
        and raises ClusterError when the scheduler is lost, the budget is spent or no worker
        has been there for ``worker_timeout`` s."""
        client = self._client
        lost_scheduler = ClusterError(f"lost the connection to {self.where} (client status "
                                      f"{client.status})")
        if client.status != "running":
            raise lost_scheduler
        try:
            workers = set(client.scheduler_info(n_workers=-1)["workers"])
        except Exception:
            raise lost_scheduler from None
        gone, self._known = sorted(self._known - workers), workers
        for address in gone:
            if self.scheduler is None:
                self.restarts += 1
                logger.warning("Dask: local worker %s died (%d of at most %d restarts)",
                               address, self.restarts, self.max_restarts)
            else:
                logger.warning("Dask: worker %s left the scheduler", address)
        if self.restarts > self.max_restarts:
            raise ClusterError(f"the workers of {self.where} died {self.restarts} times, more "
                               f"than the {self.max_restarts} restarts allowed "
                               f"(${RESTARTS_VARIABLE}); something kills them (memory?)")
        if self.scheduler is None:
            self._respawn()
        if workers:
            self._empty_since = self._logged_at = None
        else:
            if self._empty_since is None:
                self._empty_since = time.monotonic()
            self._wait_for_workers(self._empty_since)

    def _respawn(self) -> None:
        """Start a new nanny for every worker of the LocalCluster's spec whose nanny is gone
        or closed (a restart that fails counts against the budget, and is tried again at the
        next look)."""
        from distributed.core import Status

        cluster = self._cluster

        async def respawn():
            names = [name for name in cluster.worker_spec if name not in cluster.workers
                     or cluster.workers[name].status in (Status.closed, Status.failed)]
            for name in names:
                cluster.workers.pop(name, None)
            if names:
                await cluster._correct_state()
            return names

        try:
            names = cluster.sync(respawn, callback_timeout=CONNECT_TIMEOUT)
        except Exception as err:
            self.restarts += 1
            logger.warning("Dask: restarting a local worker failed (%s; %d of at most %d "
                           "restarts)", _one_line(err), self.restarts, self.max_restarts)
            return
        for name in names:
            logger.warning("Dask: local worker %s had no nanny left: started a new one", name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._client is not None:
                self._client.close()
        with contextlib.suppress(Exception):
            if self._cluster is not None:
                self._cluster.close()
        self._client = self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _setting(variable: str, default, kind):
    """A non-negative number from the environment variable (default if unset)."""
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if not (0 <= value < math.inf):
        raise ClusterError(f"${variable} must be a non-negative "
                           f"{'integer' if kind is int else 'number of seconds'}, got {text!r}")
    return value


class OneLineLog(logging.Filter):
    """Keeps Dask's log to one line per event: a record of a ``DASK_LOGGERS`` logger keeps the
    first line of its message and of its exception, no traceback. Installed on the handlers
    those records reach (the root logger's, as the command line sets it up, and Dask's own)."""

    def filter(self, record):
        if record.name.split(".")[0] in DASK_LOGGERS and (
                record.exc_info or record.exc_text or record.stack_info
                or "\n" in str(record.msg)):
            text = record.getMessage().strip().splitlines()[:1]
            if record.exc_info and record.exc_info[1] is not None:
                text.append(f"({_one_line(record.exc_info[1])})")
            record.msg, record.args = " ".join(text), ()
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    @classmethod
    def install(cls) -> None:
        import distributed  # noqa: F401  (sets up its loggers)

        for name in ("", *DASK_LOGGERS):
            for handler in logging.getLogger(name).handlers:
                if not any(isinstance(f, cls) for f in handler.filters):
                    handler.addFilter(cls())


def dask_setup(worker) -> None:
    """Dask's preload hook, run in every LocalCluster worker as it starts (restarts too): their
    stderr is the client's, so their log keeps one line per event as well."""
    OneLineLog.install()


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
    _make_folder(folder)
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
                    results[i] = _run_point(task, points[i], data, label)
                    _save_point(folder, points[i], results[i])
                    bar.update(1)
            elif todo:
                _run_dask(cluster, task, points, todo, results, folder, bar, data, label)
        finally:
            if own:
                cluster.close()
    return results


def _run_point(task, point, data, label):
    """``task(point)`` (or ``task(point, data)``) in this process; PointError if it raises."""
    try:
        return task(point) if data is None else task(point, data)
    except Exception as err:
        raise _point_error(label, point, err) from err


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _write_error(folder, err, "create the folder") from None


def _log_skipped(label, skipped, total, folder):
    if skipped:
        logger.info("%s: %d of %d points loaded from checkpoints in %s", label, skipped, total,
                    folder)


def _run_dask(cluster, task, points, todo, results, folder, bar, data, label):
    """The points ``todo`` as Dask futures; each result is checkpointed as it arrives, and the
    cluster is watched every POLL s (:meth:`SweepCluster.watch`). A point that raises does not
    stop the others: every point already submitted runs to its end and is kept, then the first
    failure is raised as a PointError naming its point. A cluster failure (a ClusterError from
    the watch, a point whose workers all died, a point the scheduler lost) and a checkpoint
    that cannot be written (WriteError) stop the sweep at once: the points not finished are
    cancelled, the finished ones written, and the error says how many are kept."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client = cluster.client()
    futures, failures, args = {}, [], ()
    try:
        # data as one object, copied to every worker once (scatter of a dict would split it)
        args = () if data is None else (client.scatter([data], broadcast=True, hash=False)[0],)
        futures = {client.submit(task, points[i], *args, pure=False): i for i in todo}
        pending = as_completed(futures)
        looked = time.monotonic()
        while not pending.is_empty():
            if not pending.has_ready():
                if time.monotonic() - looked >= POLL:
                    cluster.watch()
                    looked = time.monotonic()
                time.sleep(0.05)
                continue
            for future in pending.next_batch(block=False):
                i = futures[future]
                if future.status == "error":
                    err = future.exception()
                    if isinstance(err, KilledWorker):
                        raise ClusterError(f"the Dask workers running point "
                                           f"{_described(points[i])} died "
                                           f"{getattr(err, 'allowed_failures', 2) + 1} "
                                           "times (killed, out of memory, or a crash of the run "
                                           "itself: try that point with workers = 1)")
                    failures.append((i, err))
                elif future.status == "lost":  # its result died with a worker: rerun
                    pending.add(future)
                    continue
                elif future.status != "finished":  # cancelled, not by us
                    cluster.watch()  # names a lost scheduler
                    raise ClusterError(f"{cluster.where} cancelled point "
                                       f"{_described(points[i])}")
                else:
                    results[i] = future.result()
                    _save_point(folder, points[i], results[i])
                    bar.update(1)
                future.release()
    except Exception as err:  # a ClusterError, a WriteError, or Dask's machinery (comms)
        kept = _keep_finished(futures, points, results, folder, bar)
        done = f"{sum(r is not None for r in results)} of {len(points)} points"
        if isinstance(err, WriteError):
            raise WriteError(f"{label}: {err} [{done} written{kept}]") from None
        cause = err if isinstance(err, ClusterError) else _cluster_cause(cluster, err)
        raise ClusterError(f"{label}: {cause}; {done} are checkpointed in {folder}{kept}, run "
                           "the same command again to compute the rest") from None
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        with contextlib.suppress(Exception):
            for shared in args:
                shared.release()
    if failures:
        i, err = failures[0]
        if len(failures) > 1:
            logger.error("%s: %d points failed; the first is reported", label, len(failures))
        raise _point_error(label, points[i], err) from err


def _cluster_cause(cluster, err) -> ClusterError | str:
    """What an error of Dask's machinery means: a lost scheduler (the watch says so), or
    the error itself."""
    try:
        cluster.watch()
    except ClusterError as lost:
        return lost
    return f"{cluster.where} failed ({_one_line(err)})"


def _keep_finished(futures, points, results, folder, bar) -> str:
    """After a failure: cancel the futures still running, checkpoint those that finished and
    are not written yet (as many as can be written); '' or a note of what could not be."""
    if not futures:
        return ""
    client = next(iter(futures)).client
    unwritten = 0
    with contextlib.suppress(Exception):
        client.cancel([f for f in futures if not f.done()])
    for future, i in futures.items():
        if results[i] is None and future.status == "finished":
            try:
                results[i] = future.result(timeout=CONNECT_TIMEOUT)
                _save_point(folder, points[i], results[i])
                bar.update(1)
            except WriteError:
                results[i] = None
                unwritten += 1
            except Exception:  # the scheduler is gone with it
                results[i] = None
    return f" ({unwritten} more finished but could not be written)" if unwritten else ""


def _run_mpi(comm, task, points, folder, progress, label, data, collective):
    root = comm.rank == 0
    # rank 0 decides what is done, so every rank skips the same points
    results = _from_root(comm, lambda: _make_folder(folder) or [load_point(folder, p)
                                                                for p in points])
    todo = [i for i, r in enumerate(results) if r is None]
    if root:
        _log_skipped(label, len(points) - len(todo), len(points), folder)
    show = progress if root else False  # rank 0's bar only
    with tqdm(total=len(points), initial=len(points) - len(todo), desc=label, unit="point",
              file=sys.stderr, disable=None if show is None else not show) as bar:
        for i in todo:
            if not root and collective is not None and collective(points[i]):
                _run_point(task, points[i], data, label)  # this rank's part of the solve

            def run_and_save(point=points[i]):
                result = _run_point(task, point, data, label)
                _save_point(folder, point, result)
                return result

            results[i] = _from_root(comm, run_and_save)
            bar.update(1)
    return results


def _from_root(comm, work):
    """``work()`` on rank 0 and its value on every rank; a WriteError or PointError it raises
    is raised on every rank, so no rank waits for one that has stopped (mpirun would wait
    with it)."""
    from continuum.sphere.parallel import bcast_from_root

    outcome = None
    if comm.rank == 0:
        try:
            outcome = work()
        except (WriteError, PointError) as err:
            outcome = err
    outcome = bcast_from_root(comm, outcome)
    if isinstance(outcome, (WriteError, PointError)):
        raise outcome
    return outcome
