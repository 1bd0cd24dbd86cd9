"""Forgetting studies from TOML configs: ``meanfield run STUDY.toml``.

A study sweeps one axis (the LoRA norm ||Delta||_2, or beta) and, for every value, runs the base
and the fine-tuned model from the same initial measure on one or more backends, recording the
deviation D(t) = W_2 (and W_1) at the saved times, so each sweep gives a phase diagram over
(axis value, depth T). Output folder: ``study.nc`` (NetCDF, xarray; the whole config in the
attributes), ``phase_<backend>.png`` heat maps with the theory curves, ``deviation_T.png``,
``table.md``, and the checkpoints ``base/`` (one base run per backend on a norm sweep) and
``points/`` (the fine-tuned runs): re-running skips finished points.

The config schema is in :mod:`forgetting.config`, the figures and table in
:mod:`forgetting.report`.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from .bounds import gronwall_bound
from .config import base_model, build_models, initial_density
from .report import figures, table
from .runs import MeasureSeries, deviation, run_backend, time_to_deviation
from .sweep import load_point, point_key, run_sweep

__all__ = ["evaluate_base", "evaluate_point", "run_study"]

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
    cfg = {k: v for k, v in point["config"].items() if k != "perturbation"}
    value = point["value"] if cfg["sweep"]["axis"] == "beta" else None
    return {"config": cfg, "backend": point["backend"], "value": value}


def evaluate_base(point: dict) -> dict:
    """Worker task: the base run of a backend (and a beta value), its measures as arrays."""
    run = _run(point, base_model(point["config"], point["value"]))
    return {**MeasureSeries.from_run(run).arrays(),
            "under_resolved_from": np.array(_unresolved(run))}


def evaluate_point(point: dict, base_folder: str) -> dict:
    """Worker task: the fine-tuned run of one (backend, value) and its deviation D(t) from the
    shared base run (read from its checkpoint in ``base_folder``)."""
    stored = load_point(base_folder, base_point(point))
    if stored is None:
        raise RuntimeError(f"base run of {point['backend']} missing from {base_folder}")
    base = MeasureSeries(stored["times"], stored["support"], stored["weights"])
    model, tuned = build_models(point["config"], point["value"])
    same = (np.array_equal(model.V, tuned.V) and np.array_equal(model.A, tuned.A))
    run = base if same else _run(point, tuned)  # ||Delta|| = 0: the same run, D = 0
    delta_norm = float(np.linalg.norm(tuned.V - model.V, 2))
    return {"times": base.times, "deviation_w2": deviation(base, run, p=2),
            "deviation_w1": deviation(base, run, p=1),
            "gronwall": gronwall_bound(model, delta_norm, base.times) if delta_norm > 0
            else np.zeros(len(base.times)),
            "under_resolved_from": np.array(min(_unresolved(run),
                                                float(stored["under_resolved_from"])))}


def study_point(cfg: dict, backend: str, value: float) -> dict:
    """A fine-tuned point: the config sections that determine its result (not the output
    folder, the worker count or the other sweep values, so changing those re-uses
    checkpoints), the backend and the sweep value."""
    physics = {k: cfg[k] for k in ("model", "perturbation", "initial", "time")}
    physics["backend"] = {k: v for k, v in cfg["backend"].items() if k != "kinds"}
    physics["sweep"] = {"axis": cfg["sweep"]["axis"]}
    return {"config": physics, "backend": backend, "value": value}


def run_study(cfg: dict, progress: bool | None = None) -> dict:
    """Run a validated study config; returns a summary with the output paths and the table.

    Two checkpointed sweeps: the base runs (one per backend, or per backend and beta value
    when the axis is beta) into ``base/``, then the fine-tuned runs into ``points/``, each
    compared with its base run. Messages go to the ``forgetting.study`` logger; ``progress``
    is the sweeps' tqdm bar (None: only when stderr is a terminal)."""
    out = Path(cfg["study"]["output"])
    out.mkdir(parents=True, exist_ok=True)
    values = [float(v) for v in cfg["sweep"]["values"]]
    points = [study_point(cfg, k, v) for k in cfg["backend"]["kinds"] for v in values]
    bases = list({point_key(base_point(p)): base_point(p) for p in points}.values())
    workers = cfg["study"]["workers"]
    logger.info("study '%s': %d base runs, %d fine-tuned points (%s x %s in %s), %d workers, "
                "output %s", cfg["study"]["name"], len(bases), len(points),
                ", ".join(cfg["backend"]["kinds"]), cfg["sweep"]["axis"], values, workers, out)
    run_sweep(evaluate_base, bases, out / "base", workers=workers, progress=progress,
              label=f"{cfg['study']['name']} base")
    task = functools.partial(evaluate_point, base_folder=str(out / "base"))
    results = run_sweep(task, points, out / "points", workers=workers, progress=progress,
                        label=cfg["study"]["name"])
    delta = cfg["sweep"]["delta"]
    for r in results:
        r["t_dev"] = np.array(time_to_deviation(r["times"], r["deviation_w2"], delta))
    by_backend = {k: [r for p, r in zip(points, results) if p["backend"] == k]
                  for k in cfg["backend"]["kinds"]}
    dataset = _dataset(cfg, values, by_backend)
    nc = out / "study.nc"
    dataset.to_netcdf(nc, engine="h5netcdf")
    files = {"data": str(nc)}
    files.update(figures(cfg, values, by_backend, out))
    text = table(cfg, values, by_backend)
    (out / "table.md").write_text(text + "\n")
    files["table"] = str(out / "table.md")
    for name, path in files.items():
        logger.debug("wrote %s: %s", name, path)
    return {"files": files, "values": values, "table": text,
            "deviation_T": {k: [float(r["deviation_w2"][-1]) for r in rs]
                            for k, rs in by_backend.items()}}


def _dataset(cfg, values, by_backend):
    import xarray as xr

    times = next(iter(by_backend.values()))[0]["times"]
    data = {}
    for k, rs in by_backend.items():
        for var in ("deviation_w2", "deviation_w1", "gronwall"):
            data[f"{var}_{k}"] = ((cfg["sweep"]["axis"], "time"), np.stack([r[var] for r in rs]))
        for var in ("t_dev", "under_resolved_from"):
            data[f"{var}_{k}"] = ((cfg["sweep"]["axis"],),
                                  np.array([float(r[var]) for r in rs]))
    return xr.Dataset(data, coords={cfg["sweep"]["axis"]: values, "time": times},
                      attrs={"config": json.dumps(cfg), "ground_cost": "geodesic (arc length)",
                             "under_resolved_from": "time from which a continuum solver warned "
                             "that clusters are narrower than its grid (inf: never)",
                             "deviation": "W_p(base, fine-tuned) from the same initial measure"})
