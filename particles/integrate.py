"""Time integration of the N-token system dx_i/dt = X[mu_N](x_i), mu_N = sum_j w_j delta_{x_j}.

Methods
-------
``"rk4"``
    Classic fourth-order Runge-Kutta on the ambient ODE x' = X(x) (X extended off the sphere by
    the formula P_x^perp y = y - <x,y> x, which keeps |x| = 1 invariant), followed by the
    retraction x -> x/|x| after each step. Global order 4. Steps land exactly on the saved
    times: each interval is split into ceil(interval / dt) equal steps.
``"dop853"``
    scipy's adaptive eighth-order Dormand-Prince with error control (rtol, atol); saved states
    are retracted to the sphere (the drift before retraction is recorded in ``info``).
``"layers"``
    Forward Euler plus retraction with step dt, one step = one transformer layer (the scheme of
    the published particle codes). First order; an O(dt) time bias near clusters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time as _time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.integrate import DOP853

from continuum.family import Schedule, check_family, switch_times
from continuum.checks import (
    check_choice,
    check_flag,
    check_integer,
    check_memory,
    check_output_path,
    check_real,
)
from continuum.geometry import check_points
from continuum.initial import check_times
from continuum.invariants import InvariantError, check_result
from continuum.kernels import FIELD_METHODS, attention_field
from continuum.measure import Measure
from continuum.timestep import (
    MAX_STEPS,
    StepCollapseError,
    StepGuard,
    collapse_reason,
    default_dt,
    field_scale,
    progress_bar,
)

from .norms import NORMS, norm_velocity, on_sphere

logger = logging.getLogger(__name__)

__all__ = ["simulate", "Trajectory", "default_dt"]  # default_dt re-exported from continuum

METHODS = ("rk4", "dop853", "layers")
#: |R(z)| <= 1 on the negative real axis for classic RK4 iff z >= -2.785
RK4_REAL_STABILITY = 2.785


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Token positions at saved times; same ``measure(i)`` interface as continuum solutions.

    Attributes
    ----------
    times : ndarray (nt,)
    points : ndarray (nt, N, d)
    weights : ndarray (N,)
    model : Attention
    info : dict  (method, dt, steps or nfev, wall time, ...)
    radii : ndarray (nt, N) or None
        |x_i| for the LayerNorm placements that leave the sphere (``norm="pre"``, ``"peri"``:
        the tokens are x_i = radii * points); None on the sphere.
    """

    times: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    model: object
    info: dict = field(default_factory=dict)
    radii: np.ndarray | None = None

    def measure(self, i: int) -> Measure:
        """Empirical measure sum_j w_j delta_{x_j(t_i)} at saved time ``times[i]``."""
        return Measure(self.points[i], self.weights)

    def __len__(self) -> int:
        return len(self.times)


def simulate(model, x0, T: float, times=None, dt: float | None = None, method: str = "rk4",
             rtol: float = 1e-10, atol: float = 1e-12, progress: bool | None = None,
             checkpoint=None, field: str = "auto", max_steps: int = MAX_STEPS,
             norm: str = "post") -> Trajectory:
    """Move N tokens by the attention dynamics dx_i/dt = X[mu_N](x_i) up to time T.

    Parameters
    ----------
    model : Attention, MultiHead or Layers
        Several heads: X = sum_h w_h X_h (``continuum.family``); Layers: the model in force
        changes at the layer switches, where every step ends ("rk4", "layers": each saved
        interval is cut there; "dop853" restarts there).
    x0 : ndarray (N, d) or Measure
        Initial tokens on the unit sphere (weights 1/N), or a weighted Measure.
    T : float
        Final time (depth: L layers of step h give T = L h).
    times : array_like, optional
        Increasing saved times in [0, T] (default: 51 equispaced times).
    dt : float, optional
        Step for "rk4" and "layers" (default :func:`default_dt`). For "rk4" a step with
        dt * L_est > 2.785 (outside RK4's real stability interval) is refused.
    method : {"rk4", "dop853", "layers"}
    rtol, atol : float
        Tolerances of "dop853".
    progress : bool or None
        tqdm bar over simulated time on stderr (None: only when stderr is a terminal).
    field : {"auto", "direct", "harmonic"}
        Path of :func:`continuum.kernels.attention_field` ("auto": the O(N) harmonic
        expansion for large clouds where its error bound allows, else the direct sum).
    checkpoint : str or Path, optional
        A ``.npz`` file written atomically after every saved time. If it exists when the
        call starts and belongs to the same run (same model, tokens, times, method and step
        or tolerances), the run resumes from it, so a crash or Ctrl-C loses at most one
        saved interval. "rk4" and "layers" resume bit for bit; "dop853" restarts its
        error control at the last saved time (same tolerance, not bitwise). Its folder is
        created if needed; one that cannot be is an error before any work.
    max_steps : int
        Step budget: "rk4" and "layers" refuse a dt needing more steps before any work;
        "dop853" stops with ``continuum.timestep.StepCollapseError`` (saying why) when its
        step stays so small that the rest of the run would need more.
    norm : {"post", "pre", "peri", "ngpt"}
        LayerNorm placement (:mod:`particles.norms`): "post" the dynamics on the sphere
        above; "pre" moves x_i in R^d by x_i' = u(x_i / |x_i|), the attention output at the
        normalised tokens; "peri" by x_i' = u / |u|; "ngpt" on the sphere by
        theta_i' = P^perp u / |u|. For "pre" and "peri" the saved ``points`` are
        x_i / |x_i| and ``Trajectory.radii`` holds |x_i|; nothing is retracted.

    A causal model (``Attention(causal=True)``) masks by the row order of x0: token i
    attends to the tokens j <= i (:func:`continuum.kernels.attention_field`).

    Returns
    -------
    Trajectory
    """
    check_family(model)
    check_choice(method, "method", METHODS)
    check_choice(field, "field", FIELD_METHODS)
    check_choice(norm, "norm", NORMS)
    if field == "harmonic" and (getattr(model, "causal", False) or norm != "post"):
        raise ValueError("field='harmonic' expands the unmasked tangent field: a causal model "
                         "or norm other than 'post' takes field='direct' or 'auto'")
    check_flag(progress, "progress", allow_none=True)
    max_steps = check_integer(max_steps, "max_steps", low=1)
    if isinstance(x0, Measure):
        points, weights = x0.points, x0.weights
    else:
        points = check_points(x0, "x0")
        if points.shape[0] == 0:
            raise ValueError(f"x0 must hold at least one token, got shape {points.shape}")
        weights = np.full(points.shape[0], 1.0 / points.shape[0])
    mu0 = Measure(points, weights)  # validates: on the sphere, probability weights
    if mu0.d != model.d:
        raise ValueError(f"x0 has d={mu0.d} columns but the model has d={model.d}")
    T, times = check_times(T, times)
    scale = field_scale(model)
    if dt is None:
        dt = default_dt(model)
        if not dt > 0:  # USA with e^{beta ||Q^T K||} beyond float64: no step resolves it
            raise StepCollapseError(f"dt: no default step for this model (L_est = {scale:.3g})"
                                    f". {collapse_reason(model, 'particles')}")
    dt = check_real(dt, "dt", low=0, low_open=True)
    if method == "rk4" and dt * scale > RK4_REAL_STABILITY:
        raise ValueError(f"dt={dt:g} is outside the RK4 stability interval: dt * L_est = "
                         f"{dt * scale:.3g} > {RK4_REAL_STABILITY} (L_est = ||V||(1 + 2a)"
                         f" (SA), times e^a (USA), summed over heads = {scale:.3g}, "
                         f"a = beta ||Q^T K||)")
    switches = switch_times(model, T)  # a Layers: the steps land on every switch
    if method == "layers":
        for name, values in (("saved time", times), ("layer switch (layer_time)", switches)):
            layer_of = values / dt
            if values.size and np.max(np.abs(layer_of - np.round(layer_of))) > 1e-9 * max(
                    1.0, layer_of.max()):
                raise ValueError(f"method='layers' saves after whole layers: every {name} "
                                 f"must be a multiple of dt={dt:g}")
    rtol = check_real(rtol, "rtol", low=0, low_open=True)
    atol = check_real(atol, "atol", low=0, low_open=True)
    if checkpoint is not None:
        check_output_path(checkpoint, "checkpoint", folder=False)
    w = np.ascontiguousarray(weights)
    n, d = mu0.points.shape
    # saved positions, plus the state and stages (RK4: 5 copies; DOP853: 16)
    check_memory(8.0 * n * d * (times.size + 20), "x0 and times",
                 f"{n} tokens in d={d} at {times.size} saved times")
    label = f"simulate {method} N={n}"
    guard = StepGuard(T, max_steps, label, collapse_reason(model, "particles"), patience=20)
    if method != "dop853":  # fixed steps: the count is known before any work
        gaps = np.diff(np.union1d(times, switches), prepend=0.0)
        total = int(np.sum(np.ceil(gaps / dt - 1e-9)))
        if total > max_steps:
            raise StepCollapseError(
                f"{label}: dt = {dt:.3g} needs {float(total):.4g} steps to reach T = {T:g}, over "
                f"max_steps = {max_steps}. Why and what to do: "
                f"{collapse_reason(model, 'particles')}")
    out = np.empty((times.size, n, d))
    run_key = _fingerprint(model, mu0, times, method, dt, rtol, atol, field, norm)
    state = _load_checkpoint(checkpoint, run_key, out)
    k_done, t, x, counter, h_last = state
    info = {"method": method, "resumed_from_index": k_done} if k_done else {"method": method}
    wall = _time.perf_counter()

    schedule = Schedule(model)  # the model in force (continuum.family; a Layers switches it)

    def rhs(y):  # RK stages leave the sphere by O(dt^2) on purpose: no sphere check
        return attention_field(y, y, w, schedule.current, method=field, check=False)

    def start_dop853(t0, y, first):  # up to the next switch (a Layers restarts there)
        end = min(max(T, times[-1]), schedule.switch(t0))
        return DOP853(lambda s, z: rhs(z.reshape(n, d)).ravel(), t0, y.ravel(), end,
                      rtol=rtol, atol=atol, first_step=None if first is None
                      else min(first, end - t0))

    if norm != "post":  # issue 24: the other LayerNorm placements (particles.norms)
        rhs = norm_velocity(norm, lambda y: attention_field(
            y, y, w, schedule.current, method=field, check=False, tangent=False))
    sphere = on_sphere(norm)

    if k_done == 0:
        x = np.ascontiguousarray(mu0.points, dtype=np.float64).copy()
    solver = None
    bar = progress_bar(progress, T, f"simulate {method} N={n}")
    bar.update(t)
    for k in range(k_done, times.size):
        t_save = times[k]
        if method == "dop853":
            if t_save > t:
                if solver is None:
                    solver = start_dop853(t, x, h_last)
                    seen = 0  # evaluations of this solver already counted
                while solver.t < t_save:
                    if solver.status == "finished":  # on a layer switch: restart there
                        counter["nfev"] = counter.get("nfev", 0) + solver.nfev - seen
                        solver, seen = start_dop853(solver.t, solver.y, solver.step_size), 0
                    message = solver.step()
                    if solver.status == "failed":
                        raise StepCollapseError(f"DOP853 failed at t={solver.t:g}: {message}. "
                                                f"{collapse_reason(model, 'particles')}")
                    guard.check(solver.t, solver.step_size)
                    bar.update(min(solver.t, T) - bar.n)
                y = solver.y if solver.t == t_save else solver.dense_output()(t_save)
                y = y.reshape(n, d)
                if sphere:
                    counter["radius_drift"] = max(
                        counter.get("radius_drift", 0.0),
                        float(np.abs(np.linalg.norm(y, axis=1) - 1).max()))
                # a resumed run starts a new solver: count its evaluations from 0, on top of
                # those of the checkpoint
                counter["nfev"] = counter.get("nfev", 0) + solver.nfev - seen
                seen = solver.nfev
                h_last = solver.h_abs if solver.h_abs else None
                x = y / np.linalg.norm(y, axis=1, keepdims=True) if sphere else y.copy()
        else:
            for start, end in _pieces(t, t_save, switches):  # one piece per layer
                schedule.switch(start)
                gap = end - start
                n_sub = int(math.ceil(gap / dt - 1e-9)) if gap > 0 else 0
                h = gap / n_sub if n_sub else 0.0
                for _ in range(n_sub):
                    if method == "rk4":
                        k1 = rhs(x)
                        k2 = rhs(x + 0.5 * h * k1)
                        k3 = rhs(x + 0.5 * h * k2)
                        k4 = rhs(x + h * k3)
                        x = x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
                    else:
                        with np.errstate(over="ignore"):  # _retract reports an overflow
                            x = x + h * rhs(x)
                    if sphere:
                        x = _retract(x, model, h)
                    counter["steps"] = counter.get("steps", 0) + 1
                    bar.update(h)
        t = t_save
        out[k] = x
        if checkpoint is not None:
            _save_checkpoint(checkpoint, run_key, k + 1, t, x, out[:k + 1], counter, h_last)
    bar.close()
    counter.pop("_seen", None)  # written by checkpoints of earlier versions
    info.update(counter)
    info.update({"rtol": rtol, "atol": atol} if method == "dop853" else {"dt": dt})
    info["wall_time_s"] = _time.perf_counter() - wall
    radii = None
    if not sphere:  # x = r theta: save theta on the sphere and r apart
        info["norm"] = norm
        radii = np.linalg.norm(out, axis=2)
        out = out / radii[..., None]
    elif norm != "post":
        info["norm"] = norm
    # finite, on the sphere, probability weights, every requested time saved (issue 22)
    check_result(label, times, times, out, weights=w)
    times = times.copy()
    for a in (times, out, w) + (() if radii is None else (radii,)):
        a.setflags(write=False)
    return Trajectory(times=times, points=out, weights=w, model=model, info=info, radii=radii)


def _pieces(t, t_save, switches):
    """[t, t_save] cut at the switch times inside it: [(t, s_1), (s_1, s_2), ..., (s_m, t_save)]
    ([(t, t_save)] without switches, so a time-independent run keeps its steps bit for bit)."""
    inside = switches[(switches > t) & (switches < t_save)]
    edges = [t, *inside.tolist(), t_save]
    return list(zip(edges[:-1], edges[1:]))


#: rows longer than this are scaled by their largest entry before |x| (whose square would
#: overflow beyond 1e154); below, the plain division (the results of earlier versions, bitwise)
_RETRACT_SCALED = 1e150


def _retract(x: np.ndarray, model, h: float) -> np.ndarray:
    """x / |x| row by row after a step of size ``h``: exact also for a "layers" step h X far
    larger than 1 (USA's field carries e^(beta ||Q^T K||); tokens then turn to X's direction),
    and FloatingPointError naming the scale when the step itself left the float64 range."""
    top = np.max(np.abs(x), axis=1, keepdims=True)
    if np.isnan(top).any():  # not an overflow: the field itself returned NaN
        raise InvariantError("simulate", "non-finite points (count) after a step",
                             int(np.isnan(top).sum()), 0, " (the field returned NaN)")
    if not np.all(np.isfinite(top)):
        raise FloatingPointError(
            f"a step of size {h:.3g} moved tokens beyond the float64 range (|h X| is "
            f"inf: the field's scale L_est = {field_scale(model):.3g}). Why and what to do: "
            f"{collapse_reason(model, 'particles')}")
    if top.max(initial=0.0) > _RETRACT_SCALED:
        x = x / top
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fingerprint(model, mu0, times, method, dt, rtol, atol, field, norm="post") -> str:
    """Hash identifying a run, so that a checkpoint is never resumed into another run."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.to_dict(), sort_keys=True).encode())
    for array in (mu0.points, mu0.weights, times):
        digest.update(np.ascontiguousarray(array).tobytes())
    step = f"{rtol!r},{atol!r}" if method == "dop853" else repr(dt)
    digest.update(f"{method}|{step}|{field}".encode())
    if norm != "post":  # unchanged keys for the runs of earlier versions
        digest.update(f"|norm={norm}".encode())
    return digest.hexdigest()


def _save_checkpoint(path, run_key, k_done, t, x, saved, counter, h_last):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, run_key=run_key, k_done=k_done, t=t, x=x, saved=saved,
             counter=json.dumps(counter), h_last=-1.0 if h_last is None else h_last)
    os.replace(tmp, path)  # atomic: the file is always a complete checkpoint


def _load_checkpoint(path, run_key, out):
    """(k_done, t, x, counter, h_last) from ``path``, or a fresh start. An unreadable file
    (truncated, not an archive, entries missing) is moved aside to ``<name>.corrupt`` with a
    warning naming it, and the run starts afresh."""
    fresh = (0, 0.0, None, {}, None)
    if path is None or not Path(path).exists():
        return fresh
    try:
        with np.load(path) as data:
            stored_key = str(data["run_key"])
            if stored_key == run_key:
                k_done = int(data["k_done"])
                saved = data["saved"]
                state = (k_done, float(data["t"]), data["x"].copy(),
                         json.loads(str(data["counter"])), float(data["h_last"]))
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        aside = Path(path).with_suffix(".corrupt")
        os.replace(path, aside)
        logger.warning("checkpoint %s is unreadable (%s: %s): moved to %s, starting afresh",
                       path, type(err).__name__, err, aside.name)
        return fresh
    if stored_key != run_key:
        raise ValueError(f"checkpoint {path} belongs to a different run (model, tokens, "
                         "times, method or step differ); delete it or choose another path")
    out[:k_done] = saved
    k_done, t, x, counter, h_last = state
    return k_done, t, x, counter, None if h_last <= 0 else h_last
