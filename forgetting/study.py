"""Forgetting studies from TOML configs: ``meanfield run STUDY.toml``.

A study sweeps one axis (the LoRA norm ||Delta||_2, or beta) and, for every value, runs the base
and the fine-tuned model from the same initial measure on one or more backends, recording the
deviation D(t) = W_2 (and W_1) at the saved times, so each sweep gives a phase diagram over
(axis value, depth T). Output folder: ``study.nc`` (NetCDF, xarray; the whole config in the
attributes), ``phase_<backend>.png`` heat maps with the theory curves, ``deviation_T.png``,
``table.md``, and ``points/`` (per-point checkpoints: re-running skips finished points).

Config sections and keys (defaults in brackets):

[study]        name (required), output [meanfield-out/<name>], workers [1], description [""]
[model]        d (required), beta [1.0], normalized [true], Q, K, V (d x d lists) or V_diag
[perturbation] kind ["lora" | "e2"], target ["V"], rank [1], norm [0.1], seed [0]
               ("e2": Delta = norm e2 e2^T, the spectral-gap experiment)
[backend]      kinds (required, list of "particles", "spectral", "fv", "fem"), resolution,
               n [1000] (particles), seed [0], method ["dop853"] (particles), rtol [1e-7]
[initial]      kind ["von_mises" | "uniform"], kappa [1.0], mean [e1 rotated by 0.3 rad]
[time]         T (required), n_times [41]
[sweep]        axis ["norm" | "beta"], values (required, list), delta [0.1] (T_dev threshold)
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
import warnings
from pathlib import Path

import numpy as np

__all__ = ["load_study", "validate_config", "run_study", "DEFAULT_STUDY"]

_REQUIRED = object()
SCHEMA = {
    "study": {"name": _REQUIRED, "output": None, "workers": 1, "description": ""},
    "model": {"d": _REQUIRED, "beta": 1.0, "normalized": True, "Q": None, "K": None,
              "V": None, "V_diag": None},
    "perturbation": {"kind": "lora", "target": "V", "rank": 1, "norm": 0.1, "seed": 0},
    "backend": {"kinds": _REQUIRED, "resolution": None, "n": 1000, "seed": 0,
                "method": "dop853", "rtol": 1e-7},
    "initial": {"kind": "von_mises", "kappa": 1.0, "mean": None},
    "time": {"T": _REQUIRED, "n_times": 41},
    "sweep": {"axis": "norm", "values": _REQUIRED, "delta": 0.1},
}
CHOICES = {
    ("perturbation", "kind"): ("lora", "e2"),
    ("perturbation", "target"): ("V", "Q", "K"),
    ("initial", "kind"): ("von_mises", "uniform"),
    ("sweep", "axis"): ("norm", "beta"),
    ("backend", "method"): ("rk4", "dop853"),
}
BACKEND_KINDS = ("particles", "spectral", "fv", "fem")

#: the embedded default study (``meanfield demo``): the spectral-gap phase transition on S^1
DEFAULT_STUDY = {
    "study": {"name": "demo", "workers": 2,
              "description": "Phase diagram of forgetting on S^1: V = diag(1, 0.8) (gap 0.2), "
                             "Delta = eps e2 e2^T; finite volumes and particles"},
    "model": {"d": 2, "beta": 1.0, "normalized": True, "V_diag": [1.0, 0.8]},
    "perturbation": {"kind": "e2"},
    "backend": {"kinds": ["fv", "particles"], "resolution": 256, "n": 1000},
    "initial": {"kind": "von_mises", "kappa": 1.0},
    "time": {"T": 30.0, "n_times": 61},
    "sweep": {"axis": "norm", "values": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4],
              "delta": 0.3},
}


class ConfigError(ValueError):
    """A study config is invalid; the message names the key."""


def load_study(path) -> dict:
    """Read and validate a TOML study file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return validate_config(raw)


def validate_config(raw: dict) -> dict:
    """Fill defaults and check every key; raises ConfigError naming the offending key."""
    cfg = {}
    for section in raw:
        if section not in SCHEMA:
            raise ConfigError(f"unknown section [{section}] (allowed: {', '.join(SCHEMA)})")
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key in given:
            if key not in keys:
                raise ConfigError(f"unknown key '{section}.{key}' (allowed: {', '.join(keys)})")
        cfg[section] = {}
        for key, default in keys.items():
            if key in given:
                cfg[section][key] = given[key]
            elif default is _REQUIRED:
                raise ConfigError(f"missing required key '{section}.{key}'")
            else:
                cfg[section][key] = copy.deepcopy(default)
    for (section, key), allowed in CHOICES.items():
        if cfg[section][key] not in allowed:
            raise ConfigError(f"'{section}.{key}' must be one of {allowed}, "
                              f"got {cfg[section][key]!r}")
    _check_types(cfg)
    if cfg["study"]["output"] is None:
        cfg["study"]["output"] = str(Path("meanfield-out") / cfg["study"]["name"])
    return cfg


def _number(cfg, section, key, positive=False, integer=False):
    value = cfg[section][key]
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or (positive and value <= 0) or not math.isfinite(value):
        kind = "a positive " if positive else "a "
        raise ConfigError(f"'{section}.{key}' must be {kind}{'integer' if integer else 'number'}"
                          f", got {value!r}")


def _check_types(cfg):
    _number(cfg, "model", "d", positive=True, integer=True)
    _number(cfg, "model", "beta")
    _number(cfg, "perturbation", "norm")
    _number(cfg, "perturbation", "rank", positive=True, integer=True)
    _number(cfg, "backend", "n", positive=True, integer=True)
    _number(cfg, "study", "workers", positive=True, integer=True)
    _number(cfg, "time", "T", positive=True)
    _number(cfg, "time", "n_times", positive=True, integer=True)
    _number(cfg, "sweep", "delta", positive=True)
    kinds = cfg["backend"]["kinds"]
    if isinstance(kinds, str):
        kinds = cfg["backend"]["kinds"] = [kinds]
    if not kinds or any(k not in BACKEND_KINDS for k in kinds):
        raise ConfigError(f"'backend.kinds' must be a list from {BACKEND_KINDS}, got {kinds!r}")
    values = cfg["sweep"]["values"]
    if not isinstance(values, list) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"'sweep.values' must be a non-empty list of numbers, got {values!r}")
    d = cfg["model"]["d"]
    for key in ("Q", "K", "V"):
        m = cfg["model"][key]
        if m is not None and np.shape(m) != (d, d):
            raise ConfigError(f"'model.{key}' must be a {d} x {d} list of lists")
    vd = cfg["model"]["V_diag"]
    if vd is not None and (cfg["model"]["V"] is not None or np.shape(vd) != (d,)):
        raise ConfigError(f"'model.V_diag' must be a list of {d} numbers (and excludes model.V)")


# ---------------------------------------------------------------------------- building blocks

def build_models(cfg, value):
    """(base, tuned) models for one sweep value."""
    from .model import Attention, lora_update

    m, p = cfg["model"], cfg["perturbation"]
    d = m["d"]
    V = np.diag(m["V_diag"]) if m["V_diag"] is not None else m["V"]
    beta = value if cfg["sweep"]["axis"] == "beta" else m["beta"]
    norm = value if cfg["sweep"]["axis"] == "norm" else p["norm"]
    base = Attention(beta=beta, d=d, Q=m["Q"], K=m["K"], V=V, normalized=m["normalized"])
    if p["kind"] == "e2":
        delta = np.zeros((d, d))
        delta[1, 1] = norm
    else:
        delta = lora_update(d=d, rank=p["rank"], norm=norm, target=p["target"], seed=p["seed"])
    return base, base.perturbed(**{p["target"]: delta})


def initial_density(cfg):
    """The initial density callable (w.r.t. the surface measure)."""
    d, ini = cfg["model"]["d"], cfg["initial"]
    if ini["kind"] == "uniform":
        from .geometry import sphere_area
        area = sphere_area(d)
        return lambda p: np.full(len(p), 1.0 / area)
    kappa = float(ini["kappa"])
    mean = np.zeros(d)
    if ini["mean"] is None:
        mean[0], mean[1] = math.cos(0.3), math.sin(0.3)
    else:
        mean = np.asarray(ini["mean"], dtype=float)
        mean /= np.linalg.norm(mean)
    if d == 2:
        norm = 2 * math.pi * np.i0(kappa)
    elif d == 3:
        norm = 4 * math.pi * math.sinh(kappa) / kappa if kappa > 0 else 4 * math.pi
    else:
        raise ConfigError("initial.kind = 'von_mises' is available for d = 2, 3; use 'uniform'")
    return lambda p: np.exp(kappa * (p @ mean)) / norm


def evaluate_point(point: dict) -> dict:
    """Worker task: base and fine-tuned runs for one (backend, value); D(t) and friends."""
    from .forgetting import forgetting_run

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


# ---------------------------------------------------------------------------- the study

def run_study(cfg: dict, log=print) -> dict:
    """Run a validated study config; returns a summary with the output paths."""
    from .sweep import run_sweep

    out = Path(cfg["study"]["output"])
    out.mkdir(parents=True, exist_ok=True)
    values = [float(v) for v in cfg["sweep"]["values"]]
    points = [{"config": cfg, "backend": k, "value": v}
              for k in cfg["backend"]["kinds"] for v in values]
    log(f"study '{cfg['study']['name']}': {len(points)} points "
        f"({', '.join(cfg['backend']['kinds'])} x {cfg['sweep']['axis']} in {values}), "
        f"{cfg['study']['workers']} workers, output {out}")
    results = run_sweep(evaluate_point, points, out, workers=cfg["study"]["workers"],
                        label=cfg["study"]["name"])
    by_backend = {k: [r for p, r in zip(points, results) if p["backend"] == k]
                  for k in cfg["backend"]["kinds"]}
    dataset = _dataset(cfg, values, by_backend)
    nc = out / "study.nc"
    dataset.to_netcdf(nc, engine="h5netcdf")
    files = {"data": str(nc)}
    files.update(_figures(cfg, values, by_backend, out))
    table = _table(cfg, values, by_backend)
    (out / "table.md").write_text(table + "\n")
    files["table"] = str(out / "table.md")
    log(table)
    for name, path in files.items():
        log(f"  wrote {name}: {path}")
    return {"files": files, "values": values,
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


def _theory_curve(cfg, values):
    """Gronwall lower bound on T_dev(delta) along the sweep axis (in W_1, chordal)."""
    from .theory import deviation_time_lower_bound

    out = []
    for v in values:
        base, tuned = build_models(cfg, v)
        eps = float(np.linalg.norm(tuned.V - base.V, 2))
        out.append(deviation_time_lower_bound(base, eps, cfg["sweep"]["delta"]) if eps > 0
                   else np.inf)
    return np.array(out)


def _figures(cfg, values, by_backend, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis, delta, T = cfg["sweep"]["axis"], cfg["sweep"]["delta"], cfg["time"]["T"]
    bound = _theory_curve(cfg, values)
    files = {}
    for k, rs in by_backend.items():
        times = rs[0]["times"]
        D = np.stack([r["deviation_w2"] for r in rs])
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        im = ax.pcolormesh(values, times, D.T, shading="nearest", cmap="viridis")
        fig.colorbar(im, ax=ax, label="D = W_2(base, fine-tuned), geodesic")
        if D.max() > delta > D.min():
            ax.contour(values, times, D.T, levels=[delta], colors="w", linewidths=1.5)
        tdev = [float(r["t_dev"]) for r in rs]
        ax.plot(values, np.where(np.isfinite(tdev), tdev, np.nan), "wo", ms=4,
                label=f"measured T_dev(delta = {delta:g})")
        finite = np.isfinite(bound)
        ax.plot(np.asarray(values)[finite], np.minimum(bound[finite], T), "r--",
                label="Gronwall lower bound on T_dev")
        if cfg["perturbation"]["kind"] == "e2" and cfg["model"]["V_diag"] is not None \
                and axis == "norm":
            vd = sorted(cfg["model"]["V_diag"], reverse=True)
            ax.axvline(vd[0] - vd[1], color="orange", ls=":", lw=2,
                       label=f"spectral gap g = {vd[0] - vd[1]:g}")
        ax.set_xlabel("||Delta||_2" if axis == "norm" else "beta")
        ax.set_ylabel("depth T")
        ax.set_ylim(0, T)
        ax.set_title(f"{cfg['study']['name']}: {k}")
        ax.legend(fontsize=7, loc="upper right")
        path = out / f"phase_{k}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        files[f"phase_{k}"] = str(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, rs in by_backend.items():
        ax.plot(values, [r["deviation_w2"][-1] for r in rs], "o-", label=k)
    ax.set_xlabel("||Delta||_2" if axis == "norm" else "beta")
    ax.set_ylabel(f"D(T = {T:g})")
    ax.legend()
    path = out / "deviation_T.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    files["deviation_T"] = str(path)
    return files


def _table(cfg, values, by_backend):
    axis = cfg["sweep"]["axis"]
    kinds = list(by_backend)
    bound = _theory_curve(cfg, values)
    head = (f"| {axis} | " + " | ".join(f"D(T) {k}" for k in kinds) + " | "
            + " | ".join(f"T_dev {k}" for k in kinds) + " | Gronwall T_dev bound |")
    lines = [head, "|" + "---|" * (2 + 2 * len(kinds))]
    for i, v in enumerate(values):
        d_t = " | ".join(f"{by_backend[k][i]['deviation_w2'][-1]:.4f}" for k in kinds)
        t_d = " | ".join(f"{float(by_backend[k][i]['t_dev']):.2f}" for k in kinds)
        lines.append(f"| {v:g} | {d_t} | {t_d} | {bound[i]:.3g} |")
    return "\n".join(lines)
