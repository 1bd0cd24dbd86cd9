"""Wasserstein distances between Measures on the sphere (exact optimal transport via POT)."""

from __future__ import annotations

import numpy as np

__all__ = ["wasserstein_sphere", "wasserstein_circle", "ground_cost"]

COSTS = ("geodesic", "chordal")


def ground_cost(x: np.ndarray, y: np.ndarray, cost: str = "geodesic") -> np.ndarray:
    """Distance matrix on S^{d-1}: chordal |x - y| or geodesic 2 arcsin(|x - y| / 2).

    The chord is computed from the coordinate differences (scipy cdist), not from
    arccos <x, y>, which loses half the digits for nearby points (arccos(1 - 1e-16) ~ 1e-8).
    """
    from scipy.spatial.distance import cdist

    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
    chord = cdist(x, y)
    if cost == "geodesic":
        return 2.0 * np.arcsin(np.minimum(0.5 * chord, 1.0))
    return chord


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


def _circle_positions(mu) -> np.ndarray:
    if mu.d != 2:
        raise ValueError(f"wasserstein_circle needs measures on S^1 (d=2), got d={mu.d}")
    return np.mod(np.arctan2(mu.points[:, 1], mu.points[:, 0]), 2 * np.pi) / (2 * np.pi)


def wasserstein_circle(mu, nu, p: int = 1) -> float:
    """Exact W_p(mu, nu) on S^1 with the arc-length ground cost (radians).

    p = 1 uses the circular CDF formula W_1 = 2 pi min_c int_0^1 |F(s) - G(s) - c| ds, the
    minimum attained at a median c of F - G (Rabin, Delon, Gousseau 2011), computed exactly on
    the merged atoms. p > 1 uses POT's ``ot.wasserstein_circle`` (binary search on the same
    CDF formulation, Delon, Salomon, Sobolevski 2010), on positions scaled to [0, 1).
    """
    if mu.d != nu.d:
        raise ValueError(f"measures live in different dimensions: d={mu.d} and d={nu.d}")
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    a, b = _circle_positions(mu), _circle_positions(nu)
    if p == 1:
        s = np.concatenate([a, b])
        jumps = np.concatenate([mu.weights, -nu.weights])
        order = np.argsort(s, kind="stable")
        s, diff = s[order], np.cumsum(jumps[order])  # F - G on [s_k, s_{k+1})
        lengths = np.diff(np.append(s, 1.0 + s[0]))
        # F - G is constant on each interval (periodic), so min_c sum |diff - c| lengths is a
        # weighted median of diff with weights lengths
        idx = np.argsort(diff)
        cum = np.cumsum(lengths[idx])
        c = diff[idx][np.searchsorted(cum, 0.5 * cum[-1])]
        return float(2 * np.pi * np.sum(np.abs(diff - c) * lengths))
    import ot

    value = ot.wasserstein_circle(a, b, mu.weights, nu.weights, p=p)
    return float(2 * np.pi * max(np.asarray(value).item(), 0.0) ** (1.0 / p))  # POT: W_p^p on [0, 1)
