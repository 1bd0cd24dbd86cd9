"""Forgetting studies from TOML configs: ``meanfield run STUDY.toml``.

A study sweeps one axis (the LoRA norm ||Delta||_2, or beta) and, for every value, runs the base
and the fine-tuned model from the same initial measure on one or more backends, recording the
deviation D(t) = W_2 (and W_1) at the saved times, so each sweep gives a phase diagram over
(axis value, depth T). Output folder: ``study.nc`` (NetCDF, xarray; the whole config in the
attributes), ``phase_<backend>.png`` heat maps with the theory curves, ``deviation_T.png``,
``table.md``, and ``points/`` (per-point checkpoints: re-running skips finished points).

The config schema is in :mod:`forgetting.config`, the figures and table in
:mod:`forgetting.report`.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from .config import build_models, initial_density
from .report import figures, table
from .runs import forgetting_run
from .sweep import run_sweep

__all__ = ["evaluate_point", "run_study"]

logger = logging.getLogger(__name__)


def evaluate_point(point: dict) -> dict:
    """Worker task: base and fine-tuned runs for one (backend, value); D(t) and friends."""
    cfg, backend, value = point["config"], point["backend"], point["value"]
    base, tuned = build_models(cfg, value)
    T, nt = cfg["time"]["T"], cfg["time"]["n_times"]
    times = np.linspace(0.0, T, nt)
    rho0 = initial_density(cfg)
    b = cfg["backend"]
    if backend == "particles":
        options = {"method": b["method"]}
        if b["method"] == "dop853":
            options.update(rtol=b["rtol"], atol=1e-3 * b["rtol"])
        run = forgetting_run(base, tuned, backend="particles", rho0=rho0, T=T, times=times,
                             n=b["n"], seed=b["seed"], **options)
    else:
        with warnings.catch_warnings():
            # the solvers warn when clusters outgrow the grid; recorded below instead
            warnings.simplefilter("ignore", UserWarning)
            run = forgetting_run(base, tuned, backend=backend, rho0=rho0, T=T, times=times,
                                 resolution=b["resolution"])
    unresolved = [r.info.get("under_resolved_from", np.inf) for r in (run.base, run.tuned)
                  if hasattr(r, "info")]
    return {"times": run.times, "deviation_w2": run.deviation_w2,
            "deviation_w1": run.deviation_w1, "gronwall": run.gronwall,
            "t_dev": np.array(run.time_to_deviation(cfg["sweep"]["delta"])),
            "under_resolved_from": np.array(min(unresolved, default=np.inf))}


def run_study(cfg: dict, progress: bool | None = None) -> dict:
    """Run a validated study config; returns a summary with the output paths and the table.

    Messages go to the ``forgetting.study`` logger; ``progress`` is the sweep's tqdm bar
    (None: only when stderr is a terminal)."""
    out = Path(cfg["study"]["output"])
    out.mkdir(parents=True, exist_ok=True)
    values = [float(v) for v in cfg["sweep"]["values"]]
    points = [{"config": cfg, "backend": k, "value": v}
              for k in cfg["backend"]["kinds"] for v in values]
    logger.info("study '%s': %d points (%s x %s in %s), %d workers, output %s",
                cfg["study"]["name"], len(points), ", ".join(cfg["backend"]["kinds"]),
                cfg["sweep"]["axis"], values, cfg["study"]["workers"], out)
    results = run_sweep(evaluate_point, points, out, workers=cfg["study"]["workers"],
                        label=cfg["study"]["name"], progress=progress)
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
