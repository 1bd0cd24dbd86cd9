"""Wasserstein distances between Measures on the sphere (exact optimal transport via POT)."""

from __future__ import annotations

import numpy as np

__all__ = ["wasserstein_sphere", "ground_cost"]

COSTS = ("geodesic", "chordal")


def ground_cost(x: np.ndarray, y: np.ndarray, cost: str = "geodesic") -> np.ndarray:
    """Distance matrix on S^{d-1}: geodesic arccos<x, y> or chordal |x - y|."""
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
    inner = np.clip(x @ y.T, -1.0, 1.0)
    if cost == "geodesic":
        return np.arccos(inner)
    return np.sqrt(np.maximum(2.0 - 2.0 * inner, 0.0))


def wasserstein_sphere(mu, nu, p: int = 2, cost: str = "geodesic") -> float:
    """W_p(mu, nu) = (min_pi sum_ij pi_ij c(x_i, y_j)^p)^(1/p), exact (network simplex, ot.emd2).

    Parameters
    ----------
    mu, nu : Measure
        Measures on the same sphere.
    p : int
        Order (1 or 2 usually).
    cost : {"geodesic", "chordal"}
        Ground distance c (arc length or Euclidean chord).

    Cost O(M N) memory and roughly O(n^3) time: a few thousand atoms at most.
    """
    import ot

    if mu.d != nu.d:
        raise ValueError(f"measures live in different dimensions: d={mu.d} and d={nu.d}")
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    M = ground_cost(mu.points, nu.points, cost) ** p
    value = ot.emd2(mu.weights, nu.weights, M, numItermax=10_000_000)
    return float(max(value, 0.0) ** (1.0 / p))
