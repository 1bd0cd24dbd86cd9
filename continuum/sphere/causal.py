"""The causal mean-field limit on S^2 (spectral): position slices mu_s, each moved by the
field of bar mu_s = (1/s) int_0^s mu_{s'} ds' (:mod:`continuum.causal`).

M slices s_m = m / (M - 1), the prefix average by the trapezoid rule (second order in
1/(M - 1)), each slice in spherical harmonics up to degree L with the right-hand side of
:class:`continuum.sphere.spectral.SphereSpectral` (rho_m moved by the field of bar mu_m: the
average is linear in the coefficients), all slices in one DOP853 system of M (L + 1)^2
coefficients. Densities at the output Gauss-Legendre nodes of the S^2 spectral solver.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np

from ..causal import CausalSolution, check_causal_run, finish_causal, slice_density
from ..checks import check_memory
from ..timestep import MAX_STEPS, collapse_reason, march_dop853
from .spectral import (
    REMEDY,
    SphereSpectral,
    _Grid,
    check_band_limit,
    from_real,
    initial_coefficients,
    initial_indicator,
    spectral_tail,
    synthesise,
)

__all__ = ["solve_causal_sphere_spectral", "CausalSolution"]


def solve_causal_sphere_spectral(model, rho0, T, resolution=16, slices=9, times=None,
                                 rtol=1e-10, atol=1e-12, field="auto", tail_tol=1e-6,
                                 progress=None, max_steps=MAX_STEPS,
                                 on_unresolved="raise") -> CausalSolution:
    """Causal continuum on S^2 (module docstring); parameters as
    :func:`continuum.sphere.spectral.solve_sphere_spectral` with ``rho0`` a callable of
    (points (P, 3), s (P,)) and M = ``slices``. Returns a CausalSolution (densities
    (nt, M, n) at the output nodes)."""
    s, C, q, T, times, options, on_unresolved = check_causal_run(
        model, 3, rho0, slices, T, times, rtol, atol, tail_tol, progress, max_steps,
        on_unresolved)
    rtol, atol, tail_tol, max_steps = options
    L = check_band_limit(resolution)
    M = s.size
    check_memory(8.0 * M * (L + 1) ** 2 * (times.size + 30), "resolution and slices",
                 f"{M} slices x band limit {L} x {times.size} saved times")
    base = model.unmasked()
    disc = SphereSpectral(base, L, field)
    initial = [initial_coefficients(slice_density(rho0, sm), L) for sm in s]
    a0 = np.stack([a for a, _ in initial])
    nc = a0.shape[1]

    def rhs(y):
        A = y.reshape(M, nc)
        prefix = C @ A
        return np.concatenate([disc.rhs(A[m], source=prefix[m]) for m in range(M)])

    def tail(y):
        return max(spectral_tail(a, L) for a in y.reshape(M, nc))

    def unresolved(y):
        return next((why for why in (initial_indicator(a, L, tail_tol)
                                     for a in y.reshape(M, nc)) if why), "")

    speed = 0.0
    for a in C @ a0:
        f0 = disc.field_at_nodes(from_real(a, L), synthesise(a, L, *disc.grid.shape))
        speed = max(speed, float(np.linalg.norm(f0, axis=1).max()))
    t_end = max(T, times[-1])
    first = min(t_end, math.pi / (L * speed)) if t_end > 0 and speed > 0 else None
    remedy = REMEDY.format(L=L)
    wall = _time.perf_counter()
    coefficients, tails, run = march_dop853(
        rhs, a0.ravel(), times, T, rtol, atol, first,
        f"causal spectral S^2 solver (L={L}, M={M})", collapse_reason(base, "S2 spectral"),
        tail, tail_tol, f"band limit L={L}", remedy, progress, max_steps,
        unresolved=unresolved, stop_unresolved=on_unresolved == "raise")
    info = {"method": "spectral", "causal": True, "resolution": L, "band_limit": L,
            "slices": M, "rtol": rtol, "atol": atol, "field": disc.path,
            "initial_rescaling": np.array([f for _, f in initial])}
    info.update(run, spectral_tail=tails, wall_time_s=_time.perf_counter() - wall)
    if "under_resolved_from" in info:
        info["under_resolved_remedy"] = remedy
    out_grid = _Grid(L + 1, 2 * L + 2)
    coefficients = np.asarray(coefficients).reshape(len(coefficients), M, nc)
    densities = np.stack([[synthesise(a, L, *out_grid.shape) for a in row]
                          for row in coefficients])
    return finish_causal(model, times, np.array(out_grid.points), np.array(out_grid.weights),
                         densities, info, s, q, on_unresolved)
