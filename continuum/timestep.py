"""Time stepping shared by the particle integrator and the continuum solvers: the step scales,
the progress bar, the guard against a collapsed step (:class:`StepGuard`) and the one marching
loop of the explicit solvers (:func:`march`).

A run whose step has collapsed (a stiff problem, a density concentrating below the grid scale,
or USA's field scale e^{beta ||Q^T K||}) would otherwise crawl for hours without a word: every
integrator counts its steps against ``max_steps`` (default :data:`MAX_STEPS`) and stops with a
:class:`StepCollapseError` that says why and what to do as soon as the remaining time at the
current step would need more.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .checks import check_choice
from .direct import check_model
from .family import check_family, dominant_head, layers_of, sum_heads
from .model import Attention

__all__ = ["field_scale", "default_dt", "march", "march_dop853", "check_dop853_options",
           "progress_bar", "StepGuard",
           "StepCollapseError", "collapse_reason", "COLLAPSE_GEOMETRIES", "MAX_STEPS"]

#: default step budget of a run: beyond it a run is hours long and its step has collapsed
MAX_STEPS = 10**6


def field_scale(model) -> float:
    """L_est = ||V||_2 (1 + 2a) (SA) or ||V||_2 e^a (1 + 2a) (USA), a = beta ||Q^T K||_2: the
    size of the field's Jacobian, used for the default step and the stability check (a proxy,
    not a proven Lipschitz bound). USA has no normaliser, so its field carries the kernel's
    scale e^{beta <Qx, Ky>} <= e^a itself (``forgetting.bounds``: L_x <= ||V|| e^a (1 + a));
    the factor is inf when e^a exceeds the float64 range. A MultiHead: sum_h w_h L_est,h (the
    Jacobian of a sum); a Layers: the largest over its layers."""
    if not isinstance(model, Attention):
        return float(max(sum_heads(m, field_scale) for m in layers_of(check_family(model))))
    a = float(model.beta * np.linalg.norm(model.A, 2))
    scale = float(np.linalg.norm(model.V, 2) * (1 + 2 * a))
    if not model.normalized:
        scale = math.inf if a > 700 else scale * math.exp(a)
    return scale


def default_dt(model) -> float:
    """Default RK4 step: min(0.05, 0.1 / L_est), so that (dt L_est)^4 / 120 < 1e-6 (0 when
    L_est is inf: no explicit step resolves such a field, :class:`StepGuard` says so)."""
    return min(0.05, 0.1 / max(field_scale(model), 1e-300))


class StepCollapseError(RuntimeError):
    """A run's step became so small that the remaining time needs more than ``max_steps``."""


#: the runs whose step may collapse: the geometry and method of :func:`collapse_reason`
COLLAPSE_GEOMETRIES = ("particles", "S1 spectral", "S1 fv", "S2 spectral", "S2 fem")
#: the method for clusters beside each spectral solver
_CLUSTER_METHOD = {"S1 spectral": "fv", "S2 spectral": "fem"}


def collapse_reason(model, geometry: str) -> str:
    """Why the step of a run of ``model`` may collapse, naming the parameter that sets the
    scale, and the one remedy for ``geometry`` (one of :data:`COLLAPSE_GEOMETRIES`), for the
    messages of :class:`StepGuard`.

    First match, with a = beta ||Q^T K||: USA with a > 3, the USA scale e^a (its dynamics run
    on times e^-a): rescale T or use SA; ||V|| > 1 + 2a, V (the field is linear in V, so the
    run with V / ||V|| to time T ||V|| is the same flow): rescale V and T. Otherwise by
    geometry: particles, a through beta and Q^T K (the step follows L_est = ||V|| (1 + 2a)):
    a shorter T; the spectral solvers, a (the density concentrates below the band limit): a
    higher resolution or the method for clusters (fv on S^1, fem on S^2); fv and fem, V and
    the resolution (the CFL step is the cell size over max|X| <= ||V||): a lower resolution
    or a shorter T. Each also says that max_steps may be raised. A MultiHead or Layers: the
    reason of the head with the largest weighted field scale, named
    (``continuum.family.dominant_head``)."""
    if not isinstance(model, Attention):
        where, head = dominant_head(check_family(model), field_scale)
        return (f"{where} of {model.name} (its largest field scale): "
                f"{collapse_reason(head, geometry)}")
    check_model(model)
    check_choice(geometry, "geometry", COLLAPSE_GEOMETRIES)
    a = float(model.beta * np.linalg.norm(model.A, 2))
    v = float(np.linalg.norm(model.V, 2))
    budget = "or raise max_steps if the run really needs them"
    if not model.normalized and a > 3:
        scale = f"{math.exp(a):.3g}" if a < 709 else "beyond float64"
        return (f"USA has no normaliser: its field carries the USA scale e^(beta ||Q^T K||) "
                f"= e^{a:.3g} = {scale} (beta = {model.beta:g}, ||Q^T K|| = "
                f"{a / model.beta:.3g}), so the dynamics run on times of order e^-{a:.3g}; "
                f"rescale time (T times e^-{a:.3g}) or use SA (normalized=True)")
    if v > 1 + 2 * a:
        return (f"V sets the time scale: ||V|| = {v:.3g} (beta ||Q^T K|| = {a:.3g}), so the "
                f"dynamics run on times of order 1/||V|| = {1 / v:.3g}; the field is linear "
                f"in V, so V / ||V|| up to time T ||V|| is the same run: rescale V and T, "
                f"{budget}")
    cause = (f"beta ||Q^T K|| = {a:.3g} (beta = {model.beta:g}, ||Q^T K|| = "
             f"{float(np.linalg.norm(model.A, 2)):.3g})")
    if geometry == "particles":
        return (f"the step follows the field scale L_est = ||V|| (1 + 2 beta ||Q^T K||) = "
                f"{field_scale(model):.3g}, set by {cause}; shorten T, {budget}")
    if geometry in _CLUSTER_METHOD:
        return (f"{cause} concentrates the density into clusters narrower than the band limit "
                f"resolves, which makes the problem stiff; increase resolution, or use "
                f"method='{_CLUSTER_METHOD[geometry]}' for clusters, {budget}")
    speed = "||V||" if model.normalized else "||V|| e^(beta ||Q^T K||)"
    return (f"the CFL step is the cell size over the speed max|X| <= {speed} = "
            f"{v if model.normalized else v * math.exp(a):.3g}, set by V and the resolution; "
            f"lower the resolution or shorten T, {budget}")


class StepGuard:
    """Stops a run whose step has collapsed, naming why (:func:`collapse_reason`).

    ``check(t, dt)`` is called once per step with the step about to be taken (or just taken):
    it raises :class:`StepCollapseError` when the steps taken exceed ``max_steps``, or when
    (T - t) / dt, the steps still needed at this step, exceeds the budget left on ``patience``
    consecutive calls (an error-controlled integrator may shrink its step for a few steps
    and recover: it grows by at most 10x per step, so a short transient does not trip it).
    """

    def __init__(self, T: float, max_steps: int, label: str, reason: str, patience: int = 1):
        self.T, self.max_steps, self.label, self.reason = T, max_steps, label, reason
        self.patience, self.steps, self.strikes = patience, 0, 0

    def check(self, t: float, dt: float) -> None:
        self.steps += 1
        needed = (self.T - t) / dt if dt > 0 else math.inf
        over = not needed <= self.max_steps - self.steps
        self.strikes = self.strikes + 1 if over else 0
        if self.steps > self.max_steps or self.strikes >= self.patience:
            raise StepCollapseError(
                f"{self.label}: the step is down to dt = {dt:.3g} at t = {t:.6g}: "
                f"reaching T = {self.T:g} would take {needed:.3g} more steps, over "
                f"max_steps = {self.max_steps} ({self.steps} taken). Why and what to do: "
                f"{self.reason}")


def progress_bar(progress, T: float, label: str):
    """A tqdm bar over simulated time [0, T] on stderr. ``progress``: True shows it, False
    hides it, None (the solvers' default) shows it only when stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=float(T), disable=None if progress is None else not progress,
                desc=label, unit="time", file=sys.stderr, leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| t = {n:.4g} / {total:.4g} "
                           "[{elapsed}<{remaining}]")


def march(state, times, T: float, propose, step, save, progress=None, label: str = "march",
          max_steps: int = MAX_STEPS, reason: str = "", switch=None):
    """The one time-marching loop of the explicit solvers (FV on S^1, DG on S^2).

    Starting from ``state`` at t = 0, repeat: at a saved time ``times[k]`` call
    ``save(k, state)`` (a true return value ends the loop there: an under-resolved run
    stopped early); otherwise take one step of size
    dt = min(dt_max, times[k] - t), so steps land exactly on the saved times, where
    ``dt_max, context = propose(state)`` is the scheme's stability limit (CFL) and
    ``new, ok = step(state, dt, context)`` the scheme's step. A step that reports ``ok = False``
    (e.g. a stage violated the positivity bound because the speed grew within the step) is
    redone with half the step; a step limit or a halved step below 1e-14 T raises instead of
    looping for ever, and so does a step limit at which the remaining time needs more than
    ``max_steps`` steps (:class:`StepGuard`, with ``reason`` saying why and what to do).

    ``switch(t) -> t_next`` (a model whose weights change with depth, ``continuum.family``):
    called at t = 0 and at every switch time, where the solver takes the model in force and
    returns the next switch (inf: none); steps are capped there, so they land on every switch
    exactly and none crosses one.

    Returns (final state, {"steps": ..., "step_halvings": ..., "saved": ...}), "saved" the
    number of saved times reached.
    """
    t, k, steps, halvings = 0.0, 0, 0, 0
    t_next = math.inf if switch is None else switch(0.0)
    floor = 1e-14 * max(1.0, T)
    guard = StepGuard(T, max_steps, label, reason)
    with progress_bar(progress, T, label) as bar:
        while k < len(times):
            if t >= times[k] - floor:
                stop = save(k, state)
                k += 1
                if stop:  # the scheme knows the rest would not be resolved
                    break
                continue
            if t >= t_next - floor:  # on a switch: the model in force changes here
                t = t_next
                t_next = switch(t)
                continue
            dt_max, context = propose(state)
            if not (np.isfinite(dt_max) and dt_max > floor):  # would never reach times[k]
                raise StepCollapseError(f"{label}: the scheme's step limit is {dt_max:.3g} at "
                                        f"t = {t:.6g} (not a positive number above "
                                        f"{floor:.1e}). {reason}")
            guard.check(t, dt_max)  # a collapsed step: say why before crawling
            dt = min(dt_max, times[k] - t, t_next - t)
            while True:
                new, ok = step(state, dt, context)
                if ok:
                    break
                dt *= 0.5
                halvings += 1
                if dt < floor:
                    raise RuntimeError(f"{label}: the step was halved below {floor:.1e} at t = "
                                       f"{t:.6g} and still fails its stability check")
            state, t = new, (t_next if dt == t_next - t else t + dt)
            steps += 1
            bar.update(min(dt, T - bar.n))
    return state, {"steps": steps, "step_halvings": halvings, "saved": k}


def check_dop853_options(rtol, atol, tail_tol, progress, max_steps):
    """The spectral solvers' options, checked before any work: (rtol, atol, tail_tol,
    max_steps), positive numbers and a positive integer; ``progress`` True, False or None."""
    from .checks import check_flag, check_integer, check_real

    check_flag(progress, "progress", allow_none=True)
    return (check_real(rtol, "rtol", low=0, low_open=True),
            check_real(atol, "atol", low=0, low_open=True),
            check_real(tail_tol, "tail_tol", low=0, low_open=True),
            check_integer(max_steps, "max_steps", low=1))


def march_dop853(rhs, y0, times, T: float, rtol: float, atol: float, first_step, label: str,
                 reason: str, tail, tail_tol: float, resolution: str, remedy: str,
                 progress=None, max_steps: int = MAX_STEPS, unresolved=None,
                 stop_unresolved: bool = False, switch=None):
    """The time loop of the spectral solvers (S^1 and S^2): scipy's DOP853 on ``y' = rhs(y)``
    from ``y0``, the solution at the saved ``times`` (dense output between steps).

    After every step the spectral tail ``tail(y)`` is measured. A failed step ("step size
    less than spacing"), a trial stage that overflows, or a step so small that the rest of
    the run would exceed ``max_steps`` (:class:`StepGuard`, 20 steps running) raise
    :class:`StepCollapseError` with ``reason`` and, when the tail exceeds ``tail_tol``, the
    under-resolution at ``resolution`` and the ``remedy``. At every saved state
    ``unresolved(y)`` (the solver's indicator: its tail, a negative density) returns why the
    state is not resolved, or "": the first such saved time goes to ``info["under_resolved_from"]``, the
    reason to ``info["under_resolved"]``, and with ``stop_unresolved`` the run ends there
    (no integration to T for nothing). Returns (states (nt', n), tails (nt',), info), nt' the
    saved times reached, info holding ``nfev`` (and the under-resolution, if any).

    ``switch(t) -> t_next``: as in :func:`march`; DOP853 integrates up to each switch and
    restarts there (its error control anew, the last step size as its first guess), so no
    step crosses one and ``rhs`` is the right-hand side of the model the solver took.
    """
    from scipy.integrate import DOP853

    t_end = max(T, times[-1])
    bound = [math.inf if switch is None else switch(0.0)]  # the next switch
    nfev = 0

    def start(t0, y, first):
        end = min(t_end, bound[0])
        return DOP853(lambda t, y: rhs(y), t0, y, end, rtol=rtol, atol=atol,
                      first_step=None if first is None else min(first, end - t0))

    solver = start(0.0, y0, first_step)
    guard = StepGuard(T, max_steps, label, reason, patience=20)
    states = np.empty((len(times), y0.size))
    tails = np.empty(len(times))
    info = {}
    with progress_bar(progress, T, label) as bar:
        for k, t_save in enumerate(times):
            while solver.t < t_save:
                if solver.status == "finished":  # on a switch: restart with the new model
                    nfev += solver.nfev
                    bound[0] = switch(solver.t)
                    solver = start(solver.t, solver.y, solver.step_size or None)
                try:
                    message = solver.step()
                except FloatingPointError as err:  # a trial stage blew the density up
                    raise StepCollapseError(
                        f"{label} at t = {solver.t:.6g}: {err} in a trial step (the step "
                        f"control cannot follow the field). Why and what to do: "
                        f"{reason}") from None
                tail_now = tail(solver.y)
                if solver.status == "failed":  # blame the resolution only if the tail does
                    why = (f"the density is no longer resolved on {resolution} (spectral "
                           f"tail {tail_now:.2g} > {tail_tol:g}): {remedy}"
                           if tail_now > tail_tol else
                           f"spectral tail {tail_now:.2g} <= {tail_tol:g}, so not the "
                           f"resolution. Why and what to do: {reason}")
                    raise StepCollapseError(f"{label} failed at t = {solver.t:.6g} "
                                            f"({message}); {why}")
                try:
                    guard.check(solver.t, solver.step_size)
                except StepCollapseError as err:
                    raise StepCollapseError(
                        f"{err}. Spectral tail {tail_now:.2g}"
                        + (f" > {tail_tol:g}: the density is no longer resolved on "
                           f"{resolution} ({remedy})" if tail_now > tail_tol else "")) from None
                bar.update(min(solver.t, T) - bar.n)
            states[k] = solver.y if solver.t == t_save else solver.dense_output()(t_save)
            tails[k] = tail(states[k])
            why = "" if "under_resolved_from" in info else unresolved(states[k])
            if why:
                info.update(under_resolved_from=float(t_save), under_resolved=why)
                if stop_unresolved:
                    states, tails = states[: k + 1], tails[: k + 1]
                    break
    info["nfev"] = int(nfev + solver.nfev)
    return states, tails, info
