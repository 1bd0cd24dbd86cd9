"""Forgetting runs: the base model and a fine-tuned (perturbed) model moved from the same initial
measure, and how far apart they drift.

Observables (docs/design.md, section 1):

* deviation D(t) = W_p(mu_t, nu_t) between base (mu) and fine-tuned (nu) measures, geodesic
  (arc-length) ground cost; exact on S^1 (circular CDF), exact optimal transport (POT) on S^2
  and in higher dimension. ``W_1`` and ``W_2`` are both reported;
* time to deviation T_dev(delta) = inf {t : D(t) >= delta}, linearly interpolated between
  saved times (infinite if never reached within the run).

Backends: "particles" (any d, N tokens sampled from rho0 or given), "spectral" and "fv"
(S^1), "fem" (S^2). The same initial measure is used for both runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from continuum import Measure, solve
from continuum.checks import check_array, check_choice, check_real
from continuum.wasserstein import wasserstein_circle, wasserstein_reduced, wasserstein_sphere
from particles import sample, simulate

from .bounds import gronwall_bound, lipschitz_constants, paired_heads

__all__ = ["deviation", "deviations", "time_to_deviation", "forgetting_run", "run_backend",
           "gronwall_curve", "ForgettingRun", "MeasureSeries", "BACKENDS"]

BACKENDS = ("particles", "spectral", "fv", "fem")


@dataclass(frozen=True, eq=False)
class MeasureSeries:
    """The measures of a run at its saved times, as plain arrays: what a sweep checkpoints of
    a base run so that every fine-tuned run of the sweep is compared with the same one.

    ``support`` is (nt, M, d) (particles move) or (M, d) (a solver's fixed nodes); ``weights``
    is (nt, M), each row a probability vector. Same ``times`` / ``measure(i)`` interface as
    Trajectory and Solution, so :func:`deviation` takes it.
    """

    times: np.ndarray
    support: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_run(cls, run) -> "MeasureSeries":
        """From a Trajectory or Solution (or anything with ``times`` and ``measure(i)``)."""
        measures = [run.measure(i) for i in range(len(run.times))]
        fixed = all(np.array_equal(m.points, measures[0].points) for m in measures)
        support = measures[0].points if fixed else np.stack([m.points for m in measures])
        return cls(np.asarray(run.times, dtype=float), support,
                   np.stack([m.weights for m in measures]))

    def arrays(self) -> dict:
        return {"times": self.times, "support": self.support, "weights": self.weights}

    def measure(self, i: int) -> Measure:
        return Measure(self.support if self.support.ndim == 2 else self.support[i],
                       self.weights[i])

    def __len__(self) -> int:
        return len(self.times)


def deviation(base, tuned, p: int = 2) -> np.ndarray:
    """D(t_i) = W_p(base.measure(i), tuned.measure(i)) with geodesic ground cost, for every
    saved time of two runs (Trajectory or Solution) with the same saved times."""
    if len(base.times) != len(tuned.times) or np.any(base.times != tuned.times):
        raise ValueError("base and tuned runs must have the same saved times")
    p = check_real(p, "p", low=1)
    out = np.empty(len(base.times))
    for i in range(len(out)):
        mu, nu = base.measure(i), tuned.measure(i)
        out[i] = wasserstein_circle(mu, nu, p) if mu.d == 2 else wasserstein_sphere(mu, nu, p)
    return out


def deviations(base, tuned, max_support: int | None = 2000) -> dict:
    """D(t_i) in W_1 and W_2 (geodesic) for every saved time, with certified error bounds:
    ``{"w1", "w2", "w1_bound", "w2_bound"}`` (arrays). On S^1 exact (bounds 0); on higher
    spheres exact while both measures have at most ``max_support`` atoms of positive weight
    (None: always),
    otherwise :func:`continuum.wasserstein.wasserstein_reduced` (exact transport between the
    measures merged into ``max_support`` clusters, |error| <= bound)."""
    if len(base.times) != len(tuned.times) or np.any(base.times != tuned.times):
        raise ValueError("base and tuned runs must have the same saved times")
    out = {k: np.zeros(len(base.times)) for k in ("w1", "w2", "w1_bound", "w2_bound")}
    for i in range(len(base.times)):
        mu, nu = base.measure(i), tuned.measure(i)
        if mu.d == 2:
            out["w1"][i], out["w2"][i] = wasserstein_circle(mu, nu, 1), \
                wasserstein_circle(mu, nu, 2)
            continue
        values, bounds = wasserstein_reduced(mu, nu, max_support)
        for p in (1, 2):
            out[f"w{p}"][i], out[f"w{p}_bound"][i] = values[p], bounds[p]
    return out


def time_to_deviation(times, D, delta: float) -> float:
    """First time D reaches ``delta`` (linear interpolation between saved times), inf if never."""
    times, D = check_array(times, "times", ndim=1), check_array(D, "D", ndim=1)
    if times.shape != D.shape:
        raise ValueError(f"times and D must have the same length, got {times.size} and "
                         f"{D.size}")
    delta = check_real(delta, "delta", low=0, low_open=True)
    hit = np.nonzero(D >= delta)[0]
    if hit.size == 0:
        return float("inf")
    k = hit[0]
    if k == 0:
        return float(times[0])
    t0, t1, d0, d1 = times[k - 1], times[k], D[k - 1], D[k]
    return float(t0 + (delta - d0) * (t1 - t0) / (d1 - d0))


@dataclass
class ForgettingRun:
    """Base and fine-tuned runs from one initial measure, and their deviation."""

    times: np.ndarray
    deviation_w2: np.ndarray
    deviation_w1: np.ndarray
    base: object
    tuned: object
    delta_norm: float
    gronwall: np.ndarray
    info: dict = field(default_factory=dict)

    def time_to_deviation(self, delta: float, p: int = 2) -> float:
        """T_dev(delta) for D = W_p (p = 1 or 2)."""
        return time_to_deviation(self.times, self.deviation_w2 if p == 2 else self.deviation_w1,
                                 delta)


def forgetting_run(model, tuned, backend: str = "particles", rho0=None, T: float = 10.0,
                   times=None, n: int = 1000, x0=None, seed=0, resolution=None,
                   **options) -> ForgettingRun:
    """Run ``model`` (base) and ``tuned`` from the same initial measure and measure D(t).

    Parameters
    ----------
    model, tuned : Attention, MultiHead or Layers
        Base and fine-tuned models (e.g. ``tuned = model.perturbed(V=lora_update(...))``, or
        ``heads.perturbed(head=h, V=...)``), of the same kind and structure, same d.
    backend : {"particles", "spectral", "fv", "fem"}
    rho0 : callable or None
        Initial density (continuum backends: required; particles: sampled, default uniform).
    T, times : horizon and saved times.
    n, x0, seed : particles: number of tokens, or the tokens themselves, and the sampling seed.
    resolution : continuum resolution (see ``continuum.solve``).
    **options : passed to ``particles.simulate`` or ``continuum.solve``.
    """
    pairs = paired_heads(model, tuned)  # the same kind and structure (several heads, layers)
    if tuned.d != model.d:
        raise ValueError(f"base has d={model.d}, tuned has d={tuned.d}")
    check_choice(backend, "backend", BACKENDS)
    if times is None:
        times = np.linspace(0.0, T, 51)
    args = (backend, rho0, T, times, n, x0, seed, resolution)
    base = run_backend(model, *args, **options)
    fine = run_backend(tuned, *args, **options)
    delta_norm, bound = gronwall_curve(model, tuned, base.times)
    D = deviations(base, fine, max_support=None)  # exact; one cost matrix for W_1 and W_2
    w2, w1 = D["w2"], D["w1"]
    info = {"backend": backend, "lipschitz": lipschitz_constants(model),
            "cost": "geodesic (arc length)", "Q_or_K_changed":
            any(bool(np.any(h2.A != h.A)) for *_, h, h2 in pairs)}
    return ForgettingRun(times=np.asarray(base.times), deviation_w2=w2, deviation_w1=w1,
                         base=base, tuned=fine, delta_norm=delta_norm, gronwall=bound,
                         info=info)


def gronwall_curve(model, tuned, times):
    """(||Delta||_2, the Gronwall bound on D at ``times``): ||Delta|| is the largest spectral
    norm of the changes of Q, K and V (the LoRA update's norm for one target); the bound's
    forcing covers all of them (``bounds.perturbation_log_forcing``), zeros when the models
    are the same. Several heads or layers: the largest over them."""
    delta_norm = max(float(np.linalg.norm(getattr(h2, m) - getattr(h, m), 2))
                     for *_, h, h2 in paired_heads(model, tuned) for m in "QKV")
    return delta_norm, gronwall_bound(model, tuned, times)


def run_backend(model, backend: str = "particles", rho0=None, T: float = 10.0, times=None,
                n: int = 1000, x0=None, seed=0, resolution=None, on_unresolved="raise",
                **options):
    """One run of ``model`` on a backend (arguments as in :func:`forgetting_run`): a
    ``particles.Trajectory`` or a ``continuum.Solution``. The particles' initial tokens are
    ``x0``, or n tokens sampled from rho0 (default uniform) with ``seed``, so two calls with
    the same arguments start from the same measure. ``on_unresolved`` goes to
    ``continuum.solve`` (continuum backends): "raise" (default) an under-resolved run as
    ``continuum.UnderResolved``, or "warn" and return it flagged in
    ``info["under_resolved_from"]``."""
    check_choice(backend, "backend", BACKENDS)
    if times is None:
        times = np.linspace(0.0, T, 51)
    if backend == "particles":
        if x0 is None:
            x0 = sample(rho0 if rho0 is not None else "uniform", n=n, d=model.d, seed=seed)
        return simulate(model, x0, T, times=times, **options)
    if rho0 is None:
        raise ValueError(f"backend={backend!r} needs rho0 (a density callable)")
    return solve(model, rho0, T, method=backend, resolution=resolution, times=times,
                 on_unresolved=on_unresolved, **options)
