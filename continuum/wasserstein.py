"""Wasserstein distances between Measures on the sphere (exact optimal transport via POT)."""

from __future__ import annotations

import numpy as np

from .checks import check_choice, check_integer, check_memory, check_real
from .geometry import check_on_sphere, check_points
from .measure import check_measure_pair

__all__ = ["wasserstein_sphere", "wasserstein_circle", "wasserstein_reduced",
           "reduce_pair", "ground_cost"]

COSTS = ("geodesic", "chordal")


def ground_cost(x: np.ndarray, y: np.ndarray, cost: str = "geodesic") -> np.ndarray:
    """Distance matrix on S^{d-1}: chordal |x - y| or geodesic 2 arcsin(|x - y| / 2).

    The chord is computed from the coordinate differences (scipy cdist), not from
    arccos <x, y>, which loses half the digits for nearby points (arccos(1 - 1e-16) ~ 1e-8).
    """
    from scipy.spatial.distance import cdist

    x = check_points(x, "x")
    y = check_points(y, "y", x.shape[1])
    check_on_sphere(x, "x")
    check_on_sphere(y, "y")
    check_choice(cost, "cost", COSTS)
    _check_cost_matrix(len(x), len(y), "x, y", 3)
    chord = cdist(x, y)
    return _arc(chord) if cost == "geodesic" else chord


def _arc(chord):
    """Geodesic distance 2 arcsin(|x - y| / 2) from the chord |x - y| (accurate when small)."""
    return 2.0 * np.arcsin(np.minimum(0.5 * chord, 1.0))


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

    check_measure_pair(mu, nu)
    p = check_real(p, "p", low=1)
    check_choice(cost, "cost", COSTS)
    _check_cost_matrix(mu.size, nu.size, "mu, nu", 4, " (use wasserstein_reduced)")
    M = ground_cost(mu.points, nu.points, cost) ** p
    value = ot.emd2(mu.weights, nu.weights, M, numItermax=10_000_000)
    return float(max(value, 0.0) ** (1.0 / p))


def reduce_pair(mu, nu, max_support: int):
    """Merge the atoms of mu and nu into at most ``max_support`` clusters (one partition for
    both) and return (mu', nu', e_mu, e_nu) where mu' puts the mass of mu in a cluster at the
    cluster's representative r_c (the chordal mean of the pooled atoms, weights mu + nu,
    projected onto the sphere) and e_mu(p) = (sum_j mu_j c(x_j, r_{c(j)})^p)^{1/p} for p = 1, 2
    is the cost of that merge, a feasible plan, hence W_p(mu, mu') <= e_mu(p).

    The partition splits, largest first, the cluster with the largest pooled inertia
    sum_j w_j |z_j - mean|^2, at its mean across its principal axis (bisecting k-means
    without iterations), so clusters are small where the mass is. Atoms of zero weight are
    dropped first (no mass is lost); if each measure then has at most ``max_support`` atoms
    nothing is merged and the bounds are 0.
    """
    import heapq
    import itertools

    from .measure import Measure

    check_measure_pair(mu, nu)
    max_support = check_integer(max_support, "max_support", low=1)
    keep_mu, keep_nu = mu.weights > 0, nu.weights > 0
    x, a = mu.points[keep_mu], mu.weights[keep_mu]
    y, b = nu.points[keep_nu], nu.weights[keep_nu]
    if len(a) <= max_support and len(b) <= max_support:
        return Measure(x, a / a.sum()), Measure(y, b / b.sum()), {1: 0.0, 2: 0.0}, \
            {1: 0.0, 2: 0.0}
    z, w = np.concatenate([x, y]), np.concatenate([a, b])

    tiebreak = itertools.count()  # heap entries never compare their index arrays

    def entry(idx):
        ww = w[idx]
        centred = z[idx] - (ww @ z[idx]) / ww.sum()
        return (-float(ww @ np.einsum("ij,ij->i", centred, centred)), next(tiebreak), idx)

    heap, clusters = [entry(np.arange(len(w)))], []
    while heap and len(heap) + len(clusters) < max_support:
        inertia, _, idx = heapq.heappop(heap)
        if len(idx) == 1 or inertia == 0.0:
            clusters.append(idx)
            continue
        ww, zz = w[idx], z[idx]
        mean = (ww @ zz) / ww.sum()
        cov = (zz - mean).T @ ((zz - mean) * ww[:, None])
        along = (zz - mean) @ np.linalg.eigh(cov)[1][:, -1]  # principal axis
        side = along > 0
        if side.all() or not side.any():  # all on one side (round-off): split by count
            side = np.zeros(len(idx), bool)
            side[np.argsort(along)[len(idx) // 2:]] = True
        heapq.heappush(heap, entry(idx[side]))
        heapq.heappush(heap, entry(idx[~side]))
    clusters += [item[2] for item in heap]
    label = np.empty(len(w), dtype=np.intp)
    reps = np.empty((len(clusters), z.shape[1]))
    for c, idx in enumerate(clusters):
        label[idx] = c
        mean = w[idx] @ z[idx]
        norm = np.linalg.norm(mean)
        # a cluster spread evenly around the sphere has no mean direction: take its heaviest
        # atom (any point is a valid representative; the bound below stays exact)
        reps[c] = mean / norm if norm > 1e-12 * w[idx].sum() else z[idx[np.argmax(w[idx])]]
    dist = _arc(np.linalg.norm(z - reps[label], axis=1))
    merged, bounds = [], []
    for part, weights in ((slice(0, len(a)), a), (slice(len(a), None), b)):
        d = dist[part]
        bounds.append({1: float(weights @ d), 2: float(np.sqrt(weights @ d**2))})
        mass = np.bincount(label[part], weights=weights, minlength=len(clusters))
        used = mass > 0
        merged.append(Measure(reps[used], mass[used] / mass[used].sum()))
    return merged[0], merged[1], bounds[0], bounds[1]


def wasserstein_reduced(mu, nu, max_support: int | None = 2000):
    """W_1 and W_2 (geodesic cost) between measures on S^2 or any S^{d-1} too large for exact
    transport: the exact values between the reduced measures of :func:`reduce_pair`, with a
    certified error bound from the triangle inequality,

        |W_p(mu, nu) - W_p(mu', nu')| <= W_p(mu, mu') + W_p(nu, nu') <= e_mu(p) + e_nu(p).

    Returns ({1: W_1, 2: W_2}, {1: bound_1, 2: bound_2}); the bounds are 0 (and the values
    exact) when both supports have at most ``max_support`` atoms (None: always exact). One
    geodesic cost matrix serves both orders. Cost: O(max_support^2) memory; 0.5 to 0.9 s for
    both orders at 2000 atoms (measured on level-4 DG measures, one core).
    """
    import ot

    check_measure_pair(mu, nu)
    if max_support is not None:
        max_support = check_integer(max_support, "max_support", low=1)
    if mu.size == nu.size and np.array_equal(mu.points, nu.points) and \
            np.array_equal(mu.weights, nu.weights):
        return {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}  # the same measure: exactly 0
    # the reduced measures have at most max_support atoms of positive weight each (None: all
    # of them), so that is the cost matrix's size at most
    rows, cols = (int(np.count_nonzero(m.weights)) for m in (mu, nu))
    if max_support is not None:
        rows, cols = min(rows, max_support), min(cols, max_support)
    _check_cost_matrix(rows, cols, "max_support" if max_support is not None else "mu, nu",
                       4, "" if max_support is not None else " (pass a max_support)")
    if max_support is None:
        max_support = max(mu.size, nu.size)
    mu_r, nu_r, e_mu, e_nu = reduce_pair(mu, nu, max_support)
    dist = ground_cost(mu_r.points, nu_r.points, "geodesic")
    values = {}
    for p in (1, 2):
        value = ot.emd2(mu_r.weights, nu_r.weights, dist**p, numItermax=10_000_000)
        values[p] = float(max(value, 0.0) ** (1.0 / p))
    return values, {p: e_mu[p] + e_nu[p] for p in (1, 2)}


def _check_cost_matrix(rows: int, cols: int, name: str, copies: int, hint: str = "") -> None:
    """Refuse (MemoryError naming ``name``) ``copies`` float64 matrices rows x cols (the cost,
    its powers, the transport plan POT builds) beyond the machine's memory, before any is
    allocated."""
    check_memory(8.0 * copies * rows * cols, name, f"a {rows} x {cols} cost matrix{hint}")


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
    check_measure_pair(mu, nu)
    p = check_real(p, "p", low=1)
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
    # POT returns W_p^p on [0, 1)
    return float(2 * np.pi * max(np.asarray(value).item(), 0.0) ** (1.0 / p))
