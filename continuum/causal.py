"""The causal mean-field limit: position slices mu_s, s in [0, 1] (docs/design.md, "Causal
masks"), the part shared by the S^1 and S^2 discretisations.

The tokens at position s are moved by the field of bar mu_s = (1/s) int_0^s mu_{s'} ds'
(bar mu_0 = mu_0). Positions s_m = m / (M - 1), the prefix average by the trapezoid rule on
[0, s_m] (:func:`position_slices`, second order in 1/(M - 1) for densities smooth in s); the
solvers (:mod:`continuum.circle.causal`, :mod:`continuum.sphere.causal`) return a
:class:`CausalSolution`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_integer
from .measure import Measure
from .resolution import settle_resolution
from .solution import finish_solution

__all__ = ["position_slices", "CausalSolution", "finish_causal", "slice_density",
           "check_causal_run"]


def slice_density(rho0, s: float):
    """rho0(., s) as a callable of points alone (rho0 a callable of (points, s))."""
    return lambda p: rho0(p, np.full(len(p), s))


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


def check_causal_run(model, d, rho0, slices, T, times, rtol, atol, tail_tol, progress,
                     max_steps, on_unresolved):
    """The checks of a causal spectral run on S^{d-1}, before any work: the model's d, rho0 a
    callable of (points, s), the slices, the saved times and the DOP853 options. Returns
    (s, C, q, T, times, (rtol, atol, tail_tol, max_steps), on_unresolved)."""
    from .initial import check_times
    from .resolution import check_on_unresolved
    from .timestep import check_dop853_options

    if model.d != d:
        raise ValueError(f"the causal continuum on S^{d - 1} needs a d={d} model, got "
                         f"d={model.d}")
    s, C, q = position_slices(slices)
    if not callable(rho0):
        raise TypeError(f"rho0 must be a callable of (points (P, {d}), s (P,)) for a causal "
                        f"model, got {type(rho0).__name__}")
    T, times = check_times(T, times)
    options = check_dop853_options(rtol, atol, tail_tol, progress, max_steps)
    return s, C, q, T, times, options, check_on_unresolved(on_unresolved)


def finish_causal(model, times, points, quadrature, densities, info, s, q, on_unresolved):
    """The CausalSolution of slice densities (nt', M, n) on one set of nodes: each slice a
    checked :class:`~continuum.solution.Solution` (of the unmasked model), the run's
    under-resolution settled as every solver's (``UnderResolved.solution`` is the
    CausalSolution)."""
    base = model.unmasked()
    parts = tuple(finish_solution(base, times, points, quadrature,
                                  np.ascontiguousarray(densities[:, m]), dict(info, slice=m))
                  for m in range(len(s)))
    if "stopped_at" in parts[0].info:
        info["stopped_at"] = parts[0].info["stopped_at"]
    for a in (s, q):
        a.setflags(write=False)
    out = CausalSolution(times=parts[0].times, positions=s, slices=parts, position_weights=q,
                         info=info, model=model)
    return settle_resolution(out, on_unresolved)
