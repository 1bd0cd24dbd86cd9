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
from dataclasses import dataclass

import numpy as np

from ..checks import check_integer, check_memory
from ..geometry import angles_to_circle
from ..initial import check_times, nodal_density
from ..measure import Measure
from ..resolution import check_on_unresolved, settle_resolution, spectral_indicator
from ..solution import finish_solution
from ..timestep import MAX_STEPS, check_dop853_options, collapse_reason, march_dop853
from .field import choose_path, circle_velocity
from .grid import check_resolution, grid
from .spectral import REMEDY, spectral_rhs, spectral_tail

__all__ = ["solve_causal_spectral", "CausalSolution", "position_slices"]


def position_slices(M: int):
    """(s, C, q): the M positions s_m = m/(M-1), the lower-triangular prefix-average matrix
    C (bar mu_m = sum_m' C_{m m'} mu_{m'}: trapezoid rule on [0, s_m] divided by s_m, C_00 = 1;
    every row sums to 1) and the trapezoid weights q of int_0^1 ds (sum 1)."""
    M = check_integer(M, "slices", low=2)
    s = np.linspace(0.0, 1.0, M)
    step = 1.0 / (M - 1)
    C = np.zeros((M, M))
    C[0, 0] = 1.0
    for m in range(1, M):
        C[m, :m + 1] = step
        C[m, 0] = C[m, m] = step / 2
        C[m] /= s[m]
    q = np.full(M, step)
    q[0] = q[-1] = step / 2
    return s, C, q


@dataclass(frozen=True, eq=False)
class CausalSolution:
    """The slices mu_{s_m} of the causal continuum at saved times.

    Attributes
    ----------
    times : ndarray (nt,)
    positions : ndarray (M,)
        The slice positions s_m = m / (M - 1).
    slices : tuple of M Solution
        Slice m as a :class:`~continuum.solution.Solution` (its nodes, densities (nt, n),
        diagnostics, checked invariants).
    position_weights : ndarray (M,)
        Trapezoid weights of int_0^1 ds.
    info : dict
    model : Attention (causal)

    ``densities`` is the (nt, M, n) array; ``measure(i)`` the whole cloud's limit
    int_0^1 mu_s ds at time i, ``measure(i, m)`` slice m.
    """

    times: np.ndarray
    positions: np.ndarray
    slices: tuple
    position_weights: np.ndarray
    info: dict
    model: object

    def __len__(self) -> int:
        return len(self.times)

    @property
    def points(self) -> np.ndarray:
        return self.slices[0].points

    @property
    def quadrature(self) -> np.ndarray:
        return self.slices[0].quadrature

    @property
    def densities(self) -> np.ndarray:
        """Nodal densities, shape (nt, M, n)."""
        return np.stack([sl.densities for sl in self.slices], axis=1)

    def density(self, i: int, m: int | None = None) -> np.ndarray:
        """Slice m's nodal density at time i, or (m None) that of int_0^1 mu_s ds."""
        if m is not None:
            return self.slices[m].density(i)
        return self.position_weights @ np.stack([sl.density(i) for sl in self.slices])

    def measure(self, i: int, m: int | None = None) -> Measure:
        """Slice m's Measure at time i, or (m None) the measure int_0^1 mu_s ds of all tokens
        (negative nodal values clipped, as :meth:`Solution.measure`)."""
        if m is not None:
            return self.slices[m].measure(i)
        masses = np.maximum(self.density(i), 0.0) * self.quadrature
        return Measure(self.points, masses / masses.sum())


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
    if model.d != 2:
        raise ValueError(f"the causal continuum on S^1 needs a d=2 model, got d={model.d}")
    n = check_resolution(resolution, minimum=8)
    s, C, q = position_slices(slices)
    M = s.size
    if not callable(rho0):
        raise TypeError("rho0 must be a callable of (points (P, 2), s (P,)) for a causal "
                        f"model, got {type(rho0).__name__}")
    T, times = check_times(T, times)
    rtol, atol, tail_tol, max_steps = check_dop853_options(rtol, atol, tail_tol, progress,
                                                           max_steps)
    on_unresolved = check_on_unresolved(on_unresolved)
    check_memory(8.0 * M * n * (times.size + 30), "resolution and slices",
                 f"{M} slices x {n} nodes x {times.size} saved times")
    theta = grid(n)
    h = 2 * np.pi / n
    points = angles_to_circle(theta)
    quadrature = np.full(n, h)
    rho, factors = np.empty((M, n)), np.empty(M)
    for m in range(M):
        rho[m], factors[m] = nodal_density(
            lambda p, sm=s[m]: rho0(p, np.full(len(p), sm)), points, quadrature, "spectral", n)
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
    parts = tuple(finish_solution(base, times, points, quadrature,
                                  np.ascontiguousarray(states[:, m]), dict(info, slice=m))
                  for m in range(M))
    if "stopped_at" in parts[0].info:
        info["stopped_at"] = parts[0].info["stopped_at"]
    for a in (s, q):
        a.setflags(write=False)
    out = CausalSolution(times=parts[0].times, positions=s, slices=parts, position_weights=q,
                         info=info, model=model)
    return settle_resolution(out, on_unresolved)  # UnderResolved.solution: the CausalSolution
