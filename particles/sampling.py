"""Sampling tokens from a density on S^{d-1} (exact rejection sampling)."""

from __future__ import annotations

import warnings

import numpy as np

from continuum.checks import check_integer, check_memory, check_seed
from continuum.geometry import circle_grid, gauss_sphere_grid, sphere_area, uniform_points
from continuum.initial import check_total_mass, evaluate_density
from continuum.measure import Measure

__all__ = ["sample", "sample_positional", "token_positions", "check_density"]

def _probe(d: int, rng):
    """Points and surface-measure quadrature weights used to check and bound a density."""
    if d == 2:
        pts, w = circle_grid(8192)  # exact for trigonometric polynomials of degree < 8192
    elif d == 3:
        pts, w = gauss_sphere_grid(96)  # exact for spherical harmonics of degree < 192
    else:
        pts = uniform_points(200_000, d, rng)
        w = np.full(len(pts), 1.0 / len(pts))  # Monte Carlo
    return pts, w * sphere_area(d)


def check_density(rho, d: int, rng=None) -> float:
    """Integral of ``rho`` over S^{d-1} w.r.t. surface measure; error if it is not ~1.

    Quadrature: 8192-point trapezoid (d = 2), Gauss x equispaced grid with 18432 nodes
    (d = 3), Monte Carlo with 2e5 points (d > 3).
    """
    d = check_integer(d, "d", low=2)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator or None, got {type(rng).__name__}")
    rng = np.random.default_rng(0) if rng is None else rng
    pts, w = _probe(d, rng)
    total = float(w @ evaluate_density(rho, pts))
    check_total_mass(total, f" (on S^{d - 1})")
    return total


def sample(rho0=None, n: int = 1000, d: int = 3, seed=0) -> np.ndarray:
    """Draw ``n`` iid tokens on S^{d-1} from ``rho0``.

    Parameters
    ----------
    rho0 : None, "uniform", callable or Measure
        None/"uniform": the uniform law (normalised Gaussians, any d). A callable maps points
        (M, d) to densities (M,) w.r.t. the surface measure (|S^1| = 2 pi, |S^2| = 4 pi); it is
        sampled exactly by rejection from the uniform law with the bound
        1.1 * max(rho0 on a fine probe set); a proposal above the bound restarts the draw with
        a larger bound, so the accepted points are exact iid draws. A Measure is resampled
        (atoms drawn with probabilities equal to the weights).
    n : int
        Number of tokens.
    d : int
        Ambient dimension.
    seed : int or Generator

    Returns
    -------
    ndarray (n, d)
    """
    n = check_integer(n, "n", low=1)
    d = check_integer(d, "d", low=2)
    check_seed(seed)
    check_memory(8.0 * n * d * 3, "n", f"{n} tokens in d={d} (with rejection batches)")
    rng = np.random.default_rng(seed)
    if rho0 is None or (isinstance(rho0, str) and rho0 == "uniform"):
        return uniform_points(n, d, rng)
    if isinstance(rho0, Measure):
        if rho0.d != d:
            raise ValueError(f"rho0 is a Measure on S^{rho0.d - 1}, but d={d}")
        idx = rng.choice(rho0.size, size=n, p=rho0.weights)
        return rho0.points[idx].copy()
    if not callable(rho0):
        raise TypeError(f"rho0 must be None, 'uniform', a callable or a Measure, got {rho0!r}")
    if d > 3:
        warnings.warn("for d > 3 the rejection bound comes from Monte Carlo probing of rho0",
                      stacklevel=2)
    pts, w = _probe(d, rng)
    vals = evaluate_density(rho0, pts)
    check_total_mass(float(w @ vals), f" (on S^{d - 1})")
    bound = 1.1 * vals.max()
    while True:
        accepted, count = [], 0
        restart = False
        while count < n:
            batch = max(1024, int(1.2 * (n - count) * bound * sphere_area(d)))
            prop = uniform_points(batch, d, rng)
            dens = evaluate_density(rho0, prop)
            if dens.max() > bound:
                bound = 1.5 * dens.max()
                restart = True
                break
            keep = prop[rng.uniform(0.0, bound, batch) < dens]
            accepted.append(keep)
            count += len(keep)
        if not restart:
            return np.concatenate(accepted)[:n]


def token_positions(n: int) -> np.ndarray:
    """Positions s_i = (i + 1/2) / n in [0, 1] of the tokens i = 0..n-1 of a causal sequence
    (the row order of the particles' points): the midpoints of n equal cells."""
    n = check_integer(n, "n", low=1)
    return (np.arange(n) + 0.5) / n


def sample_positional(rho0, n: int = 1000, d: int = 2, seed=0) -> np.ndarray:
    """Draw ``n`` independent tokens, token i from the density ``rho0(., s_i)`` with
    s_i = (i + 1/2)/n (:func:`token_positions`): a position-dependent initial law, the
    particle counterpart of the causal continuum's family mu_s
    (:func:`continuum.circle.causal.solve_causal_spectral`).

    ``rho0(points, s)`` maps points (M, d) and positions s (M,) to densities (M,) w.r.t. the
    surface measure, each ``rho0(., s)`` of integral 1 (checked at 9 positions). Exact
    rejection from the uniform law, as :func:`sample`, with the bound 1.1 max rho0 over a
    probe grid times 33 positions (a proposal above it restarts with a larger bound); each
    pending token gets its own proposal per round.
    """
    n = check_integer(n, "n", low=1)
    d = check_integer(d, "d", low=2)
    check_seed(seed)
    if not callable(rho0):
        raise TypeError(f"rho0 must be a callable of (points, s), got {rho0!r}")
    check_memory(8.0 * n * d * 6, "n", f"{n} tokens in d={d} (with rejection batches)")
    rng = np.random.default_rng(seed)
    s = token_positions(n)
    pts, w = _probe(d, rng)

    def density(points, positions):
        return evaluate_density(lambda p: rho0(p, positions), points)

    bound = 0.0
    for k, sk in enumerate(np.linspace(0.0, 1.0, 33)):
        vals = density(pts, np.full(len(pts), sk))
        if k % 4 == 0:
            check_total_mass(float(w @ vals), f" (rho0(., s={sk:g}) on S^{d - 1})")
        bound = max(bound, 1.1 * float(vals.max()))
    while True:
        out = np.empty((n, d))
        pending = np.arange(n)
        restart = False
        while pending.size:
            prop = uniform_points(pending.size, d, rng)
            dens = density(prop, s[pending])
            if dens.max() > bound:
                bound = 1.5 * float(dens.max())
                restart = True
                break
            keep = rng.uniform(0.0, bound, pending.size) < dens
            out[pending[keep]] = prop[keep]
            pending = pending[~keep]
        if not restart:
            return out
