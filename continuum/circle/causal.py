"""The causal mean-field limit on S^1: a density for each position s in [0, 1].

With a causal mask, token i attends to the tokens j <= i. In the limit of many tokens the
tokens at position s (a fraction s of the sequence before them) have a law mu_s, and each is
moved by the field of the probability measure of its prefix,

.. math::

    \\partial_t \\mu_s + \\partial_\\theta\\big(\\mu_s\\, v[\\bar\\mu_s]\\big) = 0, \\qquad
    \\bar\\mu_s = \\frac{1}{s}\\int_0^s \\mu_{s'}\\, ds', \\qquad \\bar\\mu_0 = \\mu_0,

v the tangential attention speed of the unmasked model (SA, or USA applied to the
probability measure bar mu_s: the 1/i normalisation of the particles). Two exact facts:
an s-independent start stays s-independent and equals the unmasked solution (bar mu_s = mu_s
for every s), and mu_0 moves by its own field alone (the unmasked solution from mu_0).

Discretisation: M position slices s_m = m / (M - 1) (m = 0..M-1), the prefix average by the
trapezoid rule on [0, s_m] (bar mu_m = sum_{m' <= m} C_{m m'} mu_{m'}, rows of C summing to
1, second order in 1/(M - 1) for densities smooth in s), each slice on the Fourier
pseudo-spectral grid of :mod:`continuum.circle.spectral` (the same right-hand side, with the
speed of bar mu_m), all slices in one DOP853 system (the state is (M, n)). The whole token
cloud's limit is int_0^1 mu_s ds, by the same trapezoid rule (:meth:`CausalSolution.measure`).
"""

from __future__ import annotations

import time as _time

import numpy as np

from ..causal import (
    CausalSolution,
    check_causal_run,
    finish_causal,
    position_slices,
    slice_density,
)
from ..checks import check_memory
from ..geometry import angles_to_circle
from ..initial import nodal_density
from ..resolution import spectral_indicator
from ..timestep import MAX_STEPS, collapse_reason, march_dop853
from .field import choose_path, circle_velocity
from .grid import check_resolution, grid
from .spectral import REMEDY, spectral_rhs, spectral_tail

__all__ = ["solve_causal_spectral", "CausalSolution", "position_slices"]


def solve_causal_spectral(model, rho0, T, resolution=128, slices=17, times=None, rtol=1e-10,
                          atol=1e-12, field="auto", tail_tol=1e-6, progress=None,
                          max_steps=MAX_STEPS, on_unresolved="raise") -> CausalSolution:
    """Causal continuum on S^1 (module docstring): M = ``slices`` position slices, each on
    the n = ``resolution`` node Fourier grid, by DOP853 (rtol, atol).

    Parameters
    ----------
    model : Attention with d = 2 (its mask is implied; the slices' fields use the unmasked
        model on the prefix averages)
    rho0 : callable (points (P, 2), s (P,)) -> densities (P,)
        The initial law at position s (w.r.t. arc length, integral 1 for every s; each slice
        rescaled to discrete mass 1, factors in ``info['initial_rescaling']``).
    T, times, rtol, atol, field, tail_tol, progress, max_steps, on_unresolved
        As :func:`continuum.circle.spectral.solve_spectral`; the spectral tail and the
        negative-density test are taken over all slices.

    Returns
    -------
    CausalSolution (densities of shape (nt, M, n))
    """
    s, C, q, T, times, options, on_unresolved = check_causal_run(
        model, 2, rho0, slices, T, times, rtol, atol, tail_tol, progress, max_steps,
        on_unresolved)
    rtol, atol, tail_tol, max_steps = options
    n = check_resolution(resolution, minimum=8)
    M = s.size
    check_memory(8.0 * M * n * (times.size + 30), "resolution and slices",
                 f"{M} slices x {n} nodes x {times.size} saved times")
    theta = grid(n)
    h = 2 * np.pi / n
    points = angles_to_circle(theta)
    quadrature = np.full(n, h)
    rho, factors = np.empty((M, n)), np.empty(M)
    for m in range(M):
        rho[m], factors[m] = nodal_density(slice_density(rho0, s[m]), points, quadrature,
                                           "spectral", n)
    base = model.unmasked()
    path = choose_path(base, field)

    def rhs(y):
        R = y.reshape(M, n)
        prefix = C @ R
        return np.concatenate([spectral_rhs(base, R[m], theta, h, path, source=prefix[m])
                               for m in range(M)])

    def tail(y):
        return max(spectral_tail(r) for r in y.reshape(M, n))

    speed = max(float(np.abs(circle_velocity(base, theta, r * h, path)[0]).max())
                for r in C @ rho)
    t_end = max(T, times[-1])
    first = min(t_end, h / speed) if t_end > 0 and speed > 0 else None
    remedy = REMEDY.format(n=n)
    wall = _time.perf_counter()
    states, tails, run = march_dop853(
        rhs, rho.ravel(), times, T, rtol, atol, first, f"causal spectral solver (n={n}, M={M})",
        collapse_reason(base, "S1 spectral"), tail, tail_tol, f"{n} nodes", remedy, progress,
        max_steps, unresolved=lambda y: spectral_indicator(y, tail(y), tail_tol),
        stop_unresolved=on_unresolved == "raise")
    info = {"method": "spectral", "causal": True, "resolution": n, "slices": M, "rtol": rtol,
            "atol": atol, "initial_rescaling": factors, "field": path}
    info.update(run, spectral_tail=tails, wall_time_s=_time.perf_counter() - wall)
    if "under_resolved_from" in info:
        info["under_resolved_remedy"] = remedy
    states = np.asarray(states).reshape(len(states), M, n)
    return finish_causal(model, times, points, quadrature, states, info, s, q, on_unresolved)
