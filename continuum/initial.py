"""Validation of solver inputs: the initial density rho0 (and its discrete rescaling to unit
mass) and the saved times."""

from __future__ import annotations

import numpy as np

from .checks import check_array, check_real

__all__ = ["evaluate_density", "check_total_mass", "nodal_density", "check_times", "MASS_ERROR"]

#: |int rho0 - 1| above this is an error: quadrature and geometry explain far less
MASS_ERROR = 1e-2


def evaluate_density(rho0, points: np.ndarray) -> np.ndarray:
    """rho0(points) checked: a callable returning finite, non-negative densities (M,)."""
    if not callable(rho0):
        raise TypeError(f"rho0 must be a callable mapping points (M, d) to densities (M,), "
                        f"got {type(rho0).__name__}")
    values = np.asarray(rho0(points), dtype=np.float64)
    if values.shape != (len(points),):
        raise ValueError(f"rho0 must map points (M, d) to densities (M,), got shape "
                         f"{values.shape} for M={len(points)}")
    if not np.all(np.isfinite(values)):
        raise ValueError("rho0 returned non-finite values (NaN or inf)")
    if np.any(values < 0):
        raise ValueError(f"rho0 returned negative densities (min {values.min():.3g})")
    return values


def check_total_mass(total: float, note: str = "") -> None:
    """Raise ValueError (saying what rho0 integrates to) if |total - 1| > MASS_ERROR."""
    if abs(total - 1.0) > MASS_ERROR:
        raise ValueError(f"rho0 must be a probability density w.r.t. the surface measure: "
                         f"it integrates to {total:.6g}, not 1{note}")


def nodal_density(rho0, points: np.ndarray, quadrature: np.ndarray):
    """Evaluate ``rho0`` at the nodes and rescale it to unit discrete mass.

    Returns (values, factor) with values = factor * rho0(points) and
    sum(values * quadrature) = 1. Raises ValueError naming rho0 if it is not a callable
    returning finite, non-negative densities (M,), or if its discrete integral is farther
    than MASS_ERROR from 1 (the message says what it integrates to).
    """
    values = evaluate_density(rho0, points)
    total = float(values @ quadrature)
    check_total_mass(total)
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
