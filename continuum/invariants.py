"""Invariants every result satisfies before it is returned (issue 22): the continuum
solvers' :func:`continuum.solution.finish_solution` and ``particles.simulate`` call
:func:`check_result`; a violated invariant is an :class:`InvariantError` naming the quantity,
its value and the bound, never a returned number.

Checked:

- finite values (densities, points, weights);
- points on the unit sphere to :data:`continuum.geometry.SPHERE_TOL`;
- measure weights (particles) non-negative and summing to 1 to ``measure.MASS_TOL``;
- non-negative quadrature weights (and non-negative densities where the scheme
  promises positivity: finite volumes, DG with its limiter), up to :func:`roundoff_floor`;
- saved times strictly increasing and equal to the requested ones (so the last is T when T
  was asked, 51 equispaced by default), unless the run stopped early as under-resolved;
- mass conserved: |m_i - m_0| <= :func:`mass_bound` at every saved time i.

The mass bound. Every scheme here conserves the discrete mass exactly in exact arithmetic
(telescoping fluxes, a zero mean mode, a zero l = 0 coefficient), so the drift is round-off
only. One step updates each nodal value by a fixed number of floating-point operations (a
Runge-Kutta combination of its stages: SSP-RK3 about 20, DOP853's 12 stages about 100), each
with relative error at most eps = 2^-52 of values bounded by |rho_j| (a CFL or error-controlled
step keeps the increment dt |div F| of the order of rho itself), so the quadrature sum of the
errors of one step is at most ``OPS_PER_STEP`` eps sum_j |rho_j| w_j, and the mass evaluation
itself adds log2(M) eps of it (pairwise summation). Hence, with S steps taken,

    |m_i - m_0| <= (OPS_PER_STEP (S + 1) + log2 M) eps max_i sum_j |rho_ij| w_j,

OPS_PER_STEP = 128. This is a worst-case bound, not a fit: measured drifts are 1e-15 to
1e-13 over thousands of steps, far below it, so a violation means a scheme lost mass.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import SPHERE_TOL
from .measure import MASS_TOL

__all__ = ["InvariantError", "check_result", "mass_bound", "roundoff_floor", "OPS_PER_STEP"]

#: floating-point operations per nodal value and time step that the mass bound allows
OPS_PER_STEP = 128
EPS = float(np.finfo(np.float64).eps)


class InvariantError(RuntimeError):
    """A result violates an invariant of its scheme. Attributes: ``quantity`` (what broke),
    ``value`` (its worst value) and ``bound`` (what it had to stay within)."""

    def __init__(self, label: str, quantity: str, value: float, bound: float, detail: str = ""):
        super().__init__(f"{label}: invariant violated: {quantity} = {value:.6g}, bound "
                         f"{bound:.6g}{detail}; the result is not returned (a bug of the "
                         "scheme: please report it with the call)")
        self.quantity, self.value, self.bound = quantity, float(value), float(bound)


def mass_bound(steps: int, total_variation: float, size: int) -> float:
    """(OPS_PER_STEP (steps + 1) + log2 size) eps total_variation (module docstring), with
    total_variation = max_i sum_j |rho_ij| w_j."""
    return (OPS_PER_STEP * (steps + 1) + math.log2(max(size, 2))) * EPS * total_variation


def roundoff_floor(values: np.ndarray) -> float:
    """-OPS_PER_STEP eps max |values|: how far below 0 a value that is non-negative in exact
    arithmetic can come out after the operations of one step."""
    return -OPS_PER_STEP * EPS * float(np.max(np.abs(values), initial=0.0))


def check_result(label: str, times, requested, points, *, weights=None, densities=None,
                 quadrature=None, steps: int = 0, positive: bool = False,
                 stopped: bool = False) -> None:
    """Raise :class:`InvariantError` unless the result satisfies the module's invariants.

    ``points`` (M, d) or (nt, M, d); ``weights`` (M,) measure weights (particles) or
    ``densities`` (nt, M) with ``quadrature`` (M,) (continuum); ``requested`` the saved times
    asked for; ``steps`` the time steps taken (mass bound); ``positive`` if the scheme promises
    non-negative densities; ``stopped`` if the run ended early as under-resolved (its times
    are then a prefix of the requested ones)."""
    times = np.asarray(times)
    expected = np.asarray(requested)[: len(times)] if stopped else np.asarray(requested)
    if times.shape != expected.shape or not np.array_equal(times, expected):
        raise InvariantError(label, "saved times (count)", len(times), len(expected),
                             f" (saved {times[:3]}...{times[-1:]}, asked for "
                             f"{expected[:3]}...{expected[-1:]})")
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise InvariantError(label, "min increment of the saved times",
                             float(np.diff(times).min()), 0.0)
    _finite(label, "points", points)
    radius = np.abs(np.linalg.norm(points, axis=-1) - 1.0).max(initial=0.0)
    if radius > SPHERE_TOL:
        raise InvariantError(label, "max | |x| - 1 | of the points", radius, SPHERE_TOL)
    if weights is not None:
        _finite(label, "weights", weights)
        _non_negative(label, "weights", weights, 0.0)
        total = float(np.sum(weights))
        if abs(total - 1.0) > MASS_TOL:  # the tolerance of every Measure
            raise InvariantError(label, "|sum of the weights - 1|", abs(total - 1.0), MASS_TOL)
    if densities is None:
        return
    if len(densities) != len(times):
        raise InvariantError(label, "saved densities (count)", len(densities), len(times))
    _finite(label, "densities", densities)
    _non_negative(label, "quadrature weights", quadrature, 0.0)
    if positive:
        _non_negative(label, "densities", densities, roundoff_floor(densities))
    mass = densities @ quadrature
    bound = mass_bound(steps, float((np.abs(densities) @ quadrature).max(initial=0.0)),
                       quadrature.size)
    drift = float(np.abs(mass - mass[0]).max(initial=0.0))
    if drift > bound:
        raise InvariantError(label, "mass drift max_i |m_i - m_0|", drift, bound,
                             f" (after {steps} steps)")


def _finite(label: str, quantity: str, values) -> None:
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise InvariantError(label, f"non-finite {quantity} (count)", bad, 0)


def _non_negative(label: str, quantity: str, values, floor: float) -> None:
    low = float(np.min(values, initial=0.0))
    if low < floor:
        raise InvariantError(label, f"min of the {quantity}", low, floor)
