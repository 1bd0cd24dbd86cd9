"""Forgetting studies from TOML configs: ``meanfield run STUDY.toml``.

A study sweeps one axis (the LoRA norm ||Delta||_2, or beta) and, for every value, runs the base
and the fine-tuned model from the same initial measure on one or more backends, recording the
deviation D(t) = W_2 (and W_1) at the saved times, so each sweep gives a phase diagram over
(axis value, depth T). Output folder: ``study.nc`` (NetCDF, xarray; the whole config in the
attributes), ``phase_<backend>.png`` heat maps with the theory curves, ``deviation_T.png``,
``table.md``, and the checkpoints ``runs/`` (every distinct run once: one base run per
backend on a norm sweep) and ``points/`` (the deviations): re-running skips finished work.

Where the runs go (:mod:`forgetting.sweep`): ``[study] workers = 1`` in this process,
``workers = N`` on a Dask LocalCluster of N single-threaded processes, ``[study] scheduler =
"tcp://host:port"`` on an existing Dask cluster. Under ``mpirun -n R`` every DG ("fem") run is
solved on all R ranks, the other runs and the deviations on rank 0, and rank 0 alone writes.

The config schema is in :mod:`forgetting.config`, the figures and table in
:mod:`forgetting.report`.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from continuum.sphere.parallel import bcast_from_root, mpi_world

from .config import ConfigError, base_model, build_models, initial_density
from .report import figures, table
from .runs import MeasureSeries, deviations, gronwall_curve, run_backend, time_to_deviation
from .sweep import FolderBusy, FolderLock, SweepCluster, point_key, run_sweep, write_atomic

__all__ = ["evaluate_run", "evaluate_point", "run_study"]

logger = logging.getLogger(__name__)


def _run(point: dict, model):
    """One run of ``model`` on the point's backend, from the study's initial measure."""
    cfg, backend = point["config"], point["backend"]
    times = np.linspace(0.0, cfg["time"]["T"], cfg["time"]["n_times"])
    b = cfg["backend"]
    if backend == "particles":
        options = {"method": b["method"]}
        if b["method"] == "dop853":
            options.update(rtol=b["rtol"], atol=1e-3 * b["rtol"])
        return run_backend(model, "particles", initial_density(cfg), cfg["time"]["T"], times,
                           n=b["n"], seed=b["seed"], **options)
    with warnings.catch_warnings():
        # the solvers warn when clusters outgrow the grid; recorded in the result instead
        warnings.simplefilter("ignore", UserWarning)
        return run_backend(model, backend, initial_density(cfg), cfg["time"]["T"], times,
                           resolution=b["resolution"])


def _unresolved(run) -> float:
    return float(getattr(run, "info", {}).get("under_resolved_from", np.inf))


def base_point(point: dict) -> dict:
    """The base run a fine-tuned point is compared with: it depends on the sweep value only
    when the value changes the base model (axis = beta), so a norm sweep has one per backend."""
    cfg = {k: v for k, v in point["config"].items() if k not in ("perturbation", "deviation")}
    value = point["value"] if cfg["sweep"]["axis"] == "beta" else None
    return {"config": cfg, "backend": point["backend"], "value": value, "run": "base"}


def tuned_point(point: dict):
    """The fine-tuned run of a point, or None when the fine-tuned model is the base model
    (||Delta|| = 0: the base run serves, D = 0)."""
    model, tuned = build_models(point["config"], point["value"])
    if np.array_equal(model.V, tuned.V) and np.array_equal(model.A, tuned.A):
        return None
    cfg = {k: v for k, v in point["config"].items() if k != "deviation"}
    return {"config": cfg, "backend": point["backend"], "value": point["value"],
            "run": "tuned"}


def evaluate_run(run_point: dict) -> dict:
    """Worker task: one run (base or fine-tuned model), its measures at the saved times as
    arrays (a MeasureSeries) and the time its solver warned of under-resolution (inf: never)."""
    cfg, value = run_point["config"], run_point["value"]
    model = base_model(cfg, value) if run_point["run"] == "base" else build_models(cfg, value)[1]
    run = _run(run_point, model)
    return {**MeasureSeries.from_run(run).arrays(),
            "under_resolved_from": np.array(_unresolved(run))}


def _stored_run(runs: dict, run_point):
    stored = runs.get(point_key(run_point))
    if stored is None:
        raise RuntimeError(f"{run_point['run']} run of {run_point['backend']} (value "
                           f"{run_point['value']}) missing from the study's runs")
    return MeasureSeries(stored["times"], stored["support"], stored["weights"]), \
        float(stored["under_resolved_from"])


def evaluate_point(point: dict, runs: dict) -> dict:
    """Worker task: the deviation D(t) between the base and fine-tuned runs of one
    (backend, value), taken from ``runs`` ({point_key(run point): evaluate_run result}), with
    its error bounds, and the Gronwall bound."""
    base, unresolved = _stored_run(runs, base_point(point))
    tuned = tuned_point(point)
    run, unresolved_tuned = (base, unresolved) if tuned is None else \
        _stored_run(runs, tuned)
    _, gronwall = gronwall_curve(*build_models(point["config"], point["value"]), base.times)
    D = deviations(base, run, point["config"]["deviation"]["max_support"])
    return {"times": base.times, "deviation_w2": D["w2"], "deviation_w1": D["w1"],
            "deviation_w2_bound": D["w2_bound"], "deviation_w1_bound": D["w1_bound"],
            "gronwall": gronwall,
            "under_resolved_from": np.array(min(unresolved, unresolved_tuned))}


def is_fem(run_point: dict) -> bool:
    """A DG run: under MPI every rank takes part in it."""
    return run_point["backend"] == "fem"


def study_point(cfg: dict, backend: str, value: float) -> dict:
    """A fine-tuned point: the config sections that determine its result (not the output
    folder, the worker count or the other sweep values, so changing those re-uses
    checkpoints), the backend and the sweep value."""
    physics = {k: cfg[k] for k in ("model", "perturbation", "initial", "time", "deviation")}
    physics["backend"] = {k: v for k, v in cfg["backend"].items() if k != "kinds"}
    physics["sweep"] = {"axis": cfg["sweep"]["axis"]}
    return {"config": physics, "backend": backend, "value": value}


def run_study(cfg: dict, progress: bool | None = None) -> dict:
    """Run a validated study config; returns a summary with the output paths and the table.

    Two checkpointed sweeps (:func:`forgetting.sweep.run_sweep`, where ``study.workers`` and
    ``study.scheduler`` say): every distinct run (the base run, one per backend on a norm sweep,
    and the fine-tuned runs) into ``runs/``, stored as measures at the saved times; then the
    deviation of every point from those runs into ``points/``. Under MPI the DG runs go on
    every rank and rank 0 writes; ``study.scheduler`` is refused there (ConfigError).
    Messages go to the ``forgetting.study`` logger; ``progress`` is the sweeps' tqdm bar
    (None: only when stderr is a terminal)."""
    workers, scheduler = cfg["study"]["workers"], cfg["study"]["scheduler"]
    comm = mpi_world()
    if comm is not None:
        if scheduler is not None:
            raise ConfigError(f"'study.scheduler' cannot be used under MPI ({comm.size} ranks): "
                              "run either on a Dask cluster or with mpirun")
        if workers > 1:
            logger.info("under MPI (%d ranks) the runs go one after another, each DG solve on "
                        "every rank: study.workers = %d ignored", comm.size, workers)
        workers = 1
    root = comm is None or comm.rank == 0
    out = Path(cfg["study"]["output"])
    # one run per output folder at a time; under MPI rank 0 takes the lock and tells the
    # others whether it got it (a rank that went on alone would hang in the first DG solve)
    lock, busy = FolderLock(out), None
    if root:
        try:
            lock.__enter__()
        except FolderBusy as err:
            busy = str(err)
    if comm is not None:
        busy = bcast_from_root(comm, busy if root else None)
    if busy is not None:
        raise FolderBusy(busy)
    try:
        return _run_locked(cfg, out, workers, scheduler, root, progress)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(cfg, out, workers, scheduler, root, progress):
    values = [float(v) for v in cfg["sweep"]["values"]]
    points = [study_point(cfg, k, v) for k in cfg["backend"]["kinds"] for v in values]
    runs = {}  # every distinct run once: continuum runs first (the long ones)
    for p in sorted(points, key=lambda p: p["backend"] == "particles"):
        for r in (base_point(p), tuned_point(p)):
            if r is not None:
                runs.setdefault(point_key(r), r)
    logger.info("study '%s': %d runs, %d points (%s x %s in %s), %s, output %s",
                cfg["study"]["name"], len(runs), len(points),
                ", ".join(cfg["backend"]["kinds"]), cfg["sweep"]["axis"], values,
                f"scheduler {scheduler}" if scheduler else f"{workers} workers", out)
    name = cfg["study"]["name"]
    with SweepCluster(workers, scheduler) as cluster:
        run_list = list(runs.values())
        stored = run_sweep(evaluate_run, run_list, out / "runs", cluster=cluster,
                           collective=is_fem, progress=progress, label=f"{name} runs")
        stored = {point_key(r): result for r, result in zip(run_list, stored)}
        # on S^1 D is a CDF formula (milliseconds): sending the runs to workers would cost more
        results = run_sweep(evaluate_point, points, out / "points", data=stored,
                            cluster=cluster if cfg["model"]["d"] > 2 else SweepCluster(),
                            progress=progress, label=f"{name} deviations")
    delta = cfg["sweep"]["delta"]
    for r in results:
        r["t_dev"] = np.array(time_to_deviation(r["times"], r["deviation_w2"], delta))
    by_backend = {k: [r for p, r in zip(points, results) if p["backend"] == k]
                  for k in cfg["backend"]["kinds"]}
    text = table(cfg, values, by_backend)
    files = {}
    if root:  # under MPI every rank has the results; rank 0 writes them
        # data and table first, each written whole (temporary file + rename); the figures
        # last, so a plotting failure loses nothing
        dataset = _dataset(cfg, values, by_backend)
        write_atomic(out / "study.nc", lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))
        files["data"] = str(out / "study.nc")
        write_atomic(out / "table.md", lambda tmp: tmp.write_text(text + "\n"))
        files["table"] = str(out / "table.md")
        try:
            files.update(figures(cfg, values, by_backend, out))
        except Exception as err:  # data and table are on disk: report, do not lose them
            logger.error("figures of study '%s' failed (%s: %s); the data (%s) and the table "
                         "are written", name, type(err).__name__, err, files["data"])
    for kind, path in files.items():
        logger.debug("wrote %s: %s", kind, path)
    return {"files": files, "values": values, "table": text,
            "deviation_T": {k: [float(r["deviation_w2"][-1]) for r in rs]
                            for k, rs in by_backend.items()}}


def _dataset(cfg, values, by_backend):
    import xarray as xr

    times = next(iter(by_backend.values()))[0]["times"]
    data = {}
    for k, rs in by_backend.items():
        for var in ("deviation_w2", "deviation_w1", "deviation_w2_bound", "deviation_w1_bound",
                    "gronwall"):
            data[f"{var}_{k}"] = ((cfg["sweep"]["axis"], "time"), np.stack([r[var] for r in rs]))
        for var in ("t_dev", "under_resolved_from"):
            data[f"{var}_{k}"] = ((cfg["sweep"]["axis"],),
                                  np.array([float(r[var]) for r in rs]))
    return xr.Dataset(data, coords={cfg["sweep"]["axis"]: values, "time": times},
                      attrs={"config": json.dumps(cfg), "ground_cost": "geodesic (arc length)",
                             "under_resolved_from": "time from which a continuum solver warned "
                             "that clusters are narrower than its grid (inf: never)",
                             "deviation": "W_p(base, fine-tuned) from the same initial measure",
                             "deviation_bound": "certified bound on |error| of deviation_w*: 0 "
                             "where exact, else the cost of merging each measure into "
                             "deviation.max_support clusters (continuum.wasserstein."
                             "wasserstein_reduced)"})
