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
import math
from pathlib import Path

import numpy as np

from continuum.sphere.parallel import bcast_from_root, mpi_world

from .bounds import paired_heads
from .config import AUTO, ConfigError, base_model, build_models, initial_density, study_levels
from .refinement import settle_levels
from .report import REFINEMENT, figures, table
from .runs import MeasureSeries, deviations, gronwall_curve, run_backend, time_to_deviation
from .sweep import (
    FolderBusy,
    FolderLock,
    SweepCluster,
    WriteError,
    point_key,
    run_sweep,
    write_atomic,
)

__all__ = ["evaluate_run", "evaluate_point", "run_study"]

logger = logging.getLogger(__name__)


def _run(point: dict, model):
    """One run of ``model`` on the point's backend, from the study's initial measure. A
    continuum run the solver knows to be under-resolved comes back with its flag
    (``on_unresolved="warn"``: the solver's warnings go out as they are, never silenced)."""
    cfg, backend = point["config"], point["backend"]
    times = np.linspace(0.0, cfg["time"]["T"], cfg["time"]["n_times"])
    b = cfg["backend"]
    if backend == "particles":
        options = {"method": b["method"]}
        if b["method"] == "dop853":
            options.update(rtol=b["rtol"], atol=1e-3 * b["rtol"])
        if "norm" in cfg["model"]:  # issue 24: a LayerNorm placement other than "post"
            options["norm"] = cfg["model"]["norm"]
        return run_backend(model, "particles", initial_density(cfg), cfg["time"]["T"], times,
                           n=b["n"], seed=b["seed"], **options)
    return run_backend(model, backend, initial_density(cfg), cfg["time"]["T"], times,
                       resolution=b["resolution"], on_unresolved="warn")


def _unresolved(run) -> tuple[float, str]:
    """(time from which the run is under-resolved (inf: never), the solver's reason)."""
    info = getattr(run, "info", {})
    if "under_resolved_from" not in info:
        return np.inf, ""
    reason = info.get("under_resolved") or \
        f"the {info.get('method', 'continuum')} solver's resolution indicator fired"
    return float(info["under_resolved_from"]), str(reason)


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
    if all(np.array_equal(h.V, h2.V) and np.array_equal(h.A, h2.A)
           for *_, h, h2 in paired_heads(model, tuned)):
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
    since, reason = _unresolved(run)
    return {**MeasureSeries.from_run(run).arrays(), "under_resolved_from": np.array(since),
            "under_resolved_reason": np.array(reason)}


def _stored_run(runs: dict, run_point):
    stored = runs.get(point_key(run_point))
    if stored is None:
        raise RuntimeError(f"{run_point['run']} run of {run_point['backend']} (value "
                           f"{run_point['value']}) missing from the study's runs")
    reason = str(stored.get("under_resolved_reason", ""))  # older checkpoints: no reason
    flag = (float(stored["under_resolved_from"]), reason)
    return MeasureSeries(stored["times"], stored["support"], stored["weights"]), flag


def evaluate_point(point: dict, runs: dict) -> dict:
    """Worker task: the deviation D(t) between the base and fine-tuned runs of one
    (backend, value), taken from ``runs`` ({point_key(run point): evaluate_run result}), with
    its error bounds, and the Gronwall bound."""
    base, unresolved = _stored_run(runs, base_point(point))
    tuned = tuned_point(point)
    run, unresolved_tuned = (base, unresolved) if tuned is None else \
        _stored_run(runs, tuned)
    since, reason = min(unresolved, unresolved_tuned)  # the earlier flag of the two runs
    if np.isfinite(since):
        which = "base" if unresolved[0] == since else "fine-tuned"
        reason = f"{which} run: {reason or 'the solver flagged it'}"
    _, gronwall = gronwall_curve(*build_models(point["config"], point["value"]), base.times)
    D = deviations(base, run, point["config"]["deviation"]["max_support"])
    return {"times": base.times, "deviation_w2": D["w2"], "deviation_w1": D["w1"],
            "deviation_w2_bound": D["w2_bound"], "deviation_w1_bound": D["w1_bound"],
            "gronwall": gronwall, "under_resolved_from": np.array(since),
            "under_resolved_reason": np.array(reason)}


def is_fem(run_point: dict) -> bool:
    """A DG run: under MPI every rank takes part in it."""
    return run_point["backend"] == "fem"


#: [backend] keys that do not change a run's result (the study's handling of results only)
NOT_PHYSICS = ("kinds", "allow_unresolved", "tol", "max_resolution")


def study_point(cfg: dict, backend: str, value: float, resolution=None) -> dict:
    """A fine-tuned point: the config sections that determine its result (not the output
    folder, the worker count, the other sweep values or how results are judged, so changing
    those re-uses checkpoints), the backend, the sweep value and, for a continuum backend,
    the resolution of this run (a level of ``resolution = "auto"``, or the fixed one)."""
    physics = {k: cfg[k] for k in ("model", "perturbation", "initial", "time", "deviation")}
    physics["backend"] = {k: v for k, v in cfg["backend"].items() if k not in NOT_PHYSICS}
    if backend == "particles":
        del physics["backend"]["resolution"]
    else:
        physics["backend"]["resolution"] = resolution
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
    # (in use: FolderBusy; the lock file cannot be written: WriteError; both reach every rank)
    lock, failure = FolderLock(out), None
    if root:
        try:
            lock.__enter__()
        except (FolderBusy, WriteError) as err:
            failure = (type(err).__name__, str(err))
    if comm is not None:
        failure = bcast_from_root(comm, failure if root else None)
    if failure is not None:
        kind, message = failure
        raise (FolderBusy if kind == "FolderBusy" else WriteError)(message)
    try:
        return _run_locked(cfg, out, workers, scheduler, root, progress)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(cfg, out, workers, scheduler, root, progress):
    values = [float(v) for v in cfg["sweep"]["values"]]
    kinds = cfg["backend"]["kinds"]
    auto = cfg["backend"]["resolution"] == AUTO
    ladders = {k: (None,) if k == "particles" else study_levels(cfg, k) for k in kinds}
    # the levels each (backend, value) asks for: "auto" starts with its two coarsest
    wanted = {(k, v): list(ladders[k][:2 if auto and k != "particles" else 1])
              for k in kinds for v in values}
    if scheduler is not None and workers > 1:
        logger.info("study.workers = %d ignored: the runs go to the Dask scheduler at %s",
                    workers, scheduler)
    logger.info("study '%s': %d points (%s x %s in %s), %s, output %s", cfg["study"]["name"],
                len(wanted), ", ".join(kinds), cfg["sweep"]["axis"], values,
                f"scheduler {scheduler}" if scheduler else f"{workers} workers", out)
    done = {}  # (backend, value, resolution) -> point result
    settled = {}  # (backend, value) -> refinement verdict (auto only)
    with SweepCluster(workers, scheduler) as cluster:
        while True:
            todo = [(k, v, r) for (k, v), levels in wanted.items() for r in levels
                    if (k, v, r) not in done]
            if not todo:
                break
            done.update(_compute(cfg, todo, out, cluster, progress))
            for (k, v), levels in wanted.items():
                if len(levels) < 2:
                    continue
                settled[k, v] = settle_levels([done[k, v, r]["deviation_w2"] for r in levels],
                                              [float(done[k, v, r]["t_dev"]) for r in levels],
                                              cfg["backend"]["tol"], k)
                if not settled[k, v]["converged"] and levels[-1] != ladders[k][-1]:
                    levels.append(ladders[k][len(levels)])
    by_backend = {k: [_accepted(cfg, done, wanted[k, v], settled.get((k, v)), k, v)
                      for v in values] for k in kinds}
    _check_saved_times(cfg, by_backend)
    name = cfg["study"]["name"]
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
    flagged = [{"backend": k, "value": v, "time": float(r["flagged_from"]),
                "reason": str(r["flag_reason"])}
               for k, rs in by_backend.items() for v, r in zip(values, rs)
               if np.isfinite(r["flagged_from"])]
    if flagged:
        logger.warning("study '%s': %d point(s) flagged (under-resolved or not converged), "
                       "marked in table.md, the figures and study.nc", name, len(flagged))
    return {"files": files, "values": values, "table": text, "flagged": flagged,
            "deviation_T": {k: [float(r["deviation_w2"][-1]) for r in rs]
                            for k, rs in by_backend.items()}}


def _compute(cfg, todo, out, cluster, progress) -> dict:
    """The point results of ``todo`` [(backend, value, resolution)]: two checkpointed sweeps,
    every distinct run once (continuum runs first, the long ones), then the deviations."""
    name = cfg["study"]["name"]
    points = [study_point(cfg, k, v, r) for k, v, r in todo]
    runs = {}
    for p in sorted(points, key=lambda p: p["backend"] == "particles"):
        for r in (base_point(p), tuned_point(p)):
            if r is not None:
                runs.setdefault(point_key(r), r)
    logger.info("study '%s': %d runs for %d points", name, len(runs), len(points))
    run_list = list(runs.values())
    stored = run_sweep(evaluate_run, run_list, out / "runs", cluster=cluster,
                       collective=is_fem, progress=progress, label=f"{name} runs")
    stored = {point_key(r): result for r, result in zip(run_list, stored)}
    # on S^1 D is a CDF formula (milliseconds): sending the runs to workers would cost more
    results = run_sweep(evaluate_point, points, out / "points", data=stored,
                        cluster=cluster if cfg["model"]["d"] > 2 else SweepCluster(),
                        progress=progress, label=f"{name} deviations")
    delta = cfg["sweep"]["delta"]
    for p, r in zip(points, results):
        r["t_dev"] = np.array(time_to_deviation(r["times"], r["deviation_w2"], delta))
        r["identical"] = tuned_point(p) is None  # one run twice: D = 0 exactly
    return dict(zip(todo, results))


def _accepted(cfg, done, levels, verdict, kind, value) -> dict:
    """The result of one (backend, value) at its finest level, with the study's flag: the
    solver's under-resolution (fixed resolution) or a refinement that did not converge
    (``"auto"``), and the error estimate of the refinement (NaN: none)."""
    r = dict(done[kind, value, levels[-1]])
    r["resolution"] = np.array(-1 if levels[-1] is None else levels[-1])
    r["error_w2"] = np.full(len(r["times"]), np.nan)
    r["error_t_dev"] = np.array(np.nan)
    r["flagged_from"], r["flag_reason"] = float(r["under_resolved_from"]), \
        str(r.get("under_resolved_reason", ""))
    if r["identical"]:  # ||Delta|| = 0: one run twice, D = 0 exactly, whatever the flag
        r["flagged_from"], r["flag_reason"] = np.inf, ""
    elif verdict is not None:
        r["error_w2"], r["error_t_dev"] = verdict["error_w2"], np.array(verdict["error_t_dev"])
        if verdict["converged"]:
            r["flagged_from"], r["flag_reason"] = np.inf, ""
        else:
            i = verdict["unsettled_from"]
            r["flagged_from"] = float(r["times"][i]) if i is not None else \
                float(min(r["t_dev"], done[kind, value, levels[-2]]["t_dev"]))
            r["flag_reason"] = (
                f"{REFINEMENT} within max_resolution = {levels[-1]}:"
                f" between resolutions {levels[-2]} and {levels[-1]} D changed by "
                f"{verdict['change']:.2g} and T_dev by {verdict['change_t_dev']:.2g} (tol "
                f"{cfg['backend']['tol']:g})")
    return r


def _check_saved_times(cfg, by_backend) -> None:
    """The table's D(T) is D at the last saved time: that time must be T."""
    T = cfg["time"]["T"]
    for kind, rs in by_backend.items():
        for r in rs:
            if len(r["times"]) < 2 or not math.isclose(r["times"][-1], T, rel_tol=1e-12):
                raise RuntimeError(f"{kind}: the saved times end at {r['times'][-1]:g}, not at "
                                   f"T = {T:g}: D(T) would be misreported")


def _dataset(cfg, values, by_backend):
    import xarray as xr

    axis = cfg["sweep"]["axis"]
    times = next(iter(by_backend.values()))[0]["times"]
    data = {}
    for k, rs in by_backend.items():
        # the error estimates exist for the continuum backends of resolution = "auto" only
        refined = k != "particles" and cfg["backend"]["resolution"] == AUTO
        for var in ("deviation_w2", "deviation_w1", "deviation_w2_bound", "deviation_w1_bound",
                    "gronwall") + (("error_w2",) if refined else ()):
            data[f"{var}_{k}"] = ((axis, "time"), np.stack([r[var] for r in rs]),
                                  VARIABLES.get(var, {}))
        for var in ("t_dev", "under_resolved_from", "flagged_from", "resolution") \
                + (("error_t_dev",) if refined else ()):
            data[f"{var}_{k}"] = ((axis,), np.array([r[var] for r in rs], dtype=float),
                                  VARIABLES.get(var, {}))
        for var in ("under_resolved_reason", "flag_reason"):
            data[f"{var}_{k}"] = ((axis,), np.array([str(r.get(var, "")) for r in rs]),
                                  VARIABLES[var])
    return xr.Dataset(data, coords={axis: values, "time": times},
                      attrs={"config": json.dumps(cfg), "ground_cost": "geodesic (arc length)",
                             "deviation": "W_p(base, fine-tuned) from the same initial measure",
                             "deviation_bound": "certified bound on |error| of deviation_w*: 0 "
                             "where exact, else the cost of merging each measure into "
                             "deviation.max_support clusters (continuum.wasserstein."
                             "wasserstein_reduced)"})


#: attributes of the per-backend variables of study.nc
VARIABLES = {
    "t_dev": {"units": "time (depth)", "description": "T_dev(sweep.delta) = first t with "
              "D(t) >= delta, linearly interpolated (inf: never within T)"},
    "under_resolved_from": {
        "units": "time (depth)", "description": "first saved time from which the continuum "
        "solver (the accepted run, base or fine-tuned) flagged itself under-resolved "
        "(continuum.UnderResolved: an FV cluster narrower than a cell, a spectral tail above "
        "tolerance, ...); inf: never, and always for particles"},
    "under_resolved_reason": {"description": "why the solver flagged the run ('' if not)"},
    "flagged_from": {
        "units": "time (depth)", "description": "the study's flag: values at t >= this time "
        "are not resolved (fixed resolution: under_resolved_from; resolution = 'auto': the "
        "first saved time whose D changed by >= backend.tol between the last two levels when "
        "the refinement did not converge within max_resolution; inf: not flagged)"},
    "flag_reason": {"description": "why the point is flagged ('' if not)"},
    "error_w2": {"units": "radians (geodesic)", "description": "resolution = 'auto': error "
                 "estimate of deviation_w2 at the accepted level, the last change between "
                 "levels times rho / (1 - rho), rho the observed ratio of successive changes "
                 "(three levels) or 1/2 (two levels: design order 1); written for "
                 "resolution = 'auto' only"},
    "error_t_dev": {"units": "time (depth)", "description": "resolution = 'auto': error "
                    "estimate of t_dev (the same rho); written for resolution = 'auto' only"},
    "resolution": {"description": "resolution of the accepted runs (-1: particles)"},
}
