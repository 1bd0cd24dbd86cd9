"""Fourier pseudo-spectral solver for the continuity equation on S^1.

.. math::

    \\partial_t \\rho + \\partial_\\theta (\\rho\\, v[\\rho]) = 0, \\qquad
    v[\\rho](\\theta) = \\langle X[\\rho](x(\\theta)), \\tau(\\theta) \\rangle,

with rho the density w.r.t. arc length on n equispaced nodes. Per evaluation:

1. the speed v at the nodes from the masses m_j = rho_j h (trapezoid rule, exact for
   trigonometric polynomials of degree < n): FFT convolution when Q^T K is a multiple of a
   rotation, else the Numba kernel (``continuum.circle.field.circle_velocity``);
2. the flux rho v de-aliased by 3/2 padding: rho and v are interpolated to 3n/2 nodes,
   multiplied, and projected back on the modes |k| < n/2 (exact for the quadratic product);
3. -d/dtheta of the flux, spectrally (the mean mode is untouched: mass is conserved to
   round-off).

Time stepping: scipy's DOP853 (error-controlled, rtol/atol). Accuracy is spectral while the
density is resolved: the Fourier coefficients of rho must decay to round-off within the
grid. Under-resolution (:mod:`continuum.resolution`), checked at every saved time: the
spectral tail max_{|k| >= n/3} |rho_k| / |rho_0| above ``tail_tol``, or a nodal density
below -tail_tol max rho (``continuum.resolution.negative_density``: a resolved density
carries relative errors of the size of its tail, round-off is 1e-16 and DOP853's error rtol = 1e-10, so an
undershoot beyond tail_tol is the Gibbs oscillation of an unresolved one). From then on the
density is under-resolved (e.g. clusters narrower than a few grid cells): more nodes or the
finite-volume solver are the remedy; with ``on_unresolved="raise"`` (the default) the run
stops at that saved time and raises ``continuum.UnderResolved`` holding the partial Solution.
"""

from __future__ import annotations

import time as _time

import numpy as np

from ..checks import check_memory
from ..family import Schedule, layers_of
from ..geometry import angles_to_circle
from ..initial import check_times, nodal_density
from ..resolution import check_on_unresolved, settle_resolution, spectral_indicator
from ..solution import Solution, finish_solution
from ..timestep import MAX_STEPS, check_dop853_options, collapse_reason, march_dop853
from .field import choose_path, circle_velocity
from .grid import check_resolution, fourier_interpolate, fourier_restrict, grid, spectral_derivative

__all__ = ["solve_spectral", "spectral_tail"]


def spectral_tail(rho: np.ndarray) -> float:
    """max_{k >= n/3} |rho_k| / |rho_0|: how much of the density the grid fails to resolve."""
    c = np.abs(np.fft.rfft(rho))
    return float(c[rho.size // 3:].max() / c[0])


def spectral_rhs(model, rho, theta, h, path, source=None):
    """d rho / dt = -d/dtheta (rho v[rho]) on the nodes (de-aliased by 3/2 padding); with
    ``source`` the speed is that of the density ``source`` (rho moved by v[source]: the causal
    slices, :mod:`continuum.circle.causal`)."""
    n = rho.size
    v, _ = circle_velocity(model, theta, (rho if source is None else source) * h, path)
    m = 3 * n // 2 + (3 * n // 2) % 2
    flux = fourier_interpolate(rho, m) * fourier_interpolate(v, m)
    return -spectral_derivative(fourier_restrict(flux, n), n)


def solve_spectral(model, rho0, T, resolution=128, times=None, rtol=1e-10, atol=1e-12,
                   field="auto", tail_tol=1e-6, progress=None, max_steps=MAX_STEPS,
                   on_unresolved="raise") -> Solution:
    """Spectral solution on S^1 (d = 2) of d/dt rho + d/dtheta (rho v[rho]) = 0.

    Parameters
    ----------
    model : Attention, MultiHead or Layers with d = 2 (``continuum.family``)
    rho0 : callable (M, 2) -> (M,)
        Initial density w.r.t. arc length (integral 1 within 1e-2; rescaled to discrete mass 1).
    T : float
    resolution : int
        Number of nodes n (even, >= 8).
    times : saved times in [0, T] (default 51 equispaced)
    rtol, atol : DOP853 tolerances.
    field : {"auto", "fft", "kernel"}
        How the speed is computed (see circle_velocity).
    tail_tol : float
        Under-resolved when the spectral tail exceeds this, or the nodal density is below
        -tail_tol max rho (module docstring).
    progress : bool or None
        tqdm bar on stderr (None: only when stderr is a terminal).
    max_steps : int
        Step budget: when DOP853's step stays (20 steps running) so small that the rest of
        the run would need more, the solver stops with ``StepCollapseError`` saying why
        (under-resolution: the spectral tail; USA's scale e^{beta ||Q^T K||}; stiffness).
    on_unresolved : {"raise", "warn"}
        An under-resolved run (module docstring) stops at the first unresolved saved time
        and raises ``continuum.UnderResolved`` ("raise"), or runs to T, warns once and is
        flagged in ``info["under_resolved_from"]`` ("warn"); ``continuum.resolution``.
    """
    if model.d != 2:
        raise ValueError(f"the circle solvers need a d=2 model, got d={model.d}")
    n = check_resolution(resolution, minimum=8)
    T, times = check_times(T, times)
    rtol, atol, tail_tol, max_steps = check_dop853_options(rtol, atol, tail_tol, progress,
                                                           max_steps)
    on_unresolved = check_on_unresolved(on_unresolved)
    # saved densities, DOP853's 12 stages and work vectors, the 3/2-padded product
    check_memory(8.0 * n * (times.size + 30), "resolution",
                 f"{n} nodes x {times.size} saved times")
    theta = grid(n)
    h = 2 * np.pi / n
    points = angles_to_circle(theta)
    quadrature = np.full(n, h)
    rho, factor = nodal_density(rho0, points, quadrature, "spectral", n)
    paths = [choose_path(m, field) for m in layers_of(model)]  # every layer's, before any work
    path = paths[0] if len(set(paths)) == 1 else paths
    # (model in force, its path): a Layers switches it (continuum.family.Schedule)
    schedule = Schedule(model, lambda m: (m, choose_path(m, field)))
    wall = _time.perf_counter()
    info = {"method": "spectral", "resolution": n, "rtol": rtol, "atol": atol,
            "initial_rescaling": factor, "field": path}
    # first step: a grid-cell crossing at the initial speed (DOP853's own guess ignores the
    # advective stability limit ~ h / max|v|; a stage of an unstable first step can overflow)
    model0, path0 = schedule.built
    speed = float(np.abs(circle_velocity(model0, theta, rho * h, path0)[0]).max())
    t_end = max(T, times[-1])
    first = min(t_end, h / speed) if t_end > 0 and speed > 0 else None
    remedy = REMEDY.format(n=n)
    densities, tails, run = march_dop853(
        lambda y: spectral_rhs(schedule.built[0], y, theta, h, schedule.built[1]), rho, times,
        T, rtol, atol, first,
        f"spectral solver (n={n})", collapse_reason(model, "S1 spectral"), spectral_tail,
        tail_tol,
        f"{n} nodes", remedy, progress, max_steps,
        unresolved=lambda y: spectral_indicator(y, spectral_tail(y), tail_tol),
        stop_unresolved=on_unresolved == "raise", switch=schedule.switch)
    info.update(run, spectral_tail=tails, wall_time_s=_time.perf_counter() - wall)
    if "under_resolved_from" in info:
        info["under_resolved_remedy"] = remedy
    return settle_resolution(finish_solution(model, times, points, quadrature, densities, info),
                             on_unresolved)


#: what to do about an under-resolved spectral run on S^1
REMEDY = "use more nodes (resolution > {n}), method='fv', or resolution='auto'"
