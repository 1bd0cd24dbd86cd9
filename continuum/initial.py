"""Validation of solver inputs: the initial density rho0 (and its discrete rescaling to unit
mass) and the saved times.

A discrete integral of rho0 farther than MASS_ERROR from 1 has two causes that need different
answers: rho0 is not a probability density (a ValueError naming rho0), or it is one but the
grid misses its spike (``continuum.UnderResolved`` at time 0 naming the resolution). The two
are told apart by integrating rho0 again on a refined quadrature, :func:`refined_quadrature`
(S^1: the midpoint rule on 2^16 nodes; S^2: a Gauss-Legendre grid of 512 x 1024 nodes, exact
for harmonics of degree < 1024): it resolves densities down to widths of about 1e-4 (S^1)
and 6e-3 (S^2) radians, von Mises starts up to kappa of about 1e8 and 3e4.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import as_real_array, check_array, check_real
from .geometry import angles_to_circle, gauss_sphere_grid, sphere_area
from .resolution import initial_unresolved

__all__ = ["evaluate_density", "check_total_mass", "nodal_density", "check_times", "MASS_ERROR",
           "circle_nodes", "refined_quadrature", "REFINED_NODES"]

#: |int rho0 - 1| above this is an error: quadrature and geometry explain far less
MASS_ERROR = 1e-2
#: the refined quadrature that tells a concentrated density from a wrong one: S^1 nodes,
#: S^2 Gauss-Legendre latitudes
REFINED_NODES = {2: 2**16, 3: 512}


def circle_nodes(n: int, offset: float = 0.0):
    """(points (n, 2), arc-length weights (n,)) of n equispaced nodes 2 pi (j + offset) / n."""
    return angles_to_circle(2 * np.pi * (np.arange(n) + offset) / n), np.full(n, 2 * np.pi / n)


def refined_quadrature(d: int):
    """(points, surface-measure weights) of the refined rule of the module docstring."""
    if d == 2:
        return circle_nodes(REFINED_NODES[2], 0.5)
    points, weights = gauss_sphere_grid(REFINED_NODES[3])
    return points, weights * sphere_area(3)


def evaluate_density(rho0, points: np.ndarray) -> np.ndarray:
    """rho0(points) checked: a callable returning finite, non-negative densities (M,)."""
    if not callable(rho0):
        raise TypeError(f"rho0 must be a callable mapping points (M, d) to densities (M,), "
                        f"got {type(rho0).__name__}")
    values = as_real_array(rho0(points), "rho0(points)")  # complex, bool, str: TypeError
    if values.shape != (len(points),):
        raise ValueError(f"rho0 must map points (M, d) to densities (M,), got shape "
                         f"{values.shape} for M={len(points)}")
    if not np.all(np.isfinite(values)):
        raise ValueError("rho0 returned non-finite values (NaN or inf)")
    if np.any(values < 0):
        raise ValueError(f"rho0 returned negative densities (min {values.min():.3g})")
    return values


def check_total_mass(total: float, note: str = "", rho0=None, d: int = 0, method=None,
                     resolution=None) -> None:
    """If |total - 1| > MASS_ERROR: with ``rho0`` (and its dimension ``d``) integrate it on the
    refined quadrature and raise ``UnderResolved`` at time 0 naming ``method`` and
    ``resolution`` when that integral is within MASS_ERROR of 1 (the density is too
    concentrated for the grid); else ValueError saying what rho0 integrates to."""
    if abs(total - 1.0) <= MASS_ERROR:
        return
    fine = math.nan
    if rho0 is not None:
        points, weights = refined_quadrature(d)
        fine = float(evaluate_density(rho0, points) @ weights)
        if abs(fine - 1.0) <= MASS_ERROR:
            reason = (f"rho0 is too concentrated for this grid: it integrates to {total:.6g} "
                      f"on it{note} but to {fine:.6g} on a refined quadrature")
            raise initial_unresolved(method, resolution, reason, "use a finer resolution (or "
                                     "resolution='auto') or a wider density")
    also = f" (and {fine:.6g} on a refined quadrature)" if rho0 is not None else ""
    raise ValueError(f"rho0 must be a probability density w.r.t. the surface measure: "
                     f"it integrates to {total:.6g}, not 1{note}{also}")


def nodal_density(rho0, points: np.ndarray, quadrature: np.ndarray, method=None,
                  resolution=None):
    """Evaluate ``rho0`` at the nodes and rescale it to unit discrete mass.

    Returns (values, factor) with values = factor * rho0(points) and
    sum(values * quadrature) = 1. Raises TypeError or ValueError naming rho0 if it is not a
    callable returning finite, non-negative real densities (M,), ValueError if its integral
    is farther than MASS_ERROR from 1 (the message says what it integrates to), and
    ``UnderResolved`` at time 0 naming ``method`` and ``resolution`` if only the discrete
    integral is (:func:`check_total_mass`).
    """
    values = evaluate_density(rho0, points)
    total = float(values @ quadrature)
    check_total_mass(total, rho0=rho0, d=points.shape[1], method=method, resolution=resolution)
    return values / total, 1.0 / total


def check_times(T, times):
    """Validated (T, saved times): T >= 0 finite; times increasing in [0, T] (default 51
    equispaced)."""
    T = check_real(T, "T", low=0)
    if times is None:
        times = np.linspace(0.0, T, 51) if T > 0 else np.zeros(1)
    times = np.atleast_1d(check_array(times, "times"))
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"times must be a non-empty 1-d array, got shape {times.shape}")
    if np.any(np.diff(times) <= 0):
        raise ValueError("times must be strictly increasing")
    if times[0] < 0 or times[-1] > T * (1 + 1e-12):
        raise ValueError(f"times must lie in [0, T={T}], got [{times[0]}, {times[-1]}]")
    return T, times
